"""Live session notifications: real audit sessions, the proc connector, AUDIT_LOGIN and /proc scans.

Each session is made by a child that says "ready", waits for "login", writes
/proc/self/loginuid (a new audit session id: the test process has none), prints the id the
kernel gave it, and then obeys one command a line on its stdin: ``fork`` (a child that exits at
once; it answers "forked"), ``exec`` (becomes ``cat``, which holds the session until its stdin
closes) or end of input (it exits). Between "ready" and "login" the test waits for the service
to handle the child's own exec (``SessionService.sync``): otherwise a late read of that exec
could see the new session and report it before the source a test is about.

"Within one second" is shown by construction rather than by a clock (timed assertions are
banned): these services scan /proc once an hour, so an event that arrives is the proc
connector's or audit's own (its ``detail`` names the source), never a periodic scan's. Every
wait is bounded by DEADLINE, an upper bound for a failing test, not a speed expectation.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from sessionio.linux.audit import AuditControl
from sessionio.linux.proc_connector import ProcConnector
from sessionio.model.session import SessionEvent
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.protocols.audit import AuditEnabled
from sessionio.runtime.linux_kernel import LinuxKernel
from sessionio.runtime.session_service import SessionService, watch_sessions
from tests.live.test_proc_connector_live import FORK_STORM
from tests.live.test_procfs_live import Children

DEADLINE = 10.0
NEVER = 3600.0
"""A rescan interval no test lasts: only events (or ENOBUFS) make these services scan."""

SESSION_CHILD = r"""
import os, sys

def write(value):
    fd = os.open("/proc/self/loginuid", os.O_WRONLY)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)

print("ready", flush=True)
if sys.stdin.readline().strip() != "login":
    sys.exit(3)
with open("/proc/self/loginuid") as f:
    if f.read().strip() != "4294967295":
        write(b"4294967295")
write(b"1000")
with open("/proc/self/sessionid") as f:
    print(f.read().strip(), flush=True)
while True:
    command = sys.stdin.readline().strip()
    if command == "fork":
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("forked", flush=True)
    elif command == "exec":
        os.execv("/bin/cat", ["cat"])
    else:
        break
"""

OPENING = [E.IoSessionEventCreated, E.IoSessionEventConnected, E.IoSessionEventLogon]
CLOSING = [E.IoSessionEventLogoff, E.IoSessionEventDisconnected, E.IoSessionEventTerminated]
LIFECYCLE = OPENING + CLOSING
LIFECYCLE_SYNTHESIZED = [False, True, False, True, True, False]


class Recorder:
    """A session-event callback that test threads can wait on (it runs on the service thread)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.events: list[SessionEvent] = []

    def __call__(self, event: SessionEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, session_id: int) -> list[SessionEvent]:
        with self._changed:
            return [e for e in self.events if e.session_id == session_id]

    def wait_for(self, session_id: int, event: E, deadline: float = DEADLINE) -> list[SessionEvent]:
        """The session's events once ``event`` is among them; fail after ``deadline`` s."""
        with self._changed:
            arrived = self._changed.wait_for(
                lambda: any(e.session_id == session_id and e.event == event for e in self.events),
                deadline,
            )
        if not arrived:
            pytest.fail(f"no {event.name} for session {session_id} within {deadline} s")
        return self.of(session_id)


def start_session(
    children: Children, service: SessionService | None = None
) -> tuple[subprocess.Popen[str], int]:
    """A child in a new audit session, waiting for commands; returns it and its session id.

    With ``service``, the session is made only once the service has handled the child's exec.
    """
    child = children.start(SESSION_CHILD)
    assert children.read_line(child) == "ready"
    if service is not None:
        assert service.sync(DEADLINE), "the service did not catch up"
    command(child, "login")
    return child, int(children.read_line(child))


def command(child: subprocess.Popen[str], line: str) -> None:
    assert child.stdin is not None
    child.stdin.write(line + "\n")
    child.stdin.flush()


