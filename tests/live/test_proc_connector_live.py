"""The proc connector on the real kernel: fork, exec and exit of real processes, loss, close."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from sessionio.errors import BrokenResourceError, ClosedResourceError
from sessionio.linux.proc_connector import ProcConnector
from sessionio.protocols.proc_connector import (
    Ack,
    ProcessExec,
    ProcessExit,
    ProcessFork,
    ProcEvent,
)

DEADLINE = 10.0
"""Seconds any single expected event may take to show up (it normally takes milliseconds)."""

# The child forks; the grandchild execs a shell that exits with 3; the child prints the
# grandchild's pid and exits with the grandchild's status.
FORK_EXEC_EXIT = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-c", "exit 3"])
print(pid, flush=True)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""

FORK_STORM = """
import os
for _ in range(1000):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""


@pytest.fixture
def connector() -> Iterator[ProcConnector]:
    with ProcConnector() as opened:
        yield opened


def read_until(
    connector: ProcConnector, done: Callable[[list[ProcEvent]], bool]
) -> list[ProcEvent]:
    """Read events until ``done(all events so far)``; fail after DEADLINE seconds."""
    seen: list[ProcEvent] = []
    deadline = time.monotonic() + DEADLINE
    while not done(seen):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"expected events did not arrive within {DEADLINE} s")
        seen.extend(connector.read(remaining))
    return seen


def exited(pid: int) -> Callable[[list[ProcEvent]], bool]:
    def done(events: list[ProcEvent]) -> bool:
        return any(isinstance(e, ProcessExit) and e.pid == e.tgid == pid for e in events)

    return done


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE, check=False)


def test_fork_exec_and_exit_status_of_a_child_and_its_child(connector: ProcConnector) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", FORK_EXEC_EXIT], stdout=subprocess.PIPE, text=True
    )
    try:
        out, _ = child.communicate(timeout=DEADLINE)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 3
    grandchild = int(out)

    events = read_until(
        connector, lambda seen: exited(child.pid)(seen) and exited(grandchild)(seen)
    )

    def index(match: Callable[[ProcEvent], bool]) -> int:
        found = [i for i, e in enumerate(events) if match(e)]
        assert len(found) == 1, f"expected exactly one matching event, got {len(found)}"
        return found[0]

    me = os.getpid()
    child_fork = index(
        lambda e: (
            isinstance(e, ProcessFork)
            and (e.parent_tgid, e.child_pid, e.child_tgid) == (me, child.pid, child.pid)
        )
    )
    child_exec = index(lambda e: isinstance(e, ProcessExec) and e.pid == e.tgid == child.pid)
    grandchild_fork = index(
        lambda e: (
            isinstance(e, ProcessFork)
            and (e.parent_pid, e.parent_tgid) == (child.pid, child.pid)
            and (e.child_pid, e.child_tgid) == (grandchild, grandchild)
        )
    )
    grandchild_exec = index(lambda e: isinstance(e, ProcessExec) and e.tgid == grandchild)
    grandchild_exit = index(lambda e: isinstance(e, ProcessExit) and e.tgid == grandchild)
    child_exit = index(lambda e: isinstance(e, ProcessExit) and e.pid == e.tgid == child.pid)
    assert child_fork < child_exec < grandchild_fork < grandchild_exec < grandchild_exit
    # No order between the two exits: the kernel wakes the waiting parent before it sends the
    # child's exit event, so on two CPUs the parent's exit can be multicast first.
    assert child_exec < child_exit

    for position, parent in ((grandchild_exit, child.pid), (child_exit, me)):
        exit_event = events[position]
        assert isinstance(exit_event, ProcessExit)
        assert exit_event.exit_code == 0x300
        assert exit_event.returncode == 3
        assert exit_event.exit_signal == signal.SIGCHLD
        assert exit_event.parent_tgid == parent


