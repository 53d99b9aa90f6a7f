"""The session table from a fake /proc tree (no logind, no root), and its joins with logind and
utmp given as values: grouping, leaders, the no-session row, and processes that vanish."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

import pytest

import sessionio
from sessionio import nt
from sessionio.linux.procfs import Opener, ProcFS
from sessionio.model.ids import NO_SESSION, Pid, SessionId, Tid
from sessionio.model.process import Process
from sessionio.protocols.logind import LogindSession, LogindSessionId
from sessionio.protocols.utmp import UtmpRecord, UtmpType, parse_utmp_record
from sessionio.runtime.linux_kernel import LinuxKernel
from sessionio.runtime.sessions import (
    DERIVED_STATE,
    ProcessInfo,
    SessionInfo,
    build_sessions,
    list_processes,
    list_sessions,
)
from sessionio.sim import SimKernel
from tests.unit.linux.test_procfs_fake_tree import BTIME, add_process, opener_with, raising
from tests.unit.protocols.test_utmp import record

HZ = os.sysconf("SC_CLK_TCK")
ROOT_NAME = pwd.getpwuid(0).pw_name
NAMELESS_UID = 3_999_999_999  # no account has it: its name is the number


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\n")
    return tmp_path


def started(ticks: int) -> float:
    return BTIME + ticks / HZ


def kernel_on(root: Path, opener: Opener = os.open) -> LinuxKernel:
    return LinuxKernel(ProcFS(root, opener=opener, clock_ticks=HZ))


def by_id(rows: list[SessionInfo]) -> dict[int, SessionInfo]:
    return {int(row.id): row for row in rows}


def no_utmp(root: Path) -> Path:
    return root / "no-utmp"


def machine(root: Path) -> None:
    """Kernel threads, a daemon, and two logins (root on tty1; a nameless uid over pts/3)."""
    add_process(root, 2, comm="kthreadd", ppid=0, exe=None, cmdline=b"", starttime=0)
    add_process(root, 300, comm="sshd", starttime=50, uid=0)
    add_process(root, 410, comm="login", starttime=100, uid=0, sessionid=4, loginuid=0)
    tty1, pts3 = os.makedev(4, 1), os.makedev(136, 3)
    add_process(root, 411, ppid=410, starttime=120, sessionid=4, loginuid=0, tty_nr=tty1)
    add_process(
        root, 502, comm="sshd", ppid=300, starttime=400, uid=0, sessionid=9, loginuid=NAMELESS_UID
    )
    add_process(
        root,
        501,
        ppid=502,
        starttime=410,
        uid=NAMELESS_UID,
        sessionid=9,
        loginuid=NAMELESS_UID,
        tty_nr=pts3,
    )


def test_processes_are_grouped_by_audit_session(root: Path) -> None:
    machine(root)
    rows = list_sessions(kernel_on(root), utmp_path=no_utmp(root))
    assert [int(r.id) for r in rows] == [-1, 4, 9]
    sessions = by_id(rows)

    nobody = sessions[-1]
    assert nobody == SessionInfo(NO_SESSION, started=started(0), processes=2)

    console = sessions[4]
    assert (console.user, console.uid, console.leader, console.tty) == (ROOT_NAME, 0, 410, "tty1")
    assert (console.processes, console.started) == (2, started(100))
    assert (console.state, console.remote, console.remote_host) == (DERIVED_STATE, None, None)
    assert (console.type, console.session_class, console.logind, console.utmp) == (
        None,
        None,
        False,
        False,
    )

    remote = sessions[9]
    # The leader is the oldest process, not the lowest pid; the tty is the first one found.
    assert (remote.leader, remote.tty, remote.started) == (502, "pts/3", started(400))
    assert (remote.user, remote.uid) == (str(NAMELESS_UID), NAMELESS_UID)


def test_threads_in_another_session_are_listed_but_counted_with_their_process(
    root: Path,
) -> None:
    add_process(root, 700, sessionid=12, loginuid=1000, threads={701: 12, 702: 13}, euid=0)
    (info,) = list_processes(kernel_on(root))
    assert info.process.session_id == 12 and info.euid == 0
    assert info.thread_sessions == ((Tid(702), SessionId(13)),)
    assert info.session_ids == {12, 13}
    rows = list_sessions(kernel_on(root), utmp_path=no_utmp(root))
    assert [(int(r.id), r.processes) for r in rows] == [(12, 1)]


def test_a_process_that_exits_mid_listing_is_left_out(root: Path) -> None:
    machine(root)
    directory = root / "501"
    opener, opened = opener_with({("501/cmdline", 1): lambda: shutil.rmtree(directory)})
    kernel = kernel_on(root, opener=opener)
    assert [int(p.process.pid) for p in list_processes(kernel)] == [2, 300, 410, 411, 502]
    assert opened["501/cmdline"] == 1
    assert by_id(list_sessions(kernel, utmp_path=no_utmp(root)))[9].processes == 1


def test_a_pid_reused_mid_read_is_left_out_not_given_the_new_session(root: Path) -> None:
    directory = add_process(root, 900, comm="old", starttime=100, sessionid=5, loginuid=1000)

    def reuse() -> None:
        shutil.rmtree(directory)
        add_process(root, 900, comm="new", starttime=200, sessionid=6, loginuid=1001)

    opener, _ = opener_with({("900/sessionid", 1): reuse})
    assert list_processes(kernel_on(root, opener=opener)) == []
    (now,) = list_processes(kernel_on(root))
    assert (now.process.name, now.process.session_id) == ("new", 6)


def test_a_process_the_kernel_refuses_to_show_is_left_out(root: Path) -> None:
    machine(root)
    opener, _ = opener_with({("410/status", 1): raising(errno.EACCES)})  # as under hidepid
    pids = [int(p.process.pid) for p in list_processes(kernel_on(root, opener=opener))]
    assert pids == [2, 300, 411, 501, 502]


def test_an_empty_tree_has_no_sessions(root: Path) -> None:
    assert list_sessions(kernel_on(root), utmp_path=no_utmp(root)) == []


def test_another_kernel_lists_its_processes_without_thread_detail() -> None:
    sim = SimKernel()
    sim.create_session(1)
    made = sim.create_process("a.exe", 1)
    listed = list_processes(sim)
    assert ProcessInfo(made) in listed
    assert all(info.thread_sessions == () and info.euid is None for info in listed)
    assert by_id(build_sessions(listed))[1].processes == sum(
        1 for info in listed if info.process.session_id == 1
    )


# -- the joins, from values ------------------------------------------------------------------


def proc(
    pid: int, session: int, start: float, *, login_uid: int = 0, tty: str | None = None
) -> ProcessInfo:
    return ProcessInfo(Process(Pid(pid), SessionId(session), start, login_uid=login_uid, tty=tty))


def logind(session_id: str, **fields: Any) -> LogindSession:
    return LogindSession(id=LogindSessionId(session_id), **fields)


def test_logind_describes_the_session_with_its_id() -> None:
    processes = [proc(10, 3, 1.0, tty="pts/0"), proc(11, 3, 2.0, tty="pts/0")]
    described = logind(
        "3",
        uid=0,
        user="someone",
        tty="",
        remote=True,
        remote_host="198.51.100.7",
        type="tty",
        session_class="user",
        state="active",
        active=True,
        leader=11,
    )
    (row,) = build_sessions(processes, [described])
    assert (row.remote, row.remote_host, row.type, row.session_class, row.state) == (
        True,
        "198.51.100.7",
        "tty",
        "user",
        "active",
    )
    assert (row.leader, row.tty, row.logind, row.processes) == (11, "pts/0", True, 2)
    assert (row.user, row.uid) == (ROOT_NAME, 0)  # from the loginuid /proc shows


def test_logind_is_joined_through_audit_when_its_id_is_not_the_audit_id() -> None:
    processes = [proc(10, 8, 1.0)]
    (row,) = build_sessions(processes, [logind("c1", audit=8, type="x11", state="online")])
    assert (int(row.id), row.type, row.state, row.logind) == (8, "x11", "online", True)


def test_of_two_logind_sessions_claiming_one_audit_id_the_one_named_by_it_wins() -> None:
    processes = [proc(10, 8, 1.0)]
    for order in (1, -1):
        candidates = [logind("c1", audit=8, type="x11"), logind("8", audit=8, type="tty")][::order]
        (row,) = build_sessions(processes, candidates)
        assert row.type == "tty"


def test_a_leader_logind_names_outside_the_session_is_not_believed() -> None:
    processes = [proc(20, 5, 3.0), proc(21, 5, 1.0)]
    (row,) = build_sessions(processes, [logind("5", leader=1)])
    assert row.leader == 21  # the oldest process: pid 1 is not in session 5


def test_a_logind_session_without_processes_is_listed_and_one_without_audit_is_not() -> None:
    rows = build_sessions(
        [proc(30, 4, 1.0)],
        [
            logind("6", uid=NAMELESS_UID, user="gone", state="closing", leader=77, timestamp=9.5),
            logind("c2", uid=0, user="container", state="active"),
            logind("4294967295", uid=0, user="unset", state="active"),  # no audit id either
        ],
    )
    assert [int(r.id) for r in rows] == [4, 6]
    closing = rows[1]
    assert (closing.processes, closing.state, closing.leader, closing.started) == (
        0,
        "closing",
        77,
        9.5,
    )
    assert (closing.uid, closing.user) == (NAMELESS_UID, str(NAMELESS_UID))


def test_without_a_logind_state_the_active_flag_decides() -> None:
    processes = [proc(10, 1, 1.0), proc(11, 2, 1.0)]
    rows = build_sessions(processes, [logind("1", active=True), logind("2", active=False)])
    assert [r.state for r in rows] == ["active", DERIVED_STATE]


def utmp(**fields: Any) -> list[UtmpRecord]:
    return [parse_utmp_record(record(**fields))]


def test_utmp_supplies_remote_host_and_tty_by_pid() -> None:
    processes = [proc(40, 2, 1.0), proc(41, 2, 2.0)]
    records = utmp(pid=40, line=b"pts/7", host=b"bastion.example.org")
    (row,) = build_sessions(processes, (), records)
    assert (row.tty, row.remote_host, row.remote, row.utmp) == (
        "pts/7",
        "bastion.example.org",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("host", "remote"),
    [
        (b"", False),
        (b":0", False),
        (b"localhost", False),
        (b"127.0.0.1", False),
        (b"::1", False),
        (b"198.51.100.7", True),
        (b"2001:db8::5", True),
    ],
)
def test_utmp_remote_by_tty_when_no_pid_matches(host: bytes, remote: bool) -> None:
    processes = [proc(40, 2, 1.0, tty="pts/7")]
    records = utmp(pid=99, line=b"pts/7", host=host)
    (row,) = build_sessions(processes, (), records)
    assert (row.remote, row.remote_host, row.utmp) == (remote, host.decode() or None, True)


def test_logind_wins_over_utmp_where_both_speak() -> None:
    processes = [proc(40, 2, 1.0)]
    records = utmp(pid=40, line=b"pts/7", host=b"203.0.113.1")
    (row,) = build_sessions(
        processes,
        [logind("2", remote=False, remote_host="", tty="tty3")],
        records,
    )
    # logind says "local" and names the tty; utmp only fills the host logind left empty.
    assert (row.remote, row.tty, row.remote_host, row.utmp) == (False, "tty3", "203.0.113.1", True)


def test_a_utmp_file_is_read_and_a_broken_one_is_ignored(root: Path) -> None:
    machine(root)
    good = root / "utmp"
    good.write_bytes(
        record(ut_type=UtmpType.DEAD_PROCESS, pid=501, host=b"old.example")
        + record(ut_type=UtmpType.USER_PROCESS, pid=502, line=b"pts/3", host=b"198.51.100.9")
    )
    row = by_id(list_sessions(kernel_on(root), utmp_path=good))[9]
    assert (row.remote_host, row.remote, row.utmp) == ("198.51.100.9", True, True)
    broken = root / "broken"
    broken.write_bytes(record(ut_type=99))
    rows = by_id(list_sessions(kernel_on(root), utmp_path=broken))
    assert (rows[9].utmp, rows[9].remote_host, rows[9].processes) == (False, None, 2)


# -- ProcessIdToSessionId and session_id_of on the live kernel, over the fake tree ---------------


def test_process_id_to_session_id_on_the_linux_kernel(root: Path) -> None:
    machine(root)
    with kernel_on(root).activate():
        assert nt.ProcessIdToSessionId(501) == sessionio.session_id_of(501) == 9
        assert nt.ProcessIdToSessionId(2) == sessionio.session_id_of(2) == -1
        for pid in (0, 31337):
            with pytest.raises(nt.error) as caught:
                nt.ProcessIdToSessionId(pid)
            assert caught.value.winerror == nt.ERROR_INVALID_PARAMETER == 87
            with pytest.raises(sessionio.NoSuchProcess):
                sessionio.session_id_of(pid)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_a_refused_sessionid_read_is_error_5(root: Path, code: int) -> None:
    machine(root)
    opener, opened = opener_with(
        {("411/sessionid", 1): raising(code), ("411/sessionid", 2): raising(code)}
    )
    with kernel_on(root, opener).activate():
        with pytest.raises(nt.error) as caught:
            nt.ProcessIdToSessionId(411)
        assert caught.value.args == (5, "ProcessIdToSessionId", "Access is denied.")
        with pytest.raises(sessionio.AccessDenied):
            sessionio.session_id_of(411)
        assert opened["411/sessionid"] == 2
        assert nt.ProcessIdToSessionId(411) == 4  # only those reads were refused