def end(child: subprocess.Popen[str]) -> None:
    Children.finish(child)


@contextmanager
def service_with(**options: object) -> Iterator[tuple[LinuxKernel, SessionService, Recorder]]:
    kernel = LinuxKernel()
    recorder = Recorder()
    kernel.on_session_event(recorder)
    options.setdefault("logind", False)
    options.setdefault("audit", False)
    options.setdefault("rescan_interval", NEVER)
    with SessionService(kernel, **options) as service:  # type: ignore[arg-type]
        yield kernel, service, recorder


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def audit_on() -> Iterator[None]:
    """audit_enabled=1 for one test; the machine's value is restored whatever happens."""
    with AuditControl() as control:
        original = control.status().enabled
        assert original != AuditEnabled.LOCKED, "audit is locked on this machine"
        try:
            control.set_enabled(AuditEnabled.ON)
            yield
        finally:
            control.set_enabled(original)
            assert control.status().enabled == original


def test_a_child_that_forks_is_created_by_the_proc_connector_and_terminated_at_exit(
    children: Children,
) -> None:
    with service_with() as (kernel, service, recorder):
        child, session_id = start_session(children, service)
        command(child, "fork")
        assert children.read_line(child) == "forked"
        opened = recorder.wait_for(session_id, E.IoSessionEventLogon)
        assert [e.event for e in opened] == OPENING
        assert opened[0].detail == f"source=proc pid={child.pid} uid=1000 fork-parent"
        assert kernel.session(session_id).user is not None
        assert service.sync(DEADLINE)
        # The grandchild was reaped before "forked"; its exit event may arrive after the
        # parent's (the kernel sends it after waking the parent), so it may still be counted.
        assert child.pid in service.tracker.processes_of(session_id)
        end(child)
        events = recorder.wait_for(session_id, E.IoSessionEventTerminated)
    assert [e.event for e in events] == LIFECYCLE
    assert [e.synthesized for e in events] == LIFECYCLE_SYNTHESIZED
    assert events[-1].detail == f"source=proc pid={child.pid} exited"
    assert session_id not in {s.id for s in kernel.sessions()}


def test_a_child_that_execs_is_created_and_its_last_process_ends_it(children: Children) -> None:
    with service_with() as (kernel, service, recorder):
        child, session_id = start_session(children, service)
        command(child, "exec")
        opened = recorder.wait_for(session_id, E.IoSessionEventLogon)
        assert opened[0].detail == f"source=proc pid={child.pid} uid=1000 exec"
        assert kernel.session(session_id).state.name == "IoSessionStateLoggedOn"
        end(child)  # cat reads end of input and exits
        events = recorder.wait_for(session_id, E.IoSessionEventTerminated)
    assert [e.event for e in events] == LIFECYCLE


def test_a_session_whose_process_never_forks_or_execs_is_found_by_the_reconciling_scan(
    children: Children,
) -> None:
    with service_with(rescan_interval=0.2) as (_kernel, service, recorder):
        child, session_id = start_session(children, service)  # then it only waits on stdin
        opened = recorder.wait_for(session_id, E.IoSessionEventLogon)
        assert opened[0].detail == f"source=scan pid={child.pid} uid=1000"
        end(child)
        events = recorder.wait_for(session_id, E.IoSessionEventTerminated)
    assert [e.event for e in events] == LIFECYCLE


