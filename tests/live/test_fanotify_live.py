"""fanotify on the real kernel (root): permission verdicts reach a child, pidfd and FID records
describe real processes and files, ignore marks stop events, a limited queue overflows, and a
process without CAP_SYS_ADMIN gets PrivilegeError.

Children that open marked files block until answered, so every test closes its group in a
``finally`` (the kernel then allows whatever is pending) before it kills its children; every wait
is bounded.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sessionio.errors import ClosedResourceError
from sessionio.linux.fanotify import (
    FanotifyGroup,
    close_event_fds,
    open_by_handle_at,
    probe_features,
)
from sessionio.protocols.fanotify import (
    FAN_NOFD,
    FAN_NOPIDFD,
    AuditRule,
    AuditTrust,
    FanInit,
    FanMark,
    FanMask,
    FanotifyEvent,
)

WAIT = 10.0  # seconds: an upper bound against hangs, never a synchronisation

# A child that opens each argument in turn ("r:PATH" reads, "w:PATH" writes), reports each
# outcome on stdout, then waits for its stdin to close when the last argument is "hold".
OPENER = """
import sys
for arg in sys.argv[1:]:
    if arg == "hold":
        sys.stdin.read()
        break
    mode, path = arg.split(":", 1)
    try:
        with open(path, "rb" if mode == "r" else "ab") as f:
            f.read() if mode == "r" else f.write(b"x")
    except OSError as err:
        print(path, "errno", err.errno, flush=True)
    else:
        print(path, "ok", flush=True)
