"""FileMonitor on the real kernel (root): real audit sessions, real permission answers.

Every test watches a fresh tmpfs mounted on a temporary directory, so the filesystem mark
covers nothing but that tree and no other process on the machine waits for these monitors.
Children are Python processes that make their own audit session (they write a uid to
/proc/self/loginuid), print /proc/self/sessionid, then run the operations they are given.
Every wait is bounded; children are killed and the tmpfs unmounted in ``finally``.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionio.model.request import CallbackData
from sessionio.nt import (
    FltGetRequestorProcessId,
    FltGetRequestorSessionId,
    IoGetRequestorProcess,
    IoGetRequestorSessionId,
)
from sessionio.ntdef.status import NTSTATUS
from sessionio.ntdef.values import FLT_PREOP_CALLBACK_STATUS
from sessionio.rules.schema import Verdict
from sessionio.runtime.attribution import Attribution
from sessionio.runtime.file_monitor import OVERFLOW, FileMonitor, FileOperation, Outcome
from sessionio.runtime.linux_kernel import LinuxKernel

WAIT = 10.0  # seconds: an upper bound against hangs, never a synchronisation

# argv: LOGINUID OP... ; LOGINUID "-" keeps the process out of any session. OP is w:PATH
# (create or append a line), r:PATH (open and read), open:PATH (open for appending and keep
# it open), "write" (write a line to the file kept open and close it), mv:A:B, rm:PATH,
# "hold" (wait for a line on stdin) or say:TEXT (print TEXT). The child exits right after
# its last operation.
SESSION_CHILD = r"""
import os, sys
uid = sys.argv[1]
if uid != "-":
    fd = os.open("/proc/self/loginuid", os.O_WRONLY)
    os.write(fd, uid.encode())
    os.close(fd)
with open("/proc/self/sessionid") as f:
    print(int(f.read()), flush=True)
kept = None
for arg in sys.argv[2:]:
    op, _, rest = arg.partition(":")
    try:
        if op == "open":
            kept = open(rest, "a")
        elif op == "write":
            kept.write("data\n")
            kept.close()
        elif op == "w":
            with open(rest, "a") as f:
                f.write("data\n")
        elif op == "r":
            with open(rest) as f:
                f.read()
        elif op == "mv":
            os.rename(*rest.split(":"))
        elif op == "rm":
            os.unlink(rest)
        elif op == "hold":
            sys.stdin.readline()
        elif op == "say":
            print(rest, flush=True)
    except OSError as err:
        print("errno", err.errno, rest, flush=True)
"""


class Children:
    """Children of one test; each is killed (if need be) and reaped at the end."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[str]] = []

    def start(self, loginuid: str, *ops: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", SESSION_CHILD, loginuid, *ops],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.running.append(child)
        return child

    @staticmethod
    def line(child: subprocess.Popen[str]) -> str:
        """The child's next line, waiting at most WAIT for it."""
        assert child.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            if not selector.select(WAIT):
                pytest.fail(f"child {child.pid} printed nothing in {WAIT} s")
        return child.stdout.readline().strip()

    @staticmethod
    def finish(child: subprocess.Popen[str]) -> str:
        """Let it go on (a line on stdin), and return the rest of its output once it exited."""
        out, _ = child.communicate("go\n", timeout=WAIT)
        return out

    def close(self) -> None:
        for child in self.running:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(ValueError, OSError):
                child.communicate(timeout=WAIT)


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


@contextlib.contextmanager
def mounted_tmpfs() -> Iterator[Path]:
    path = tempfile.mkdtemp(prefix="sessionio-monitor-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "none", path], check=True)
    try:
        yield Path(path)
    finally:
        if subprocess.run(["umount", path], check=False).returncode != 0:
            subprocess.run(["umount", "-l", path], check=True)
        os.rmdir(path)


@pytest.fixture
def tree() -> Iterator[Path]:
    with mounted_tmpfs() as path:
        yield path


class Records:
    """A subscriber that keeps every FileOperation and lets the test wait for some."""

    def __init__(self) -> None:
        self.items: list[FileOperation] = []
        self._changed = threading.Condition()

    def __call__(self, op: FileOperation) -> None:
        with self._changed:
            self.items.append(op)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[FileOperation]], bool]) -> list[FileOperation]:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.items), WAIT):
                pytest.fail(f"not seen within {WAIT} s; records: {self.items}")
            return list(self.items)

    def of(self, path: Path | str, operation: str | None = None) -> list[FileOperation]:
        with self._changed:
            return [
                op
                for op in self.items
                if op.path == str(path) and (operation is None or op.operation == operation)
            ]