def test_a_session_whose_events_were_lost_is_found_by_the_scan_after_enobufs(
    children: Children,
) -> None:
    # The service thread is held in a callback while a fork storm overflows a small queue,
    # then a new session forks unseen: only the scan that ENOBUFS triggers can find it.
    release = threading.Event()
    held = threading.Event()

    def hold(event: SessionEvent) -> None:
        held.set()
        release.wait(DEADLINE)

    small = ProcConnector(receive_buffer=16 * 1024)
    with service_with(proc_connector=small) as (kernel, service, recorder):
        try:
            first, first_id = start_session(children, service)
            kernel.on_session_event(hold, session=first_id, events=[E.IoSessionEventCreated])
            command(first, "fork")
            assert held.wait(DEADLINE), "the service never delivered the first session"
            storm = subprocess.run(
                [sys.executable, "-c", FORK_STORM], check=False, capture_output=True, timeout=60
            )
            assert storm.returncode == 0, storm.stderr
            second, second_id = start_session(children)
            command(second, "fork")
            assert children.read_line(second) == "forked"
        finally:
            release.set()
        opened = recorder.wait_for(second_id, E.IoSessionEventLogon)
        assert opened[0].detail == f"source=scan pid={second.pid} uid=1000"
        end(second)
        end(first)
        recorder.wait_for(second_id, E.IoSessionEventTerminated)
        recorder.wait_for(first_id, E.IoSessionEventTerminated)
    assert [e.event for e in recorder.of(second_id)] == LIFECYCLE


@pytest.mark.usefixtures("audit_on")
def test_audit_login_reports_the_creation_with_the_childs_own_ids(children: Children) -> None:
    with service_with(audit=True) as (_kernel, service, recorder):
        assert "audit" in service.sources
        child, session_id = start_session(children, service)  # no fork, no exec: audit only
        opened = recorder.wait_for(session_id, E.IoSessionEventLogon)
        assert [e.event for e in opened] == OPENING
        assert opened[0].detail == (
            f"source=audit pid={child.pid} uid=1000 old-ses=unset ses={session_id}"
        )
        end(child)
        events = recorder.wait_for(session_id, E.IoSessionEventTerminated)
    assert [e.event for e in events] == LIFECYCLE


def test_a_subscriber_that_raises_does_not_stop_the_service(children: Children) -> None:
    def explode(event: SessionEvent) -> None:
        raise RuntimeError("a subscriber bug")

    with service_with() as (kernel, service, recorder):
        kernel.on_session_event(explode)  # after the recorder: it still hears everything
        child, session_id = start_session(children, service)
        command(child, "fork")
        recorder.wait_for(session_id, E.IoSessionEventLogon)
        end(child)
        events = recorder.wait_for(session_id, E.IoSessionEventTerminated)
        assert service.running and service.error is None
    assert [e.event for e in events] == LIFECYCLE


def test_watch_sessions_reports_existing_sessions_first_then_changes(children: Children) -> None:
    existing, existing_id = start_session(children)
    recorder = Recorder()
    with watch_sessions(
        recorder, kernel=LinuxKernel(), audit=False, logind=False, rescan_interval=NEVER
    ) as service:
        found = recorder.wait_for(existing_id, E.IoSessionEventLogon)
        assert found[0].detail == f"source=scan pid={existing.pid} uid=1000"
        assert service.sources == ("proc-connector", "scan")
        end(existing)
        recorder.wait_for(existing_id, E.IoSessionEventTerminated)
    assert not service.running


def test_stop_from_a_callback_ends_the_service(children: Children) -> None:
    with service_with() as (kernel, service, recorder):
        child, session_id = start_session(children, service)
        kernel.on_session_event(
            lambda event: service.stop(), session=session_id, events=[E.IoSessionEventLogon]
        )
        command(child, "fork")
        recorder.wait_for(session_id, E.IoSessionEventLogon)
        assert service.wait(DEADLINE)
        assert service.error is None


# -- sessionio events, as a real command ------------------------------------------------------


