"""Attribution against a fake /proc tree, a fake pid cursor and fake pidfds: exact while the
requester can be read, remembered only when it is provably the same process, never another
process's session for a reused pid, and a bounded memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError
from sessionio.linux.procfs import ProcFS
from sessionio.model.ids import NO_SESSION
from sessionio.model.io_objects import FileObject
from sessionio.model.request import CallbackData, IoRequest
from sessionio.nt import FltGetRequestorSessionId, IoGetRequestorProcessId
from sessionio.ntdef.status import NTSTATUS
from sessionio.ntdef.values import IRP_MJ
from sessionio.protocols.fanotify import FAN_EPIDFD, FAN_NOPIDFD
from sessionio.runtime.attribution import (
    Attribution,
    Attributor,
    NotificationStamp,
    PidCursor,
    Requester,
    parse_last_pid,
)
from sessionio.runtime.linux_kernel import LinuxKernel
from tests.unit.linux.test_procfs_fake_tree import BTIME, UNSET, add_process, stat_line

PID_MAX = 1000


class Machine:
    """A fake /proc with a pid cursor and pidfds the test moves by hand."""

    def __init__(self, root: Path, capacity: int = 64) -> None:
        self.root = root
        self.last_pid = 50
        self.alive_pidfds: set[int] = set()
        self.cursor = PidCursor(lambda: self.last_pid, PID_MAX)
        kernel = LinuxKernel(ProcFS(root, clock_ticks=100))
        self.attributor = Attributor(
            kernel, capacity=capacity, cursor=self.cursor, is_alive=self.alive_pidfds.__contains__
        )

    def spawn(self, pid: int, *, session: int, starttime: int = 5000, comm: str = "app") -> None:
        """A process appears with ``pid``: the kernel's cursor passed it."""
        self.allocate_up_to(pid)
        add_process(
            self.root,
            pid,
            comm=comm,
            starttime=starttime,
            sessionid=session,
            loginuid=UNSET if session == UNSET else 1000 + session,
        )

    def allocate_up_to(self, pid: int) -> None:
        if pid <= self.last_pid:  # the cursor runs to pid_max, restarts at 300, comes round
            self.last_pid = PID_MAX - 1
            self.cursor.sample()
            self.last_pid = 300
            self.cursor.sample()
        self.last_pid = pid
        self.cursor.sample()

    def exit(self, pid: int) -> None:
        """The process exits and is reaped: /proc forgets it."""
        shutil.rmtree(self.root / str(pid))

    def set_session(self, pid: int, session: int) -> None:
        (self.root / str(pid) / "sessionid").write_text(str(session))

    def add_thread(self, pid: int, tid: int, *, session: int) -> None:
        """A thread with its own audit session, as /proc/TID shows it (a hidden entry)."""
        directory = self.root / str(tid)
        directory.mkdir()
        (directory / "stat").write_text(stat_line(tid, "worker", 1, 6000))
        (directory / "status").write_text(
            f"Name:\tworker\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{tid}\nPPid:\t1\n"
            "Uid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nThreads:\t2\n"
        )
        (directory / "sessionid").write_text(str(session))
        (directory / "loginuid").write_text(str(2000))

    def empty_queue(self) -> NotificationStamp:
        """The notification queue is seen empty, then a batch is read."""
        self.attributor.queue_empty(self.attributor.sample())
        return self.attributor.stamp()


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    (tmp_path / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\n")
    return Machine(tmp_path)


def learn_by_permission(machine: Machine, pid: int) -> Requester:
    token = machine.attributor.permission_token()
    requester = machine.attributor.blocked(pid, token)
    machine.empty_queue()  # the reader drains the notification queue before answering
    return requester


# -- exact ----------------------------------------------------------------------------------------


def test_a_blocked_requester_is_read_exactly(machine: Machine) -> None:
    machine.spawn(420, session=7, comm="cat")

    requester = learn_by_permission(machine, 420)

    assert requester.attribution is Attribution.EXACT
    assert (requester.pid, requester.tid, requester.session_id) == (420, 420, 7)
    assert requester.process is not None
    assert requester.process.name == "cat"
    assert requester.process.start_time == BTIME + 50.0  # 5000 ticks at 100 Hz
    assert (requester.euid, requester.login_uid) == (1000, 1007)


def test_a_session_set_after_the_first_sight_is_seen_at_once(machine: Machine) -> None:
    # pam_loginuid sets the session in a process that already ran: nothing is cached stale.
    machine.spawn(420, session=UNSET)
    assert learn_by_permission(machine, 420).session_id == NO_SESSION

    machine.set_session(420, 9)

    assert learn_by_permission(machine, 420).session_id == 9


def test_the_loginuid_is_read_again_exactly_when_the_session_changed(machine: Machine) -> None:
    # Writing loginuid always gives a new sessionid: an unchanged one means an unchanged
    # loginuid, so the remembered one answers (the fake tree can break the kernel's rule).
    machine.spawn(420, session=UNSET)
    assert learn_by_permission(machine, 420).login_uid is None

    (machine.root / "420" / "loginuid").write_text("1009")
    assert learn_by_permission(machine, 420).login_uid is None  # same session: not re-read

    machine.set_session(420, 9)
    requester = learn_by_permission(machine, 420)
    assert (requester.session_id, requester.login_uid) == (9, 1009)
    assert requester.process is not None and requester.process.login_uid == 1009


def test_a_thread_with_its_own_session_is_told_apart(machine: Machine) -> None:
    machine.spawn(420, session=7)
    machine.add_thread(420, 421, session=8)

    requester = machine.attributor.blocked(421, machine.attributor.permission_token(), is_tid=True)

    assert (requester.pid, requester.tid) == (420, 421)
    assert requester.session_id == 8
    assert requester.process is not None and requester.process.session_id == 7
    assert requester.login_uid == 2000


def test_a_live_notification_requester_needs_its_pidfd_alive(machine: Machine) -> None:
    machine.spawn(420, session=7)
    machine.alive_pidfds.add(33)
    stamp = machine.empty_queue()

    live = machine.attributor.notified(420, 33, stamp)
    assert (live.attribution, live.session_id) == (Attribution.EXACT, 7)

    # A pidfd that is no longer alive after the reads proves nothing: the /proc entry may
    # already be another process's. Nothing remembered is usable yet either (rule 2 holds,
    # but the entry learned above *is* this process, so it answers, marked as remembered).
    machine.alive_pidfds.clear()
    assert machine.attributor.notified(420, 33, stamp).attribution is Attribution.REMEMBERED


# -- remembered -----------------------------------------------------------------------------------


def test_a_reaped_requester_is_remembered_with_its_session(machine: Machine) -> None:
    machine.spawn(420, session=7, comm="echo")
    learn_by_permission(machine, 420)
    stamp = machine.empty_queue()
    machine.exit(420)

    requester = machine.attributor.notified(420, FAN_NOPIDFD, stamp)

    assert requester.attribution is Attribution.REMEMBERED
    assert requester.session_id == 7
    assert requester.process is not None and requester.process.name == "echo"


def test_a_reused_pid_never_inherits_the_old_session(machine: Machine) -> None:
    machine.spawn(420, session=7)
    learn_by_permission(machine, 420)
    machine.exit(420)
    machine.allocate_up_to(420)  # the cursor went round: 420 may belong to someone else now
    stamp = machine.empty_queue()

    requester = machine.attributor.notified(420, FAN_NOPIDFD, stamp)

    assert requester.attribution is Attribution.UNIDENTIFIED
    assert requester.thread is None
    assert requester.session_id == NO_SESSION
    assert len(machine.attributor) == 0  # the stale entry is gone for good


def test_the_new_holder_of_a_pid_replaces_the_old_one(machine: Machine) -> None:
    machine.spawn(420, session=7, starttime=5000)
    learn_by_permission(machine, 420)
    machine.exit(420)
    machine.spawn(420, session=9, starttime=7000)  # after a wrap
    machine.alive_pidfds.add(40)

    fresh = machine.attributor.notified(420, 40, machine.empty_queue())
    assert (fresh.attribution, fresh.session_id) == (Attribution.EXACT, 9)

    machine.exit(420)
    gone = machine.attributor.notified(420, FAN_NOPIDFD, machine.empty_queue())
    assert (gone.attribution, gone.session_id) == (Attribution.REMEMBERED, 9)


def test_an_event_queued_before_the_process_existed_is_not_given_its_session(
    machine: Machine,
) -> None:
    # An old notification of pid 420's previous holder is still queued (read with stamp
    # `old`) when the new holder's permission event teaches us about it.
    old = machine.attributor.stamp()
    machine.spawn(420, session=7)
    token = machine.attributor.permission_token()
    machine.attributor.blocked(420, token)
    machine.exit(420)

    assert machine.attributor.notified(420, FAN_NOPIDFD, old).attribution is (
        Attribution.UNIDENTIFIED
    )
    # Once the queue was seen empty after that permission event, later events are its own.
    assert machine.attributor.notified(420, FAN_NOPIDFD, machine.empty_queue()).session_id == 7


def test_a_requester_killed_while_blocked_is_remembered_from_its_permission_events(
    machine: Machine,
) -> None:
    machine.spawn(420, session=7)
    learn_by_permission(machine, 420)
    machine.spawn(430, session=8)
    machine.alive_pidfds.add(41)
    machine.attributor.notified(430, 41, machine.empty_queue())  # known from a notification
    machine.exit(420)
    machine.exit(430)

    token = machine.attributor.permission_token()
    assert machine.attributor.blocked(420, token).attribution is Attribution.REMEMBERED
    assert machine.attributor.blocked(430, token).attribution is Attribution.UNIDENTIFIED


def test_without_a_pidfd_the_live_holder_counts_only_while_the_pid_stayed_put(
    machine: Machine,
) -> None:
    machine.spawn(420, session=7)
    stamp = machine.empty_queue()

    for pidfd in (None, FAN_EPIDFD):
        requester = machine.attributor.notified(420, pidfd, stamp)
        assert (requester.attribution, requester.session_id) == (Attribution.EXACT, 7)

    # The cursor passed 420 since the queue was last seen empty: the holder read now may
    # not be the requester; what was learned before the wrap may not be trusted either.
    machine.exit(420)
    machine.spawn(420, session=9, starttime=8000)
    assert machine.attributor.notified(420, None, stamp).attribution is Attribution.UNIDENTIFIED


# -- the edges ------------------------------------------------------------------------------------


def test_no_pid_is_unidentified(machine: Machine) -> None:
    requester = machine.attributor.notified(0, None, machine.empty_queue())

    assert requester.thread is None
    assert requester.attribution is Attribution.UNIDENTIFIED


def test_memory_is_bounded_and_forgets_the_least_recently_used(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\n")
    machine = Machine(tmp_path, capacity=2)
    for pid in (420, 421, 422):
        machine.spawn(pid, session=pid - 400)
        learn_by_permission(machine, pid)
        machine.exit(pid)
    stamp = machine.empty_queue()

    assert len(machine.attributor) == 2
    assert machine.attributor.notified(420, FAN_NOPIDFD, stamp).thread is None
    assert machine.attributor.notified(422, FAN_NOPIDFD, stamp).session_id == 22


def test_the_nt_routines_read_a_remembered_requester_like_any_other(machine: Machine) -> None:
    machine.spawn(420, session=7)
    learn_by_permission(machine, 420)
    stamp = machine.empty_queue()
    machine.exit(420)
    kernel = LinuxKernel(ProcFS(machine.root))

    for requester, expected in (
        (machine.attributor.notified(420, FAN_NOPIDFD, stamp), (NTSTATUS.STATUS_SUCCESS, 7)),
        (Requester.unidentified(420), (NTSTATUS.STATUS_UNSUCCESSFUL, -1)),
    ):
        request = IoRequest(
            kernel, IRP_MJ.IRP_MJ_WRITE, requester.thread, FileObject("/f"), operation="modify"
        )
        data = CallbackData.for_request(request)
        assert FltGetRequestorSessionId(data) == expected
        assert IoGetRequestorProcessId(request) == (420 if requester.thread else 0)


# -- the pid cursor -------------------------------------------------------------------------------


def test_parse_last_pid_reads_the_fifth_field() -> None:
    assert parse_last_pid(b"0.00 0.01 0.05 1/87 4242\n") == 4242
    for bad in (b"", b"0.00 0.01 0.05 1/87", b"0.00 0.01 0.05 187 42", b"a b c 1/2 x"):
        with pytest.raises(MalformedEventError):
            parse_last_pid(bad)


@given(st.binary(max_size=64))
def test_parse_last_pid_parses_or_refuses_any_bytes(data: bytes) -> None:
    try:
        value = parse_last_pid(data)
    except MalformedEventError:
        return
    assert 0 <= value < 10**10


@given(
    start=st.integers(min_value=300, max_value=PID_MAX - 1),
    steps=st.lists(st.integers(min_value=0, max_value=PID_MAX - 301), min_size=1, max_size=12),
    pid=st.integers(min_value=300, max_value=PID_MAX - 1),
    since_index=st.integers(min_value=0),
)
def test_swept_says_exactly_whether_the_pid_was_allocated_in_between(
    start: int, steps: list[int], pid: int, since_index: int
) -> None:
    # Allocate like the kernel (cyclic, restarting at 300), sampling after each step; a step
    # never goes all the way round, as the reader guarantees by sampling often enough.
    last = start
    cursor = PidCursor(lambda: last, PID_MAX)
    positions = [cursor.sample()]
    allocated: list[set[int]] = []
    for step in steps:
        batch = set()
        for _ in range(step):
            last = last + 1 if last + 1 < PID_MAX else 300
            batch.add(last)
        allocated.append(batch)
        positions.append(cursor.sample())
    since = since_index % len(positions)
    for until in range(since, len(positions)):
        between = set().union(*allocated[since:until])
        # Exact for every pid a wrap can give out again (300 and up).
        assert cursor.swept(pid, positions[since], positions[until]) == (pid in between)