"""


def spawn_opener(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", OPENER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(child: subprocess.Popen[str]) -> str:
    out, _ = child.communicate(timeout=WAIT)
    return out


class Inbox:
    """Events of one group, buffered, picked by requesting pid; events of other processes are
    allowed and closed at once so that nobody stays blocked."""

    def __init__(self, group: FanotifyGroup) -> None:
        self.group = group
        self.pending: deque[FanotifyEvent] = deque()

    def next_from(self, pid: int) -> FanotifyEvent:
        deadline = time.monotonic() + WAIT
        while True:
            while self.pending:
                ev = self.pending.popleft()
                if ev.pid == pid:
                    return ev
                self.discard(ev)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no fanotify event from pid {pid} within {WAIT} s")
            self.pending.extend(self.group.read_events(timeout=remaining))

    def discard(self, ev: FanotifyEvent) -> None:
        try:
            if ev.is_permission and not self.group.closed:
                self.group.respond(ev.fd, allow=True)
        finally:
            close_event_fds([ev])

    def close(self) -> None:
        self.group.close()
        close_event_fds(self.pending)
        self.pending.clear()


@contextmanager
def inbox_of(group: FanotifyGroup) -> Iterator[Inbox]:
    inbox = Inbox(group)
    try:
        yield inbox
    finally:
        inbox.close()


@contextmanager
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=WAIT)


def path_of(ev: FanotifyEvent) -> str:
    return os.readlink(f"/proc/self/fd/{ev.fd}")


@pytest.fixture
def watched_dir() -> Iterator[str]:
    path = os.path.realpath(tempfile.mkdtemp(prefix="sessionio-fanotify-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def make_file(directory: str, name: str, content: bytes = b"payload") -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


# -- probing -------------------------------------------------------------------------------------


def test_probe_matches_this_kernel_and_is_cached() -> None:
    features = probe_features()
    release = tuple(int(part) for part in os.uname().release.split(".")[:2])

    assert probe_features() is features
    assert features.class_content  # the test VM has FANOTIFY_ACCESS_PERMISSIONS
    if release >= (5, 15):
        assert features.report_pidfd and features.report_tid and features.report_dfid_name
        assert features.filesystem_marks and features.unlimited_queue
    if release >= (6, 0):
        assert features.mark_ignore and features.evictable_marks


# -- permission events -------------------------------------------------------------------------


def test_deny_gives_the_child_eperm_and_allow_lets_it_read(watched_dir: str) -> None:
    target = make_file(watched_dir, "secret")
    group = FanotifyGroup.permission_group()
    assert group.flags & FanInit.CLASS_CONTENT
    assert group.flags & FanInit.UNLIMITED_QUEUE
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)

        denied = spawn_opener(f"r:{target}")
        procs.append(denied)
        ev = inbox.next_from(denied.pid)
        try:
            assert ev.mask == FanMask.OPEN_PERM
            assert ev.is_permission
            assert path_of(ev) == target
            group.respond(ev.fd, allow=False)
        finally:
            close_event_fds([ev])
        assert finish(denied) == f"{target} errno {errno.EPERM}\n"

        allowed = spawn_opener(f"r:{target}")
        procs.append(allowed)
        ev = inbox.next_from(allowed.pid)
        try:
            assert path_of(ev) == target
            group.respond(ev.fd, allow=True)
        finally:
            close_event_fds([ev])
        assert finish(allowed) == f"{target} ok\n"


def test_closing_the_group_releases_a_blocked_child(watched_dir: str) -> None:
    target = make_file(watched_dir, "held")
    group = FanotifyGroup.permission_group()
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)
        child = spawn_opener(f"r:{target}")
        procs.append(child)
        ev = inbox.next_from(child.pid)
        close_event_fds([ev])

        group.close()
        group.close()  # idempotent

        assert finish(child) == f"{target} ok\n"
        with pytest.raises(ClosedResourceError):
            group.read_events(timeout=0)


def test_an_audit_rule_response_is_accepted_by_the_kernel(watched_dir: str) -> None:
    target = make_file(watched_dir, "audited")
    group = FanotifyGroup.permission_group(audit=True)
    assert group.flags & FanInit.ENABLE_AUDIT
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)
        child = spawn_opener(f"r:{target}")
        procs.append(child)
        ev = inbox.next_from(child.pid)
        try:
            # The kernel checks the FAN_INFO record's type and length: EINVAL if it is wrong.
            group.respond(ev.fd, allow=False, audit_rule=AuditRule(42, AuditTrust.YES))
        finally:
            close_event_fds([ev])
        assert finish(child) == f"{target} errno {errno.EPERM}\n"


def test_a_pre_content_group_denies_with_a_chosen_errno(watched_dir: str) -> None:
    target = make_file(watched_dir, "busy")
    group = FanotifyGroup.permission_group(pre_content=True)
    assert group.flags & FanInit.CLASS_PRE_CONTENT
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)
        child = spawn_opener(f"r:{target}")
        procs.append(child)
        ev = inbox.next_from(child.pid)
        try:
            group.respond(ev.fd, allow=False, deny_errno=errno.EBUSY)
        finally:
            close_event_fds([ev])
        assert finish(child) == f"{target} errno {errno.EBUSY}\n"


# -- ignore marks ----------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["FAN_MARK_IGNORE", "IGNORED_MASK"])
def test_an_ignore_mark_stops_events_for_that_file_even_after_a_write(
    watched_dir: str, legacy: bool
) -> None:
    cached = make_file(watched_dir, "cached")
    other = make_file(watched_dir, "other")
    features = dataclasses.replace(probe_features(), mark_ignore=not legacy)
    group = FanotifyGroup.permission_group(features=features)
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)

        # Control: without the ignore mark, opening "cached" is asked about.
        control = spawn_opener(f"r:{cached}")
        procs.append(control)
        ev = inbox.next_from(control.pid)
        try:
            assert path_of(ev) == cached
            group.respond(ev.fd, allow=True)
        finally:
            close_event_fds([ev])
        assert finish(control) == f"{cached} ok\n"

        style = group.add_ignore(cached, FanMask.OPEN_PERM)
        assert style == (FanMark.IGNORED_MASK if legacy else FanMark.IGNORE)

        # Write "cached", read it again, then read "other": the child blocks on the first
        # open that is asked about, so if "cached" were still watched its event came first.
        child = spawn_opener(f"w:{cached}", f"r:{cached}", f"r:{other}")
        procs.append(child)
        ev = inbox.next_from(child.pid)
        try:
            assert path_of(ev) == other
            group.respond(ev.fd, allow=True)
        finally:
            close_event_fds([ev])
        assert finish(child) == f"{cached} ok\n{cached} ok\n{other} ok\n"

        group.remove_ignore(cached, FanMask.OPEN_PERM)
        again = spawn_opener(f"r:{cached}")
        procs.append(again)
        ev = inbox.next_from(again.pid)
        try:
            assert path_of(ev) == cached
            group.respond(ev.fd, allow=True)
        finally:
            close_event_fds([ev])
        assert finish(again) == f"{cached} ok\n"


def test_a_directory_ignore_mark_covers_its_children(watched_dir: str) -> None:
    first = make_file(watched_dir, "first")
    second = make_file(watched_dir, "second")
    group = FanotifyGroup.permission_group()
    with inbox_of(group), children() as procs:
        group.mark(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)
        group.add_ignore(watched_dir, FanMask.OPEN_PERM | FanMask.EVENT_ON_CHILD)

        child = spawn_opener(f"r:{first}", f"r:{second}")
        procs.append(child)

        # Nobody answers: had either open been asked about, the child would still be blocked.
        assert finish(child) == f"{first} ok\n{second} ok\n"
        assert group.read_events(timeout=0) == []


# -- notification groups: pidfd and FID records -------------------------------------------------


def test_pidfd_and_dfid_name_records_describe_the_child(watched_dir: str) -> None:
    target = make_file(watched_dir, "report.txt")
    group = FanotifyGroup.notification_group()
    assert group.flags & FanInit.REPORT_PIDFD
    assert group.flags & FanInit.REPORT_DFID_NAME == FanInit.REPORT_DFID_NAME
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN | FanMask.EVENT_ON_CHILD)
        child = spawn_opener(f"r:{target}", "hold")  # stays alive until stdin closes
        procs.append(child)
        ev = inbox.next_from(child.pid)
        try:
            assert ev.mask == FanMask.OPEN
            assert ev.fd == FAN_NOFD  # FID groups report handles, not fds
            assert ev.pidfd is not None and ev.pidfd >= 0
            with open(f"/proc/self/fdinfo/{ev.pidfd}") as fdinfo:
                assert f"Pid:\t{child.pid}\n" in fdinfo.read()

            assert ev.name == "report.txt"
            assert ev.dfid is not None
            dirfd = os.open(watched_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                handle_fd = open_by_handle_at(dirfd, ev.dfid)
                try:
                    assert os.fstat(handle_fd).st_ino == os.stat(watched_dir).st_ino
                finally:
                    os.close(handle_fd)
            finally:
                os.close(dirfd)
        finally:
            close_event_fds([ev])
        assert finish(child) == f"{target} ok\n"


def test_the_pidfd_of_a_reaped_process_is_fan_nopidfd(watched_dir: str) -> None:
    target = make_file(watched_dir, "gone")
    group = FanotifyGroup.notification_group(report_dfid_name=False)
    with inbox_of(group) as inbox, children() as procs:
        group.mark(watched_dir, FanMask.OPEN | FanMask.EVENT_ON_CHILD)
        child = spawn_opener(f"r:{target}")
        procs.append(child)
        assert finish(child) == f"{target} ok\n"  # exited and reaped before the read

        ev = inbox.next_from(child.pid)
        try:
            assert ev.pidfd == FAN_NOPIDFD
            assert path_of(ev) == target
        finally:
            close_event_fds([ev])


# -- queue overflow ----------------------------------------------------------------------------

MAX_QUEUED_EVENTS = "/proc/sys/fs/fanotify/max_queued_events"


@contextmanager
def max_queued_events(limit: int) -> Iterator[None]:
    with open(MAX_QUEUED_EVENTS) as f:
        saved = f.read().strip()
    try:
        with open(MAX_QUEUED_EVENTS, "w") as f:
            f.write(str(limit))
        yield
    finally:
        with open(MAX_QUEUED_EVENTS, "w") as f:
            f.write(saved)


def test_a_limited_queue_reports_overflow(watched_dir: str) -> None:
    limit = 4
    with open(MAX_QUEUED_EVENTS) as f:
        before = f.read()
    paths = [make_file(watched_dir, f"f{i}") for i in range(3 * limit)]
    with max_queued_events(limit):  # read by fanotify_init only: restore at once
        group = FanotifyGroup.notification_group(report_dfid_name=False, report_pidfd=False)
    assert not group.flags & FanInit.UNLIMITED_QUEUE
    with inbox_of(group) as inbox:
        group.mark(watched_dir, FanMask.OPEN | FanMask.EVENT_ON_CHILD)
        for path in paths:  # distinct files, so the kernel cannot merge the events
            with open(path, "rb"):
                pass

        events: list[FanotifyEvent] = []
        while not any(ev.is_overflow for ev in events):
            batch = group.read_events(timeout=WAIT)
            assert batch, "no FAN_Q_OVERFLOW event"
            inbox.pending.extend(batch)
            events.extend(batch)

        overflows = [ev for ev in events if ev.is_overflow]
        assert len(overflows) == 1
        assert overflows[0].fd == FAN_NOFD
        assert group.overflow_count == 1
        assert [path_of(ev) for ev in events if not ev.is_overflow] == paths[:limit]
    with open(MAX_QUEUED_EVENTS) as f:
        assert f.read() == before


# -- mark types ----------------------------------------------------------------------------------


@contextmanager
def tmpfs_with_bind_mount() -> Iterator[tuple[str, str]]:
    """A fresh tmpfs and a bind mount of it: two mounts of one filesystem."""
    base = tempfile.mkdtemp(prefix="sessionio-fanotify-mnt-")
    fs_root, bind = os.path.join(base, "fs"), os.path.join(base, "bind")
    os.mkdir(fs_root)
    os.mkdir(bind)
    mounted: list[str] = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", fs_root], check=True)
        mounted.append(fs_root)
        subprocess.run(["mount", "--bind", fs_root, bind], check=True)
        mounted.append(bind)
        yield fs_root, bind
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", path], check=True)
        shutil.rmtree(base)


@pytest.mark.parametrize("filesystem_marks", [True, False], ids=["FILESYSTEM", "MOUNT"])
def test_filesystem_marks_and_the_mount_mark_fallback(filesystem_marks: bool) -> None:
    features = dataclasses.replace(probe_features(), filesystem_marks=filesystem_marks)
    with tmpfs_with_bind_mount() as (fs_root, bind):
        via_bind = make_file(bind, "via-bind")
        direct = make_file(fs_root, "direct")
        group = FanotifyGroup.notification_group(report_dfid_name=False, features=features)
        with inbox_of(group) as inbox:
            used = group.mark_filesystem(fs_root, FanMask.OPEN)
            assert used == (FanMark.FILESYSTEM if filesystem_marks else FanMark.MOUNT)

            for path in (os.path.join(bind, "via-bind"), direct):
                with open(path, "rb"):
                    pass

            # A filesystem mark sees the open through the bind mount too; a mount mark on
            # fs_root does not, so its first event is the direct one.
            ev = inbox.next_from(os.getpid())
            try:
                expected = via_bind if filesystem_marks else direct
                assert path_of(ev) == expected
            finally:
                close_event_fds([ev])


# -- privilege -----------------------------------------------------------------------------------

PRIVILEGE_PROBE = """
import os, sys
from sessionio.errors import PrivilegeError
from sessionio.linux.fanotify import FanotifyGroup
from sessionio.protocols.fanotify import FanInit
if sys.argv[1] == "nobody":
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
for make in (
    lambda: FanotifyGroup.create(FanInit.CLASS_CONTENT | FanInit.CLOEXEC),
    lambda: FanotifyGroup.permission_group(audit=True),
    lambda: FanotifyGroup.create(FanInit.CLASS_CONTENT | FanInit.ENABLE_AUDIT),
):
    try:
        group = make()
    except PrivilegeError as err:
        print(err.capability, isinstance(err, PermissionError), err.capability in str(err))
    else:
        print("created, audit:", bool(group.flags & FanInit.ENABLE_AUDIT))
        group.close()
"""


def run_privilege_probe(prefix: list[str], who: str) -> list[str]:
    result = subprocess.run(
        [*prefix, sys.executable, "-c", PRIVILEGE_PROBE, who],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    return result.stdout.splitlines()


def test_nobody_gets_privilege_error() -> None:
    assert run_privilege_probe([], "nobody") == ["CAP_SYS_ADMIN True True"] * 3


def test_root_without_cap_sys_admin_gets_privilege_error() -> None:
    drop = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]

    assert run_privilege_probe(drop, "root") == ["CAP_SYS_ADMIN True True"] * 3


def test_root_without_cap_audit_write_is_told_so_and_falls_back() -> None:
    drop = ["setpriv", "--inh-caps=-audit_write", "--bounding-set=-audit_write", "--"]

    assert run_privilege_probe(drop, "root") == [
        "created, audit: False",
        "created, audit: False",  # permission_group(audit=True) fell back
        "CAP_AUDIT_WRITE True True",
    ]