@contextlib.contextmanager
def running(monitor: FileMonitor) -> Iterator[Records]:
    records = Records()
    monitor.subscribe(records)
    monitor.start()
    try:
        yield records
    finally:
        monitor.close()


def has(path: Path, operation: str, count: int = 1) -> Callable[[list[FileOperation]], bool]:
    return lambda items: (
        sum(1 for op in items if op.path == str(path) and op.operation == operation) >= count
    )


class DenyFilter:
    """A minifilter: deny opens of the paths in ``deny``, record what it was asked."""

    name = "test.deny"

    def __init__(self, deny: set[str] | None = None) -> None:
        self.deny = deny or set()
        self.seen: list[tuple[str, int]] = []

    def pre_operation(self, data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        self.seen.append((data.path, threading.get_native_id()))
        if data.path in self.deny or "*" in self.deny:
            return data.deny()
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK


# -- attribution ----------------------------------------------------------------------------------


def test_operations_of_two_sessions_are_attributed_even_after_their_processes_are_gone(
    tree: Path, children: Children
) -> None:
    """The reader is held up in a filter while the children write and exit, so their
    notifications are read after they were reaped: the sessions are remembered, exactly."""
    gate, entered, release = tree / "gate", threading.Event(), threading.Event()
    gate.write_text("")

    def hold_the_gate(data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        if data.path == str(gate):
            entered.set()
            release.wait(WAIT)
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    kernel = LinuxKernel()
    kernel.filters.register("test.gate", 400000, pre=hold_the_gate)
    monitor = FileMonitor(kernel, [tree], decision_timeout=WAIT * 2)
    try:
        with running(monitor) as records:
            writers = {}
            for uid in ("1000", "1001"):
                path = tree / f"by-{uid}"
                child = children.start(uid, f"open:{path}", "hold", "write")
                writers[child] = (int(Children.line(child)), path)
            records.wait_for(lambda items: len([o for o in items if o.operation == "open"]) >= 2)

            gater = children.start("-", f"r:{gate}")
            assert entered.wait(WAIT)
            for child in writers:
                Children.finish(child)  # writes again, exits and is reaped
            release.set()
            Children.finish(gater)

            for child, (session, path) in writers.items():
                ops = records.wait_for(has(path, "close_write"))
                mine = [op for op in ops if op.path == str(path)]
                assert {op.pid for op in mine} == {child.pid}
                assert {op.session_id for op in mine} == {session}
                late = [op for op in mine if op.attribution is Attribution.REMEMBERED]
                assert {op.operation for op in late} >= {"modify", "close_write"}
                assert all(op.attribution is not Attribution.UNIDENTIFIED for op in mine)
            assert monitor.stats.remembered >= 2
    finally:
        release.set()


def test_the_nt_routines_answer_inside_live_callbacks(tree: Path, children: Children) -> None:
    """A filter written against the model runs live: it denies by FltGetRequestorSessionId."""
    seen: dict[int, tuple[object, ...]] = {}
    denied_session: list[int] = []

    def by_session(data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        status, session = FltGetRequestorSessionId(data)
        pid = FltGetRequestorProcessId(data)
        process = IoGetRequestorProcess(data.request)
        seen[pid] = (status, session, IoGetRequestorSessionId(data.request), process)
        if denied_session and session == denied_session[0]:
            return data.deny()
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    target = tree / "secret"
    target.write_text("x")
    kernel = LinuxKernel()
    kernel.filters.register("test.by-session", 400000, pre=by_session)
    with running(FileMonitor(kernel, [tree])):
        first = children.start("1000", "hold", f"r:{target}")
        second = children.start("1001", "hold", f"r:{target}")
        sessions = {first: int(Children.line(first)), second: int(Children.line(second))}
        denied_session.append(sessions[first])

        assert Children.finish(first) == f"errno {errno.EPERM} {target}\n"
        assert Children.finish(second) == ""

    for child, session in sessions.items():
        status, got, io_status, process = seen[child.pid]
        assert (status, got) == (NTSTATUS.STATUS_SUCCESS, session)
        assert io_status == (NTSTATUS.STATUS_SUCCESS, session)
        assert getattr(process, "pid", None) == child.pid


# -- the permission discipline --------------------------------------------------------------------


@pytest.mark.parametrize("default", [Verdict.ALLOW, Verdict.DENY])
def test_a_filter_that_raises_gets_the_default_verdict(
    tree: Path, children: Children, default: Verdict
) -> None:
    boom, fine = tree / "boom", tree / "fine"
    boom.write_text("x")
    fine.write_text("x")

    def explode(data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        if data.path == str(boom):
            raise RuntimeError("filter bug")
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    kernel = LinuxKernel()
    kernel.filters.register("test.explode", 400000, pre=explode)
    monitor = FileMonitor(kernel, [tree], on_timeout=default)
    with running(monitor) as records:
        child = children.start("1000", f"r:{boom}", f"r:{fine}")
        lines = Children.finish(child).splitlines()[1:]  # after its session

        assert lines == ([] if default is Verdict.ALLOW else [f"errno {errno.EPERM} {boom}"])
        records.wait_for(has(fine, "open"))
        [failed] = records.of(boom, "open")
        assert (failed.outcome, failed.verdict) == (Outcome.ERROR, default)
        assert "filter bug" in failed.detail
        [after] = records.of(fine, "open")
        assert (after.outcome, after.verdict) == (Outcome.DECIDED, Verdict.ALLOW)
    assert monitor.stats.filter_errors == 1


def test_a_filter_that_hangs_gets_the_default_verdict_and_the_monitor_goes_on(
    tree: Path, children: Children
) -> None:
    slow, fine = tree / "slow", tree / "fine"
    slow.write_text("x")
    fine.write_text("x")
    never = threading.Event()

    def hang(data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        if data.path == str(slow):
            never.wait(WAIT * 3)
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    kernel = LinuxKernel()
    kernel.filters.register("test.hang", 400000, pre=hang)
    monitor = FileMonitor(kernel, [tree], decision_timeout=0.3, on_timeout=Verdict.DENY)
    try:
        with running(monitor) as records:
            child = children.start("1000", f"r:{slow}", f"r:{fine}", f"r:{slow}")
            lines = Children.finish(child).splitlines()

            assert lines[1:] == [f"errno {errno.EPERM} {slow}"] * 2  # fine was allowed
            records.wait_for(has(slow, "open", 2))
            assert {op.outcome for op in records.of(slow, "open")} == {Outcome.TIMEOUT}
            [ok] = records.of(fine, "open")
            assert (ok.outcome, ok.verdict) == (Outcome.DECIDED, Verdict.ALLOW)
        assert monitor.stats.timeouts == 2
    finally:
        never.set()


def test_the_own_process_and_all_its_threads_are_allowed_without_filters(
    tree: Path, children: Children
) -> None:
    own = tree / "own"
    own.write_text("x")
    deny_all = DenyFilter({"*"})
    kernel = LinuxKernel()
    kernel.filters.register_filter(deny_all, 400000)
    monitor = FileMonitor(kernel, [tree])
    with running(monitor):
        own.read_text()  # the main thread
        errors: list[BaseException] = []

        def from_a_thread() -> None:
            try:
                own.read_text()
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        thread.join(WAIT)
        assert not thread.is_alive() and errors == []

        child = children.start("1000", f"r:{own}")
        assert Children.finish(child).splitlines()[1:] == [f"errno {errno.EPERM} {own}"]
    assert [path for path, _tid in deny_all.seen] == [str(own)]  # the child's open only
    assert monitor.stats.own_allowed >= 2


def test_a_filter_may_read_files_in_the_tree_it_guards(tree: Path, children: Children) -> None:
    """The filter's own open waits for the reader, which is waiting for the filter: the
    reader answers its own process's events meanwhile, so this is decided, not timed out."""
    policy, target = tree / "policy", tree / "target"
    policy.write_text("deny\n")
    target.write_text("x")

    def read_policy(data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        if data.path == str(target) and policy.read_text() == "deny\n":
            return data.deny()
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    kernel = LinuxKernel()
    kernel.filters.register("test.policy-file", 400000, pre=read_policy)
    monitor = FileMonitor(kernel, [tree], decision_timeout=WAIT)
    with running(monitor) as records:
        child = children.start("1000", f"r:{target}")
        assert Children.finish(child).splitlines()[1:] == [f"errno {errno.EPERM} {target}"]
        records.wait_for(has(target, "open"))
        [record] = records.of(target, "open")
        assert (record.outcome, record.verdict) == (Outcome.DECIDED, Verdict.DENY)
    assert monitor.stats.timeouts == 0 and monitor.stats.own_allowed >= 1


def test_the_answer_comes_before_the_subscribers(tree: Path, children: Children) -> None:
    target = tree / "target"
    target.write_text("x")
    verdicts: list[bool] = []
    child_box: list[subprocess.Popen[str]] = []

    def subscriber(op: FileOperation) -> None:
        # The child prints "opened" only once its open returned: readable here means the
        # kernel had its answer before this subscriber ran.
        if op.path == str(target) and op.operation == "open":
            stdout = child_box[0].stdout
            assert stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(stdout, selectors.EVENT_READ)
                verdicts.append(bool(selector.select(WAIT)))

    kernel = LinuxKernel()
    kernel.filters.register_filter(DenyFilter(), 400000)
    monitor = FileMonitor(kernel, [tree])
    monitor.subscribe(subscriber)
    with running(monitor) as records:
        child = children.start("1000", "hold", f"r:{target}", "say:opened")
        Children.line(child)  # its session: the stdout pipe is empty again
        child_box.append(child)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        records.wait_for(has(target, "open"))
        assert Children.line(child) == "opened"
    assert verdicts == [True]


def test_a_subscriber_that_logs_into_the_watched_tree_does_not_deadlock(
    tree: Path, children: Children
) -> None:
    log = tree / "monitor.log"

    def log_it(op: FileOperation) -> None:
        with open(log, "a") as f:  # an open, a write, a close in the tree, for each record
            f.write(f"{op.operation} {op.path}\n")

    kernel = LinuxKernel()
    kernel.filters.register_filter(DenyFilter(), 400000)
    monitor = FileMonitor(kernel, [tree])
    monitor.subscribe(log_it)
    with running(monitor) as records:
        target = tree / "data"
        child = children.start("1000", *[f"w:{target}"] * 5)
        Children.finish(child)
        records.wait_for(has(target, "close_write", 5))
    lines = log.read_text().splitlines()
    assert f"close_write {target}" in lines
    assert all(str(log) not in line for line in lines)  # its own operations are not reported


def test_a_killed_permission_monitor_leaves_no_opener_blocked(
    tree: Path, children: Children
) -> None:
    """SIGKILL while a filter holds one open and more opens queue behind it."""
    script = f"""
import sys, threading
from sessionio.ntdef.values import FLT_PREOP_CALLBACK_STATUS
from sessionio.runtime.file_monitor import FileMonitor
from sessionio.runtime.linux_kernel import LinuxKernel

def forever(data):
    print("deciding", data.path, flush=True)
    threading.Event().wait()
    return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

kernel = LinuxKernel()
kernel.filters.register("test.forever", 400000, pre=forever)
monitor = FileMonitor(kernel, [{str(tree)!r}], decision_timeout=600)
print("ready", flush=True)
monitor.run()
"""
    target = tree / "stream"
    target.write_text("x")
    monitor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert Children.line(monitor) == "ready"
        openers = [children.start("1000", *[f"r:{target}"] * 20) for _ in range(3)]
        assert Children.line(monitor).startswith("deciding")  # an opener is blocked now
        monitor.send_signal(signal.SIGKILL)
        monitor.wait(WAIT)
        for opener in openers:
            lines = Children.finish(opener).splitlines()
            assert lines[1:] == []  # every open went through, none failed
            assert opener.returncode == 0
    finally:
        if monitor.poll() is None:
            monitor.kill()
        monitor.communicate(timeout=WAIT)


def test_every_event_fd_is_closed(tree: Path, children: Children) -> None:
    watched, outside = tree / "watched", tree / "outside"
    watched.mkdir()
    outside.mkdir()
    denied = watched / "denied"
    for path in (denied, watched / "a", outside / "b"):
        path.write_text("x")

    def boom(data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        if data.path.endswith("/a"):
            raise RuntimeError("filter bug")
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    before_monitor = open_fds()
    kernel = LinuxKernel()
    kernel.filters.register_filter(DenyFilter({str(denied)}), 400000)
    kernel.filters.register("test.boom", 300000, pre=boom)
    monitor = FileMonitor(kernel, [watched])
    with running(monitor) as records:
        (watched / "own").write_text("mine")  # own events
        at_rest = open_fds()
        burst = []
        for uid in ("1000", "1001", "-"):
            ops = []
            for name in (f"{uid}.b", f"{uid}.c", f"{uid}.d", f"{uid}.e"):
                ops += [f"r:{denied}", f"r:{watched / 'a'}", f"r:{outside / 'b'}"]
                ops += [f"w:{watched / name}", f"mv:{watched / name}:{watched / (name + '2')}"]
                ops += [f"rm:{watched / (name + '2')}", f"w:{outside / name}"]
            burst.append(children.start(uid, *ops))
        for child in burst:
            assert Children.finish(child).count("errno") == 4  # the denied opens
        for uid in ("1000", "1001", "-"):
            records.wait_for(has(watched / f"{uid}.e2", "delete"))
        assert open_fds() == at_rest  # no event fd, pidfd or handle fd left behind
        stats = monitor.stats
        assert stats.denied >= 12 and stats.filter_errors >= 12 and stats.out_of_scope > 0
    assert sorted(open_fds().values()) == sorted(before_monitor.values())


def open_fds() -> dict[int, str]:
    """This process's descriptors and what they are, after collecting garbage (a dropped
    file object of an earlier test must not close during the count)."""
    gc.collect()
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd is gone by now
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


# -- queues and caches ----------------------------------------------------------------------------

MAX_QUEUED_EVENTS = "/proc/sys/fs/fanotify/max_queued_events"


def test_a_limited_queue_reports_its_overflow(tree: Path, children: Children) -> None:
    with open(MAX_QUEUED_EVENTS) as f:
        saved = f.read()
    try:
        with open(MAX_QUEUED_EVENTS, "w") as f:
            f.write("4")  # read by fanotify_init only
        monitor = FileMonitor(LinuxKernel(), [tree], permission=False)
    finally:
        with open(MAX_QUEUED_EVENTS, "w") as f:
            f.write(saved)
    with open(MAX_QUEUED_EVENTS) as f:
        assert f.read() == saved
    try:
        # Nobody reads yet: twelve distinct files make far more than four events.
        Children.finish(children.start("1000", *[f"w:{tree / str(i)}" for i in range(12)]))
    except BaseException:
        monitor.close()
        raise
    with running(monitor) as records:
        [overflow] = [op for op in records.wait_for(_overflowed) if op.operation == OVERFLOW]
    assert overflow.outcome is Outcome.OVERFLOW
    assert "overflow" in overflow.detail
    assert monitor.stats.overflows == 1


def _overflowed(items: list[FileOperation]) -> bool:
    return any(op.is_overflow for op in items)


def test_ignore_marks_keep_repeated_opens_of_a_cacheable_file_in_the_kernel(
    tree: Path, children: Children
) -> None:
    cached, other = tree / "cached", tree / "other"
    cached.write_text("x")
    other.write_text("x")
    kernel = LinuxKernel()
    kernel.filters.register_filter(DenyFilter(), 400000)
    monitor = FileMonitor(
        kernel, [tree], cacheable=lambda op, path: op == "open" and path == str(cached)
    )
    with running(monitor) as records:
        child = children.start("1000", *[f"r:{cached}"] * 5, *[f"r:{other}"] * 3)
        Children.finish(child)
        records.wait_for(has(other, "open", 3))
        stats = monitor.stats
        assert len(records.of(cached, "open")) == 1  # the first one; the kernel kept the rest
        assert stats.ignore_marks == 1
        assert stats.permission_events == 4

        # A cached inode renamed to a name the policy does not cache loses its ignore mark.
        moved = tree / "moved"
        Children.finish(children.start("1000", f"mv:{cached}:{moved}"))
        records.wait_for(has(moved, "rename"))
        Children.finish(children.start("1000", f"r:{moved}", f"r:{moved}"))
        records.wait_for(has(moved, "open", 2))

        # After a policy change the cache is cleared: the kernel asks about "other" again...
        Children.finish(children.start("1000", f"r:{other}"))
        records.wait_for(has(other, "open", 4))
        monitor.cacheable = lambda op, path: path == str(other)
        monitor.clear_cache()
        Children.finish(children.start("1000", *[f"r:{other}"] * 3))
        records.wait_for(has(other, "open", 5))
        # ... once, then the new answer is cached (only the first of the three was asked).
        Children.finish(children.start("1000", f"r:{cached.parent / 'moved'}"))
        records.wait_for(has(moved, "open", 3))
        assert len(records.of(other, "open")) == 5
        assert monitor.stats.ignore_marks == 2


def test_a_path_restricts_to_its_tree(tree: Path, children: Children) -> None:
    watched, outside = tree / "watched", tree / "outside"
    (watched / "deep" / "er").mkdir(parents=True)
    outside.mkdir()
    inner = watched / "deep" / "er" / "file"
    monitor = FileMonitor(LinuxKernel(), [watched], permission=True)
    with running(monitor) as records:
        last = watched / "last"
        ops = [f"w:{outside / 'x'}", f"w:{inner}", f"r:{outside / 'x'}", f"w:{outside / 'y'}"]
        Children.finish(children.start("1000", *ops, f"w:{last}"))
        records.wait_for(has(last, "close_write"))  # everything before it was handled
        assert {op.path for op in records.items} == {str(inner), str(last)}
        assert monitor.stats.out_of_scope > 0
        assert monitor.stats.ignore_marks >= 1  # the outside directory stopped costing events


def test_run_stops_on_its_event_and_still_reports_what_was_queued(
    tree: Path, children: Children
) -> None:
    monitor = FileMonitor(LinuxKernel(), [tree], permission=False)
    records = Records()
    monitor.subscribe(records)
    with monitor:
        target = tree / "queued"
        Children.finish(children.start("1000", f"w:{target}"))  # queued before run() starts
        stop = threading.Event()
        stop.set()
        reader = threading.Thread(target=monitor.run, args=(stop,))
        reader.start()
        reader.join(WAIT)
        assert not reader.is_alive()
        # run() returned only after the subscribers had it all.
        assert {op.operation for op in records.of(target)} >= {"create", "modify", "close_write"}
