"""ProcFS on the real /proc (root): audit sessions made by children writing /proc/self/loginuid.

Each child reports what the kernel told it (its sessionid, its thread id) on a pipe, and waits
for its stdin to close, so the test reads /proc while the process certainly exists, and ends it
when it chooses: no sleeps.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import psutil
import pytest

from sessionio.errors import NoSuchProcess
from sessionio.linux.procfs import ProcFS

LOGIN_CHILD = r"""
import os, sys
fd = os.open("/proc/self/loginuid", os.O_WRONLY)
os.write(fd, sys.argv[1].encode())
os.close(fd)
with open("/proc/self/sessionid") as f:
    print(f.read(), flush=True)
if sys.argv[2] == "wait":
    sys.stdin.read()
"""

THREAD_CHILD = r"""
import os, sys, threading

def set_loginuid(path, uid):
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, uid)
    os.close(fd)

def sessionid(path):
    with open(path) as f:
        return f.read()

set_loginuid("/proc/self/loginuid", b"1000")
print(sessionid("/proc/self/sessionid"), flush=True)
release = threading.Event()

def worker():
    # Only the thread itself may write its loginuid: /proc/thread-self, not /proc/self.
    set_loginuid("/proc/thread-self/loginuid", b"1001")
    print(threading.get_native_id(), sessionid("/proc/thread-self/sessionid"), flush=True)
    release.wait()

thread = threading.Thread(target=worker)
thread.start()
sys.stdin.read()
release.set()
thread.join()
"""

TIMEOUT = 10.0


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")  # end of output


class Children:
    """Children started by one test; all of them ended and reaped when it finishes.

    A thread per child reads its lines into a queue: waiting on the queue is exact, where
    select() on the pipe misses lines the text layer has already buffered.
    """

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[str]] = []
        self._lines: dict[int, queue.Queue[str]] = {}

    def start(self, code: str, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.running.append(child)
        lines: queue.Queue[str] = queue.Queue()
        self._lines[child.pid] = lines
        stdout = child.stdout
        assert stdout is not None
        threading.Thread(target=_pump, args=(stdout, lines), daemon=True).start()
        return child

    def read_line(self, child: subprocess.Popen[str]) -> str:
        """The child's next line, waiting at most TIMEOUT for it."""
        try:
            line = self._lines[child.pid].get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"child {child.pid} wrote nothing in {TIMEOUT} s")
        assert line, f"child {child.pid} exited with {child.wait(TIMEOUT)}"
        return line.strip()

    @staticmethod
    def finish(child: subprocess.Popen[str]) -> None:
        """Close its stdin (it then exits) and reap it."""
        assert child.stdin is not None
        child.stdin.close()
        child.wait(TIMEOUT)

    def close(self) -> None:
        for child in self.running:
            if child.poll() is None:
                child.kill()
            child.wait(TIMEOUT)
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


def test_session_id_agrees_with_what_each_child_was_given(children: Children) -> None:
    procfs = ProcFS()
    uids = (1000, 1001, 1002)
    started = [children.start(LOGIN_CHILD, str(uid), "wait") for uid in uids]
    told = [int(children.read_line(child)) for child in started]
    assert len(set(told)) == 3, "each loginuid write opens a new audit session"
    for child, uid, session in zip(started, uids, told, strict=True):
        assert procfs.session_id(child.pid) == session
        assert procfs.login_uid(child.pid) == uid
        snapshot = procfs.process(child.pid)
        assert (snapshot.pid, snapshot.ppid) == (child.pid, os.getpid())
        assert (snapshot.session_id, snapshot.login_uid) == (session, uid)
        assert snapshot.thread_session_ids == ()
        assert snapshot.exe == os.path.realpath(sys.executable)
        assert snapshot.cmdline[:2] == (sys.executable, "-c")
    assert set(told).isdisjoint({procfs.session_id(os.getpid())})


def test_a_thread_with_its_own_loginuid_reports_its_own_session(children: Children) -> None:
    procfs = ProcFS()
    child = children.start(THREAD_CHILD)
    process_session = int(children.read_line(child))
    tid_text, thread_text = children.read_line(child).split()
    tid, thread_session = int(tid_text), int(thread_text)
    assert tid != child.pid and thread_session != process_session
    assert procfs.session_id(child.pid) == process_session
    assert procfs.session_id(child.pid, tid) == thread_session
    assert procfs.login_uid(child.pid, tid) == 1001
    assert procfs.login_uid(child.pid) == 1000
    assert tid in procfs.tids(child.pid)
    snapshot = procfs.process(child.pid)
    assert snapshot.session_id == process_session
    assert snapshot.thread_session_ids == ((tid, thread_session),)


def test_a_process_that_exits_after_pids_is_no_such_process(children: Children) -> None:
    procfs = ProcFS()
    child = children.start(LOGIN_CHILD, "1000", "wait")
    children.read_line(child)
    assert child.pid in procfs.pids()
    start_ticks = procfs.stat(child.pid).starttime
    children.finish(child)  # exited and reaped: the pid is free
    try:
        snapshot = procfs.process(child.pid)
    except NoSuchProcess as err:
        assert err.pid == child.pid
    else:  # only if another process took the pid meanwhile: then it must not be ours
        assert snapshot.start_ticks != start_ticks


def test_racing_exits_give_the_right_session_or_no_such_process(children: Children) -> None:
    """Each child exits once it has reported and a thread reaps it while process() reads."""
    procfs = ProcFS()
    for _ in range(20):
        child = children.start(LOGIN_CHILD, "1000", "exit")
        session = int(children.read_line(child))
        reaper = threading.Thread(target=child.wait, args=(TIMEOUT,))
        reaper.start()
        try:
            snapshot = procfs.process(child.pid)
        except NoSuchProcess as err:
            assert err.pid == child.pid
        else:
            assert (snapshot.pid, snapshot.session_id, snapshot.login_uid) == (
                child.pid,
                session,
                1000,
            )
        finally:
            reaper.join(TIMEOUT)
        with pytest.raises(NoSuchProcess):
            procfs.process(child.pid)


def test_start_time_and_identity_agree_with_psutil() -> None:
    procfs = ProcFS()
    me = psutil.Process()
    assert procfs.start_time(os.getpid()) == pytest.approx(me.create_time(), abs=0.01)
    assert procfs.boot_time() == pytest.approx(psutil.boot_time(), abs=1)
    assert procfs.stat(os.getpid()).ppid == os.getppid()
    assert procfs.cmdline(os.getpid()) == me.cmdline()
    assert procfs.tids(os.getpid()) == sorted(t.id for t in me.threads())
    assert procfs.exe(2) is None  # kthreadd: a kernel thread has no executable