def test_a_killed_process_exits_with_the_negative_signal(connector: ProcConnector) -> None:
    child = subprocess.Popen(["/bin/sh", "-c", "kill -KILL $$"])
    child.wait(timeout=DEADLINE)
    events = read_until(connector, exited(child.pid))
    (exit_event,) = [e for e in events if isinstance(e, ProcessExit) and e.tgid == child.pid]
    assert isinstance(exit_event, ProcessExit)
    assert exit_event.returncode == -signal.SIGKILL


def test_close_unsubscribes_and_later_use_is_refused() -> None:
    def answers_to(port: int, seen: list[ProcEvent]) -> list[Ack]:
        return [e for e in seen if isinstance(e, Ack) and e.ack == port + 1]

    with ProcConnector() as observer:
        watched = ProcConnector()
        port = watched.port_id
        # The kernel multicasts its answers to every listener: first to watched's LISTEN...
        read_until(observer, lambda seen: len(answers_to(port, seen)) == 1)
        watched.close()
        watched.close()  # idempotent
        # ... then, once watched is closed, to its IGNORE.
        seen = read_until(observer, lambda seen: len(answers_to(port, seen)) == 1)
    assert [ack.err for ack in answers_to(port, seen)] == [0]
    assert watched.closed
    with pytest.raises(ClosedResourceError):
        watched.read(0)
    with pytest.raises(ClosedResourceError):
        watched.fileno()


def test_the_socket_works_with_poll(connector: ProcConnector) -> None:
    poller = select.poll()
    poller.register(connector.fileno(), select.POLLIN)
    child = subprocess.Popen(["/bin/true"])
    child.wait(timeout=DEADLINE)
    assert poller.poll(DEADLINE * 1000)
    read_until(connector, exited(child.pid))


def test_lost_events_raise_once_and_the_connector_recovers() -> None:
    # A queue of 16 KiB (the kernel doubles it) holds a few dozen events; the storm sends 2000.
    with ProcConnector(receive_buffer=16 * 1024) as small:
        storm = run([sys.executable, "-c", FORK_STORM])
        assert storm.returncode == 0, storm.stderr
        with pytest.raises(BrokenResourceError):
            for _ in range(10_000):
                small.read(0)
        # The error is raised once the queue is empty: the kernel delivers again.
        child = subprocess.Popen(["/bin/sh", "-c", "exit 5"])
        child.wait(timeout=DEADLINE)
        events = read_until(small, exited(child.pid))
    (exit_event,) = [e for e in events if isinstance(e, ProcessExit) and e.tgid == child.pid]
    assert isinstance(exit_event, ProcessExit)
    assert exit_event.returncode == 5


def test_outside_the_initial_user_namespace_construction_fails_loudly() -> None:
    code = (
        "from sessionio.errors import UnsupportedPlatformError\n"
        "from sessionio.linux.proc_connector import ProcConnector\n"
        "try:\n"
        "    ProcConnector(ack_timeout=0.5)\n"
        "except UnsupportedPlatformError as error:\n"
        "    print(error.feature)\n"
    )
    result = run(["unshare", "--user", "--", sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "proc connector"


SEE_OWN_CHILD_EXIT = """
import subprocess, time
from sessionio.linux.proc_connector import ProcConnector
from sessionio.protocols.proc_connector import ProcessExit

with open("/proc/self/status") as f:
    assert "CapEff:\\t0000000000000000" in f.read(), "capabilities were not dropped"
with ProcConnector() as connector:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = connector.read(deadline - time.monotonic())
        if any(isinstance(e, ProcessExit) and e.tgid == child.pid for e in events):
            print("exit seen")
            break
"""


def test_subscribing_needs_no_capability() -> None:
    # Root with an empty bounding set execs with no effective capability at all.
    result = run(["setpriv", "--bounding-set=-all", "--", sys.executable, "-c", SEE_OWN_CHILD_EXIT])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exit seen"