class Lines:
    """Lines a subprocess writes to one pipe, read with a deadline."""

    def __init__(self, stream: object) -> None:
        self._fd = stream.fileno()  # type: ignore[attr-defined]
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def until(self, done: Callable[[str], bool]) -> list[str]:
        """Every line read until one satisfies ``done``; fail after DEADLINE seconds."""
        seen: list[str] = []
        deadline = time.monotonic() + DEADLINE
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                seen.append(line.decode())
                if done(seen[-1]):
                    return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                pytest.fail(f"not seen within {DEADLINE} s; got {seen}")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                pytest.fail(f"the stream ended; got {seen}")
            self._buffer += chunk


def is_event(session_id: int, name: str) -> Callable[[str], bool]:
    """Whether a --json line is event ``name`` of session ``session_id``."""

    def matches(line: str) -> bool:
        row = json.loads(line)
        return bool(row["session"] == session_id and row["event"] == name)

    return matches


@pytest.mark.parametrize(("stop", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_events_json_shows_a_real_session_from_created_to_terminated(
    children: Children, stop: signal.Signals, exit_code: int
) -> None:
    argv = [sys.executable, "-m", "sessionio", "events", "--json", "--no-logind", "--no-audit"]
    argv += ["--rescan-interval", str(NEVER)]
    events = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert events.stdout is not None and events.stderr is not None
        Lines(events.stderr).until(lambda line: "following sessions" in line)
        child, session_id = start_session(children)
        command(child, "fork")
        stdout = Lines(events.stdout)
        # The child lives until the command has seen it: a session whose every process is
        # gone before its fork or exec is read cannot be read from /proc (only audit sees it).
        rows = [json.loads(line) for line in stdout.until(is_event(session_id, "logon"))]
        end(child)
        rows += [json.loads(line) for line in stdout.until(is_event(session_id, "terminated"))]
        events.send_signal(stop)
        assert events.wait(DEADLINE) == exit_code
    finally:
        if events.poll() is None:
            events.kill()
        events.wait(DEADLINE)
        for stream in (events.stdout, events.stderr):
            if stream is not None:
                stream.close()
    mine = [row for row in rows if row["session"] == session_id]
    assert [row["event"] for row in mine] == [
        "created",
        "connected",
        "logon",
        "logoff",
        "disconnected",
        "terminated",
    ]
    assert [row["synthesized"] for row in mine] == LIFECYCLE_SYNTHESIZED
    assert [row["state"] for row in mine] == [
        "created",
        "connected",
        "logged_on",
        "logged_off",
        "disconnected",
        "terminated",
    ]
    assert all(isinstance(row["session"], int) for row in mine)
    assert [row["sequence"] for row in mine] == sorted(row["sequence"] for row in mine)
    # The command's scan cannot be synced with: its exec event may be read after the login.
    assert mine[0]["detail"].startswith(f"source=proc pid={child.pid} uid=1000 ")
    assert {"time", "local"} <= set(mine[0])


def test_events_filters_by_session_and_event(children: Children) -> None:
    other, other_id = start_session(children)  # exists before: it must not be reported
    argv = [sys.executable, "-m", "sessionio", "events", "--json", "--no-logind", "--no-audit"]
    argv += ["--rescan-interval", str(NEVER), "--events", "created,terminated"]
    child, session_id = start_session(children)
    argv += ["--session", str(session_id), "--session", str(other_id)]
    events = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert events.stdout is not None and events.stderr is not None
        Lines(events.stderr).until(lambda line: "following sessions" in line)
        command(child, "fork")  # already known from the start scan: nothing new until it ends
        end(child)
        end(other)
        seen = Lines(events.stdout).until(is_event(other_id, "terminated"))
        events.send_signal(signal.SIGTERM)
        assert events.wait(DEADLINE) == 0
    finally:
        if events.poll() is None:
            events.kill()
        events.wait(DEADLINE)
        for stream in (events.stdout, events.stderr):
            if stream is not None:
                stream.close()
    rows = [json.loads(line) for line in seen]
    assert {(row["session"], row["event"]) for row in rows} == {
        (session_id, "terminated"),
        (other_id, "terminated"),
    }
    assert len(rows) == 2
