"""ProcFS against a fake /proc tree under tmp_path, with failures injected through its opener.

Running as root, chmod cannot make a file unreadable, and a real process cannot be made to
vanish or reuse its pid at an exact moment; the injected ``opener`` does both, at the exact
read the test names, and the files it leaves are real so the choke point sees real errors.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from sessionio.errors import AccessDenied, NoSuchProcess, UnsupportedPlatformError
from sessionio.linux.procfs import Opener, ProcessSnapshot, ProcFS

BTIME = 1_795_262_585
UNSET = 4294967295


def stat_line(pid: int, comm: str, ppid: int, starttime: int, tty_nr: int = 0) -> str:
    fields = ["S", ppid, pid, pid, tty_nr, -1, 4194304, 0, 0, 0, 0, 3, 1, 0, 0, 20, 0, 1, 0]
    return f"{pid} ({comm}) {' '.join(map(str, fields))} {starttime} 3133440 380\n"


def status_text(pid: int, comm: str, ppid: int, uid: int, euid: int, threads: int) -> str:
    return (
        f"Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{pid}\n"
        f"PPid:\t{ppid}\nUid:\t{uid}\t{euid}\t{euid}\t{euid}\nGid:\t100\t100\t100\t100\n"
        f"Threads:\t{threads}\n"
    )


def add_process(
    root: Path,
    pid: int,
    *,
    comm: str = "bash",
    ppid: int = 1,
    starttime: int = 5000,
    uid: int = 1000,
    euid: int | None = None,
    sessionid: int = UNSET,
    loginuid: int = UNSET,
    threads: dict[int, int] | None = None,
    cmdline: bytes = b"-bash\0",
    exe: str | None = "/usr/bin/bash",
    tty_nr: int = 0,
    cgroup: bytes = b"0::/\n",
) -> Path:
    """A /proc/PID directory as the kernel lays it out (only the files ProcFS reads)."""
    directory = root / str(pid)
    directory.mkdir()
    (directory / "stat").write_text(stat_line(pid, comm, ppid, starttime, tty_nr))
    all_threads = {pid: sessionid, **(threads or {})}
    status = status_text(pid, comm, ppid, uid, uid if euid is None else euid, len(all_threads))
    (directory / "status").write_text(status)
    (directory / "sessionid").write_text(str(sessionid))
    (directory / "loginuid").write_text(str(loginuid))
    (directory / "cmdline").write_bytes(cmdline)
    (directory / "cgroup").write_bytes(cgroup)
    if exe is not None:
        (directory / "exe").symlink_to(exe)
    for tid, thread_session in all_threads.items():
        task = directory / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "stat").write_text(stat_line(tid, comm, ppid, starttime, tty_nr))
        (task / "sessionid").write_text(str(thread_session))
        (task / "loginuid").write_text(str(loginuid))
    return directory


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "stat").write_text(f"cpu  1 2 3 4\nintr 0\nctxt 9\nbtime {BTIME}\nprocesses 7\n")
    (tmp_path / "sys").mkdir()
    (tmp_path / "self").symlink_to("4242")
    return tmp_path


Hook = Callable[[], None]


def opener_with(hooks: dict[tuple[str, int], Hook]) -> tuple[Opener, Counter[str]]:
    """An opener running ``hooks[(relative path, n)]`` just before the n-th open of that path."""
    opened: Counter[str] = Counter()

    def opener(path: str, flags: int) -> int:
        name = "/".join(Path(path).parts[-2:])  # "PID/file", or "TID/file" under task/
        opened[name] += 1
        hook = hooks.get((name, opened[name]))
        if hook is not None:
            hook()
        return os.open(path, flags)

    return opener, opened


def raising(error: int) -> Hook:
    def hook() -> None:
        raise OSError(error, os.strerror(error))

    return hook


def test_pids_lists_only_process_directories(root: Path) -> None:
    for pid in (4242, 17, 300):
        add_process(root, pid)
    assert ProcFS(root).pids() == [17, 300, 4242]


def test_each_file_is_read_and_parsed(root: Path) -> None:
    add_process(
        root,
        4242,
        comm="sshd: alice",
        ppid=900,
        starttime=4000,
        uid=1000,
        sessionid=7,
        loginuid=1000,
        threads={4243: 7},
        cmdline=b"sshd: alice@pts/3\0",
        tty_nr=34819,
        cgroup=b"0::/user.slice/user-1000.slice/session-7.scope\n",
    )
    proc = ProcFS(root, clock_ticks=100)
    assert proc.stat(4242).comm == "sshd: alice"
    assert proc.status(4242).uids.real == 1000
    assert (proc.session_id(4242), proc.login_uid(4242)) == (7, 1000)
    assert proc.exe(4242) == "/usr/bin/bash"
    assert proc.cmdline(4242) == ["sshd: alice@pts/3"]
    assert proc.cgroup_session(4242) == "7"
    assert proc.tids(4242) == [4242, 4243]
    assert proc.boot_time() == BTIME
    assert proc.start_time(4242) == BTIME + 40.0


def test_session_id_is_per_thread(root: Path) -> None:
    add_process(root, 50, sessionid=3, loginuid=1000, threads={51: 3, 52: 9})
    proc = ProcFS(root)
    assert [proc.session_id(50, tid) for tid in (50, 51, 52)] == [3, 3, 9]


def test_unset_ids_are_none(root: Path) -> None:
    add_process(root, 2, comm="kthreadd", ppid=0, exe=None, cmdline=b"")
    proc = ProcFS(root)
    assert (proc.session_id(2), proc.login_uid(2), proc.exe(2)) == (None, None, None)


def test_process_snapshot_reports_threads_in_another_session(root: Path) -> None:
    add_process(
        root,
        700,
        comm="worker",
        ppid=1,
        starttime=777,
        uid=1000,
        euid=0,
        sessionid=12,
        loginuid=1000,
        threads={701: 12, 702: 13, 703: UNSET},
        cmdline=b"worker\0--fast\0",
        tty_nr=1025,
    )
    assert ProcFS(root).process(700) == ProcessSnapshot(
        pid=700,
        ppid=1,
        start_ticks=777,
        comm="worker",
        state="S",
        exe="/usr/bin/bash",
        cmdline=("worker", "--fast"),
        uid=1000,
        euid=0,
        login_uid=1000,
        session_id=12,
        tty="tty1",
        thread_session_ids=((702, 13), (703, None)),
    )


def test_an_absent_pid_is_no_such_process(root: Path) -> None:
    proc = ProcFS(root)
    for read in (proc.stat, proc.session_id, proc.cmdline, proc.exe, proc.tids, proc.process):
        with pytest.raises(NoSuchProcess) as caught:
            read(31337)
        assert caught.value.pid == 31337


def test_a_process_that_vanishes_mid_read_is_no_such_process(root: Path) -> None:
    directory = add_process(root, 800, sessionid=4, loginuid=1000)
    opener, opened = opener_with({("800/cmdline", 1): lambda: shutil.rmtree(directory)})
    with pytest.raises(NoSuchProcess) as caught:
        ProcFS(root, opener=opener).process(800)
    assert caught.value.pid == 800
    assert opened["800/cmdline"] == 1


def test_a_reused_pid_is_never_mixed_with_the_old_process(root: Path) -> None:
    directory = add_process(root, 900, comm="old", starttime=100, sessionid=5, loginuid=1000)

    def reuse() -> None:  # the old process exits, a new one gets pid 900 before the re-read
        shutil.rmtree(directory)
        add_process(root, 900, comm="new", starttime=200, sessionid=6, loginuid=1001)

    opener, opened = opener_with({("900/sessionid", 1): reuse})
    with pytest.raises(NoSuchProcess, match="reused"):
        ProcFS(root, opener=opener).process(900)
    assert opened["900/stat"] == 2  # the start time was checked again at the end
    assert ProcFS(root).process(900).session_id == 6  # a fresh read sees only the new one


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_a_refused_read_is_access_denied(root: Path, code: int) -> None:
    add_process(root, 1000, sessionid=8, loginuid=1000)
    opener, _ = opener_with({("1000/sessionid", 1): raising(code)})
    proc = ProcFS(root, opener=opener)
    with pytest.raises(AccessDenied) as caught:
        proc.session_id(1000)
    assert caught.value.pid == 1000
    assert isinstance(caught.value, PermissionError)
    assert isinstance(caught.value.__cause__, OSError)
    assert proc.session_id(1000) == 8  # the next read is not refused


def test_esrch_is_no_such_process(root: Path) -> None:
    add_process(root, 1100)
    opener, _ = opener_with({("1100/stat", 1): raising(errno.ESRCH)})
    with pytest.raises(NoSuchProcess):
        ProcFS(root, opener=opener).stat(1100)


def test_other_errors_pass_through_unchanged(root: Path) -> None:
    add_process(root, 1200)
    opener, _ = opener_with({("1200/status", 1): raising(errno.EIO)})
    with pytest.raises(OSError) as caught:
        ProcFS(root, opener=opener).status(1200)
    assert type(caught.value) is OSError
    assert caught.value.errno == errno.EIO


def test_a_file_this_kernel_lacks_is_unsupported_not_a_vanished_process(root: Path) -> None:
    directory = add_process(root, 1300)
    (directory / "sessionid").unlink()  # a kernel built without CONFIG_AUDIT
    with pytest.raises(UnsupportedPlatformError) as caught:
        ProcFS(root).session_id(1300)
    assert caught.value.feature == "sessionid"


def test_a_thread_that_exits_is_named_and_left_out_of_the_snapshot(root: Path) -> None:
    directory = add_process(root, 1400, sessionid=2, threads={1401: 3, 1402: 4})
    proc = ProcFS(root)
    shutil.rmtree(directory / "task" / "1402")
    with pytest.raises(NoSuchProcess, match="thread 1402"):
        proc.session_id(1400, 1402)
    opener, _ = opener_with(
        {("1401/sessionid", 1): lambda: shutil.rmtree(directory / "task" / "1401")}
    )
    snapshot = ProcFS(root, opener=opener).process(1400)
    assert snapshot.thread_session_ids == ()
    assert snapshot.session_id == 2


def test_a_kernel_thread_snapshot_has_no_exe_or_command_line(root: Path) -> None:
    add_process(root, 2, comm="kthreadd", ppid=0, exe=None, cmdline=b"")
    snapshot = ProcFS(root).process(2)
    assert (snapshot.exe, snapshot.cmdline, snapshot.session_id) == (None, (), None)
