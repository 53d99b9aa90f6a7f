"""``ps``, ``sessions`` and ``session-of`` in-process, against a LinuxKernel over a fake /proc tree.

The kernel is injected the way every object-less call finds its kernel: the test activates
it (``Kernel.activate``), and the commands ask ``current_kernel()``. The system bus is pointed
at a socket that does not exist and utmp at a file of the test's, so nothing of the machine
leaks in.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionio.cli.main import main
from sessionio.linux.procfs import Opener, ProcFS
from sessionio.protocols.utmp import UtmpType
from sessionio.runtime.linux_kernel import LinuxKernel
from tests.unit.linux.test_procfs_fake_tree import BTIME, add_process, opener_with
from tests.unit.protocols.test_utmp import record

HZ = os.sysconf("SC_CLK_TCK")
ROOT_NAME = pwd.getpwuid(0).pw_name
NAMELESS = 3_999_999_999  # a uid no account has


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake tree; no system bus (a socket path that does not exist)."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\n")
    add_process(proc, 2, comm="kthreadd", ppid=0, uid=0, exe=None, cmdline=b"", starttime=0)
    add_process(proc, 300, comm="sshd", starttime=50, uid=0, cmdline=b"sshd: /usr/sbin/sshd\0")
    add_process(proc, 410, comm="login", starttime=100, uid=0, sessionid=4, loginuid=0,
                cmdline=b"login\0--\0root\0")  # fmt: skip
    add_process(proc, 411, ppid=410, starttime=120, uid=0, sessionid=4, loginuid=0,
                tty_nr=os.makedev(4, 1), threads={412: 4, 413: 7})  # fmt: skip
    add_process(proc, 502, comm="sshd", ppid=300, starttime=400, uid=0, sessionid=9,
                loginuid=NAMELESS, cmdline=b"sshd: u [priv]\0")  # fmt: skip
    add_process(proc, 501, ppid=502, starttime=410, uid=NAMELESS, sessionid=9,
                loginuid=NAMELESS, tty_nr=os.makedev(136, 3))  # fmt: skip
    return proc


@pytest.fixture
def utmp(root: Path) -> str:
    path = root.parent / "utmp"
    path.write_bytes(
        record(ut_type=UtmpType.USER_PROCESS, pid=502, line=b"pts/3", host=b"198.51.100.9")
    )
    return str(path)


@pytest.fixture
def kernel(root: Path) -> Iterator[LinuxKernel]:
    with on_tree(root).activate() as active:
        assert isinstance(active, LinuxKernel)
        yield active


def on_tree(root: Path, opener: Opener = os.open) -> LinuxKernel:
    return LinuxKernel(ProcFS(root, opener=opener, clock_ticks=HZ))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


# -- ps ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("kernel")
def test_ps_json_has_one_object_per_process_with_its_session(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "ps", "--json")
    assert (code, err) == (0, "")
    rows = {row["pid"]: row for row in json_lines(out)}
    assert list(rows) == [2, 300, 410, 411, 501, 502]
    assert {pid: row["session"] for pid, row in rows.items()} == {
        2: -1,
        300: -1,
        410: 4,
        411: 4,
        501: 9,
        502: 9,
    }
    user = rows[501]
    assert (user["ppid"], user["uid"], user["euid"], user["user"]) == (
        502,
        NAMELESS,
        NAMELESS,
        str(NAMELESS),
    )
    assert (user["login_uid"], user["tty"], user["comm"], user["cmdline"]) == (
        NAMELESS,
        "pts/3",
        "bash",
        ["-bash"],
    )
    assert user["start_time"] == BTIME + 410 / HZ
    assert user["exe"] == "/usr/bin/bash"
    assert rows[2]["login_uid"] is None and rows[2]["exe"] is None
    assert rows[411]["threads"] == [{"tid": 413, "session": 7}]
    assert all(row["threads"] == [] for pid, row in rows.items() if pid != 411)


@pytest.mark.usefixtures("kernel")
def test_ps_human_output_is_aligned_and_marks_threads_in_another_session(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "ps")
    assert code == 0
    user = str(NAMELESS)
    assert out.splitlines() == [
        "PID PPID USER       SESSION TTY   COMMAND",
        "  2    0 root           -1  -     [kthreadd]",
        "300    1 root           -1  -     sshd: /usr/sbin/sshd",
        "410    1 root            4  -     login -- root",
        "411  410 root            4* tty1  -bash",
        f"501  502 {user}      9  pts/3 -bash",
        "502  300 root            9  -     sshd: u [priv]",
        "* threads in another session than their process:",
        "  pid 411: tid 413 in 7",
    ]


@pytest.mark.usefixtures("kernel")
def test_ps_selects_by_session_and_user(capsys: pytest.CaptureFixture[str]) -> None:
    def pids(*argv: str) -> list[object]:
        code, out, _ = run(capsys, "ps", "--json", *argv)
        assert code == 0
        return [row["pid"] for row in json_lines(out)]

    assert pids("--session", "9") == [501, 502]
    assert pids("--session", "-1", "--session", "4") == [2, 300, 410, 411]
    assert pids("--session", "7") == [411]  # through its thread
    assert pids("--session", "5") == []
    assert pids("--user", str(NAMELESS)) == [501]
    assert pids("--user", ROOT_NAME, "--session", "9") == [502]
    assert pids("--user", "0") == [2, 300, 410, 411, 502]


def test_ps_leaves_out_a_process_that_exits_mid_listing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opener, _ = opener_with({("501/cmdline", 1): lambda: shutil.rmtree(root / "501")})
    with on_tree(root, opener).activate():
        code, out, err = run(capsys, "ps", "--json")
    assert (code, err) == (0, "")
    assert [row["pid"] for row in json_lines(out)] == [2, 300, 410, 411, 502]


def test_ps_never_shows_a_reused_pid_with_the_new_session(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def reuse() -> None:
        shutil.rmtree(root / "501")
        add_process(root, 501, comm="new", starttime=900, sessionid=12, loginuid=1000)

    opener, _ = opener_with({("501/sessionid", 1): reuse})
    with on_tree(root, opener).activate():
        code, out, _ = run(capsys, "ps", "--json", "--session", "9")
    assert code == 0
    assert [row["pid"] for row in json_lines(out)] == [502]


# -- sessions ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("kernel")
def test_sessions_json_has_one_object_per_session(
    utmp: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "sessions", "--json", "--utmp", utmp)
    assert (code, err) == (0, "")
    rows = json_lines(out)
    assert [(r["id"], r["user"], r["processes"]) for r in rows] == [
        (-1, None, 2),
        (4, ROOT_NAME, 2),
        (9, str(NAMELESS), 2),
    ]
    none, console, remote = rows
    assert (none["leader"], none["state"], none["started"]) == (None, None, BTIME)
    assert (console["leader"], console["tty"], console["remote"], console["state"]) == (
        410,
        "tty1",
        None,
        "online",
    )
    assert (remote["leader"], remote["tty"], remote["remote"], remote["remote_host"]) == (
        502,
        "pts/3",
        True,
        "198.51.100.9",
    )
    assert (remote["uid"], remote["started"], remote["logind"], remote["utmp"]) == (
        NAMELESS,
        BTIME + 400 / HZ,
        False,
        True,
    )
    assert {"type", "class"} <= remote.keys() and remote["type"] is None


@pytest.mark.usefixtures("kernel")
def test_sessions_human_output_like_loginctl(utmp: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sessions", "--utmp", utmp)
    assert code == 0

    def at(ticks: int) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(BTIME + ticks / HZ))

    user = str(NAMELESS)
    assert out.splitlines() == [
        "SESSION USER       LEADER TTY/HOST     STATE  STARTED             PROCESSES",
        f"     -1 -               - -            -      {at(0)}         2",
        f"      4 root          410 tty1         online {at(100)}         2",
        f"      9 {user}    502 198.51.100.9 online {at(400)}         2",
    ]


# -- session-of ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("kernel")
def test_session_of_json_one_object_per_pid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "session-of", "--json", "501", "2", "410")
    assert (code, err) == (0, "")
    assert json_lines(out) == [
        {"pid": 501, "session": 9, "user": str(NAMELESS), "login_uid": NAMELESS},
        {"pid": 2, "session": -1, "user": None, "login_uid": None},
        {"pid": 410, "session": 4, "user": ROOT_NAME, "login_uid": 0},
    ]


@pytest.mark.usefixtures("kernel")
def test_session_of_an_unknown_pid_says_so_and_exits_1_after_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "session-of", "31337", "411")
    assert code == 1
    assert err == "sessionio: no process has pid 31337\n"
    assert [line.split() for line in out.splitlines()] == [
        ["PID", "SESSION", "USER"],
        ["411", "4", ROOT_NAME],
    ]
    code, out, err = run(capsys, "session-of", "--json", "31337")
    assert (code, out) == (1, "")
    assert "31337" in err


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("argument", ["0", "abc", "-5", "1.5", "", "\u0663"])
def test_session_of_something_that_is_not_a_pid_is_a_usage_error(
    argument: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["session-of", "411", argument])
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "PID" in err
