"""FileMonitor: the live kernel's I/O path, fanotify events through the filter manager.

Every file operation the marks cover becomes the model's :class:`~sessionio.model.IoRequest` and
:class:`~sessionio.model.CallbackData`, with the requesting thread and process from
:mod:`sessionio.runtime.attribution`, and runs through ``kernel.filters``:

- **permission events** (FAN_OPEN_PERM "open", FAN_OPEN_EXEC_PERM "exec", and FAN_ACCESS_PERM
  "read" only when ``"read"`` is asked for: it fires on every read) are pre-operations:
  ``kernel.filters.run(data, perform)`` decides, and a final status that is not a success
  (STATUS_ACCESS_DENIED from ``data.deny()``) answers FAN_DENY, so the requester gets EPERM;
- **notification events** (FAN_MODIFY "modify", FAN_CLOSE_WRITE "close_write", FAN_CREATE
  "create", FAN_DELETE "delete", FAN_MOVED_FROM / FAN_MOVED_TO "rename") are post-operations
  (``kernel.filters.run_post_only(data)``): the operation already happened.

Then a frozen :class:`FileOperation` goes to every subscriber (``monitor.subscribe(callback)``),
on a dispatcher thread, after the kernel has been answered. A typical daemon::

    kernel = LinuxKernel()
    kernel.filters.register_filter(rule_filter, 320000)
    with FileMonitor(kernel, ["/srv"], cacheable=rule_filter.cacheable, on_timeout=Verdict.DENY,
                     decision_timeout=0.2) as monitor:
        monitor.subscribe(log)          # log(op: FileOperation); op.data is the CallbackData
        monitor.run(stop_event)         # until stop_event is set; then flushes the subscribers

Major functions: open and create IRP_MJ_CREATE, read IRP_MJ_READ, exec
IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION, modify IRP_MJ_WRITE, close_write IRP_MJ_CLEANUP,
delete and rename IRP_MJ_SET_INFORMATION; ``IoRequest.operation`` names the Linux operation.

**Which groups.** A permission group (FAN_CLASS_CONTENT, FAN_UNLIMITED_QUEUE, FAN_REPORT_TID)
is made when ``permission=True``, or by default when a registered filter has a pre-operation
for one of the permission operations asked for: it is also what makes attribution exact for
short-lived processes (a blocked requester can be read from /proc), which is why ``sessionio
watch`` asks for one. A notification group (FAN_CLASS_NOTIF, FAN_REPORT_DFID_NAME,
FAN_REPORT_PIDFD, a limited queue) carries the post-operations, and open/exec/read too when
there is no permission group. Both are made, and the marks added, by the constructor, so a
missing CAP_SYS_ADMIN raises :class:`~sessionio.errors.PrivilegeError` there.

**What is marked.** Without ``paths``: a FAN_MARK_FILESYSTEM mark on every real filesystem
mounted in our namespace (``/`` first, then each mount of /proc/self/mounts whose type is not
a pseudo filesystem in :data:`PSEUDO_FILESYSTEMS`, once per filesystem), like fatrace; a
mount the kernel refuses is skipped (:attr:`FileMonitor.skipped`). With ``paths``: each path's
filesystem is marked and events are kept when their path is the path or below it. fanotify
inode marks are not recursive, and marking every directory of a tree races with directories
made while it runs; a filesystem mark sees every operation, bind mounts included, so the tree
is exact, and operations outside it are allowed at once without filters and, where the kernel
has FAN_MARK_IGNORE, their directory gets an ignore mark (evictable, FAN_EVENT_ON_CHILD) so
they soon stop reaching us.

**The permission discipline** (DESIGN.md, "Filter manager"):

- *Answer first*: a permission event is answered before its record reaches the subscribers,
  which run on another thread; nothing the reader does between reading and answering touches
  a watched filesystem (every module is imported up front, user names are resolved on the
  dispatcher thread, paths come from /proc/self/fd and ``open_by_handle_at(O_PATH)``).
- *Own process*: events of this process (any of its threads, /proc/self/task) are allowed at
  once without filters and not reported, so filters, subscribers and an output file may live
  in the watched tree. Processes this one spawns are not exempt.
- *Decision timeout*: filters run on a worker thread; an event whose filters raise, or do not
  return within ``decision_timeout`` seconds, is answered ``on_timeout`` (fail-open ALLOW by
  default, fail-closed DENY), counted (:class:`MonitorStats`) and reported (its
  :class:`FileOperation` has outcome ERROR or TIMEOUT). While it waits, the reader keeps
  answering its own process's events, so a filter may read files in the watched tree. A worker
  stuck in a filter is abandoned; at most ``max_workers`` can be, then events get the default
  verdict without filters.
- *Every fd closed*: event fds and pidfds are closed in ``finally`` on every path.
- *Queues*: the permission group's is unlimited (a full queue would allow unasked); where a
  limited one is configured, FAN_Q_OVERFLOW is counted and reported as a FileOperation whose
  ``operation`` is :data:`OVERFLOW`. Subscriber records queue in a bounded queue; when it is
  full, records are dropped, counted and reported the same way.
- *Closing*: :meth:`FileMonitor.close` (or the death of the process) closes the groups, and
  the kernel then allows every pending permission event.

**The kernel-side cache.** ``cacheable(operation, path) -> bool`` (RuleFilter's ``cacheable``)
says when allowing an operation on a path cannot depend on the requester and need not be
logged. After such an allow, the file (exactly the inode of the event fd, and only a regular
file with one link on a filesystem mounted once in our namespace, since a mark follows the
inode to every other name it has) gets an ignore mark for that permission event,
FAN_MARK_IGNORE with FAN_MARK_IGNORED_SURV_MODIFY (a non-surviving mark added while the file is
open for writing, as it is during an open for write, is silently not added; decisions here
depend on the path, not the content, so surviving writes is right), evictable where the kernel
allows. It is added just before the answer, so the next operation on the file already skips
user space; :attr:`MonitorStats.ignore_marks` counts them. A file created, linked or renamed
under a path (FAN_CREATE, FAN_MOVED_TO) loses any ignore mark it had, so a cached allow never
follows an inode to a path a rule concerns; between the rename and our reading its event, the
old mark still answers. Notification events are not cached: they carry a path, not an fd, and
marking by path could hit another inode. When the policy changes (a rule reload), call
:meth:`FileMonitor.clear_cache` once the new policy is in place.

Threads: the reader (the caller of :meth:`FileMonitor.run`, or the one :meth:`start` makes),
the decision workers, and the subscriber dispatcher. The attributor belongs to the reader.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import math
import os
import queue
import select
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from sessionio.errors import ClosedResourceError, UnsupportedPlatformError, UsageError
from sessionio.linux.fanotify import (
    FanotifyFeatures,
    FanotifyGroup,
    close_event_fds,
    open_by_handle_at,
    probe_features,
)
from sessionio.linux.resource import Resource
from sessionio.model.ids import NO_SESSION, Pid
from sessionio.model.io_objects import FileObject
from sessionio.model.request import CallbackData, IoRequest
from sessionio.ntdef.status import NTSTATUS, nt_success
from sessionio.ntdef.values import IRP_MJ
from sessionio.protocols.fanotify import FanInit, FanMark, FanMask, FanotifyEvent
from sessionio.rules.schema import Verdict
from sessionio.runtime.attribution import Attribution, Attributor, NotificationStamp, Requester
from sessionio.runtime.linux_kernel import LinuxKernel, user_name

__all__ = [
    "DEFAULT_DECISION_TIMEOUT",
    "DEFAULT_OPERATIONS",
    "MAJOR_FUNCTIONS",
    "OPERATIONS",
    "OVERFLOW",
    "PERMISSION_OPERATIONS",
    "PSEUDO_FILESYSTEMS",
    "FileMonitor",
    "FileOperation",
    "MonitorStats",
    "Outcome",
    "Subscriber",
    "filesystems_to_mark",
    "parse_mounts",
]

OPERATIONS: Final = (
    "open",
    "read",
    "exec",
    "modify",
    "close_write",
    "create",
    "delete",
    "rename",
)
"""Every operation name, as ``IoRequest.operation`` and the rules spell them."""

DEFAULT_OPERATIONS: Final = tuple(op for op in OPERATIONS if op != "read")
"""What is watched unless asked otherwise: "read" fires on every read() and costs the most."""

PERMISSION_OPERATIONS: Final = frozenset({"open", "exec", "read"})
"""Operations a permission group can hold (and a filter deny)."""

MAJOR_FUNCTIONS: Final[dict[str, IRP_MJ]] = {
    "open": IRP_MJ.IRP_MJ_CREATE,
    "read": IRP_MJ.IRP_MJ_READ,
    "exec": IRP_MJ.IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION,
    "modify": IRP_MJ.IRP_MJ_WRITE,
    "close_write": IRP_MJ.IRP_MJ_CLEANUP,
    "create": IRP_MJ.IRP_MJ_CREATE,
    "delete": IRP_MJ.IRP_MJ_SET_INFORMATION,
    "rename": IRP_MJ.IRP_MJ_SET_INFORMATION,
}
"""The major function of each operation (DESIGN.md, "Linux mapping")."""

OVERFLOW: Final = "overflow"
"""The ``operation`` of a FileOperation that reports lost events, not an operation."""

DEFAULT_DECISION_TIMEOUT: Final = 0.2
"""Seconds the filters get per operation (the rule files' default, 200 ms)."""

PSEUDO_FILESYSTEMS: Final = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "pipefs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sockfs",
        "sysfs",
        "tracefs",
    }
)
"""Filesystem types never marked by default: kernel interfaces, not files (procfs even refuses
permission marks). FUSE types (``fuse.*``) are skipped too: a permission event on a FUSE file
whose daemon is blocked on us would deadlock."""

Subscriber = Callable[["FileOperation"], object]

_PERMISSION_BITS: Final = (
    (FanMask.OPEN_PERM, "open"),
    (FanMask.OPEN_EXEC_PERM, "exec"),
    (FanMask.ACCESS_PERM, "read"),
)
# A merged notification event lists its operations in the order they can happen in.
_NOTIFICATION_BITS: Final = (
    (FanMask.OPEN, "open", ""),
    (FanMask.OPEN_EXEC, "exec", ""),
    (FanMask.ACCESS, "read", ""),
    (FanMask.CREATE, "create", ""),
    (FanMask.MODIFY, "modify", ""),
    (FanMask.CLOSE_WRITE, "close_write", ""),
    (FanMask.MOVED_FROM, "rename", "from"),
    (FanMask.MOVED_TO, "rename", "to"),
    (FanMask.DELETE, "delete", ""),
)
_PERM_MASKS: Final = {op: bit for bit, op in _PERMISSION_BITS}
_NOTIF_MASKS: Final = {
    "open": FanMask.OPEN,
    "exec": FanMask.OPEN_EXEC,
    "read": FanMask.ACCESS,
    "create": FanMask.CREATE,
    "modify": FanMask.MODIFY,
    "close_write": FanMask.CLOSE_WRITE,
    "rename": FanMask.MOVE,
    "delete": FanMask.DELETE,
}
_FID_ONLY: Final = FanMask.CREATE | FanMask.DELETE | FanMask.MOVE
_INVALIDATING: Final = FanMask.CREATE | FanMask.MOVED_TO
_MAX_DRAIN_READS: Final = 16  # 16 reads of 256 KiB: bounded time before a permission answer
_FLUSH_TIMEOUT: Final = 5.0
_CLOSING_GRACE: Final = 1.0
_READY: Final = select.POLLIN | select.POLLERR | select.POLLHUP
_MAX_IGNORED_DIRS: Final = 65536


class Outcome(enum.StrEnum):
    """How a :class:`FileOperation` came about.

    DECIDED: a permission event the filters answered (or that no filter handles: allowed).
    REPORTED: a notification event whose post-operations ran. TIMEOUT: the filters did not
    return within the decision timeout, and ERROR: a filter raised (``detail`` has it); both
    got the default verdict. OVERFLOW: not an operation, events were lost (``detail`` says
    where).
    """

    DECIDED = "decided"
    REPORTED = "reported"
    TIMEOUT = "timeout"
    ERROR = "error"
    OVERFLOW = "overflow"


@dataclass(frozen=True, slots=True)
class FileOperation:
    """One operation, after the kernel was answered: what subscribers receive.

    ``verdict`` is the answer given to a permission event (None for notification events);
    ``session_id`` is -1 when the requester has no session or was not identified
    (``attribution`` tells which); ``user`` names the effective uid (like ps's USER) and
    ``login_user`` the audit loginuid, the session's user. ``path`` is absolute, except a bare
    name when the directory of a notification event could not be resolved any more.
    ``data`` is the CallbackData the filters saw (None for OVERFLOW records).
    """

    time: float
    operation: str
    path: str
    pid: int
    tid: int
    comm: str
    exe: str | None
    uid: int | None
    euid: int | None
    session_id: int
    attribution: Attribution
    verdict: Verdict | None
    outcome: Outcome
    detail: str = ""
    user: str | None = None
    login_uid: int | None = None
    login_user: str | None = None
    data: CallbackData | None = field(default=None, compare=False, repr=False)

    @property
    def is_overflow(self) -> bool:
        return self.operation == OVERFLOW

    def as_row(self) -> dict[str, object]:
        """The JSON object of ``watch --json`` (and of loggers that want the same keys)."""
        return {
            "time": datetime.fromtimestamp(self.time).astimezone().isoformat("T", "microseconds"),
            "op": self.operation,
            "path": self.path,
            "pid": self.pid,
            "tid": self.tid,
            "comm": self.comm,
            "exe": self.exe,
            "uid": self.uid,
            "user": self.user,
            "login_uid": self.login_uid,
            "login_user": self.login_user,
            "session": self.session_id,
            "attribution": str(self.attribution),
            "verdict": None if self.verdict is None else str(self.verdict),
            "outcome": str(self.outcome),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class MonitorStats:
    """Counters since the monitor was made; readable at any time (:attr:`FileMonitor.stats`).

    ``events`` counts every event read (FAN_Q_OVERFLOW included), ``permission_events`` those
    of the permission group; ``allowed`` / ``denied`` the answers given (own-process and
    out-of-scope answers included; ``own_allowed`` and ``out_of_scope`` count those alone);
    ``timeouts`` and ``filter_errors`` the operations answered with the default verdict;
    ``overflows`` FAN_Q_OVERFLOW events; ``ignore_marks`` ignore marks added (the kernel-side
    cache); ``exact`` / ``remembered`` / ``unidentified`` the attributions made;
    ``records_dropped`` records the subscribers were too slow for; ``subscriber_errors``
    exceptions raised by subscribers.
    """

    events: int = 0
    permission_events: int = 0
    allowed: int = 0
    denied: int = 0
    timeouts: int = 0
    filter_errors: int = 0
    overflows: int = 0
    ignore_marks: int = 0
    own_allowed: int = 0
    out_of_scope: int = 0
    exact: int = 0
    remembered: int = 0
    unidentified: int = 0
    records_dropped: int = 0
    subscriber_errors: int = 0


class _Counters:
    """The live counters: written by the reader (subscriber_errors by the dispatcher)."""

    def __init__(self) -> None:
        self.values = dict.fromkeys(MonitorStats.__dataclass_fields__, 0)

    def add(self, name: str, n: int = 1) -> None:
        self.values[name] += n

    def snapshot(self) -> MonitorStats:
        return MonitorStats(**self.values)


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """``(mount point, filesystem type)`` of each line of /proc/self/mounts, in order.

    Mount points are unescaped (the kernel writes space, tab, newline and backslash as
    ``\\040``-style octal). Lines that do not have the six fields are skipped.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) != 6:
            continue
        mounts.append((_unescape(fields[1]), fields[2]))
    return mounts


def _unescape(field_text: str) -> str:
    out = []
    i = 0
    while i < len(field_text):
        chunk = field_text[i : i + 4]
        if len(chunk) == 4 and chunk[0] == "\\" and all(c in "01234567" for c in chunk[1:]):
            out.append(chr(int(chunk[1:], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def filesystems_to_mark(mounts: Iterable[tuple[str, str]]) -> list[str]:
    """The mount points the default (whole machine) mode marks: ``/`` first, then every
    mount whose type is not a pseudo filesystem (nor FUSE), in order; duplicates removed
    (one filesystem mounted twice is deduplicated later, by device)."""
    chosen = ["/"]
    for mount_point, fstype in mounts:
        if fstype in PSEUDO_FILESYSTEMS or fstype.startswith("fuse"):
            continue
        if mount_point not in chosen:
            chosen.append(mount_point)
    return chosen


def _fsid_key(fsid: tuple[int, int]) -> tuple[int, int]:
    return fsid[0] & 0xFFFFFFFF, fsid[1] & 0xFFFFFFFF


def _statvfs_key(path: str) -> tuple[int, int]:
    value = os.statvfs(path).f_fsid
    return value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


# -- decisions on worker threads ---------------------------------------------------------------


class _Job:
    """One run of the filters; the reader waits for ``done`` with a deadline."""

    __slots__ = ("call", "done", "error", "result")

    def __init__(self, call: Callable[[], NTSTATUS | None]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: NTSTATUS | None = None
        self.error: BaseException | None = None


class _DecisionPool:
    """Worker threads that run filters; one that does not return is abandoned, not reused."""

    def __init__(self, wake_fd: int, max_workers: int) -> None:
        self._wake_fd = wake_fd
        self._max = max_workers
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job | None]] = []
        self._all: list[queue.SimpleQueue[_Job | None]] = []
        self._count = 0
        self._closed = False

    def submit(self, job: _Job) -> bool:
        """Hand ``job`` to an idle worker (made if needed); False when all are stuck."""
        with self._lock:
            if self._closed:
                return False
            if self._idle:
                inbox = self._idle.pop()
            elif len(self._all) < self._max:
                inbox = queue.SimpleQueue()
                self._all.append(inbox)
                self._count += 1
                thread = threading.Thread(
                    target=self._work,
                    args=(inbox,),
                    name=f"sessionio-decision-{self._count}",
                    daemon=True,
                )
                thread.start()
            else:
                return False
        inbox.put(job)
        return True

    def _work(self, inbox: queue.SimpleQueue[_Job | None]) -> None:
        while (job := inbox.get()) is not None:
            try:
                job.result = job.call()
            except BaseException as err:  # a filter's exception is its verdict: the default
                job.error = err
            job.done.set()
            with self._lock:  # never write to the fd after shutdown(): its number may be reused
                if self._closed:
                    return
                os.eventfd_write(self._wake_fd, 1)
                self._idle.append(inbox)

    def shutdown(self) -> None:
        """Ask every worker to exit once its current filter returns (they are daemons)."""
        with self._lock:
            self._closed = True
            for inbox in self._all:
                inbox.put(None)
            self._all.clear()
            self._idle.clear()


# -- the reader's work items ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PermissionItem:
    event: FanotifyEvent
    token: int
    time: float


@dataclass(frozen=True, slots=True)
class _NotificationItem:
    operations: tuple[tuple[str, str], ...]  # (operation, detail)
    path: str
    requester: Requester
    time: float


_STOP: Final = object()


class FileMonitor(Resource):
    """The live I/O path: fanotify groups, marks, the reader loop, filters and subscribers.

    ``kernel`` is the LinuxKernel whose filter manager decides (a fresh one by default);
    ``paths`` restricts to those trees (default: every real mount); ``operations`` picks what
    to watch among :data:`OPERATIONS` (default :data:`DEFAULT_OPERATIONS`); ``permission``
    forces the permission group on or off (default: when a filter has a pre-operation for
    one of them); ``decision_timeout`` (seconds) and ``on_timeout`` (the verdict for an
    operation whose filters raise or run late) bound every decision; ``cacheable(operation,
    path)`` enables the ignore-mark cache (it runs on the reader thread: it must be quick and
    touch no file); ``report_tid`` asks FAN_REPORT_TID of the permission group (per-thread
    sessions); ``unlimited_queue`` keeps the permission group's queue unlimited (set False
    only to test overflows), ``notification_unlimited_queue`` makes the notification group's
    so (limited by default: a slow reader loses notifications, reported, never memory).
    ``attributor`` and ``features`` are injectable; ``poll_interval`` is how long the reader
    sleeps at most (it also bounds how fast a stop is seen).

    ``decision_timeout``, ``on_timeout`` and ``cacheable`` are plain attributes read at each
    decision, so a reload may assign them while the monitor runs (then :meth:`clear_cache`);
    whether the ignore-mark cache exists at all is decided here (``cacheable`` given and a
    permission group made). ``roots`` are the watched trees (empty: every filesystem),
    ``marked`` the paths whose filesystems were marked, ``skipped`` the mounts the kernel
    refused, as ``(mount point, reason)``.
    """

    def __init__(
        self,
        kernel: LinuxKernel | None = None,
        paths: Iterable[str | os.PathLike[str]] = (),
        *,
        operations: Iterable[str] | None = None,
        permission: bool | None = None,
        decision_timeout: float = DEFAULT_DECISION_TIMEOUT,
        on_timeout: Verdict = Verdict.ALLOW,
        cacheable: Callable[[str, str], bool] | None = None,
        report_tid: bool = True,
        unlimited_queue: bool = True,
        notification_unlimited_queue: bool = False,
        attributor: Attributor | None = None,
        features: FanotifyFeatures | None = None,
        poll_interval: float = 0.25,
        max_workers: int = 4,
        record_queue_size: int = 65536,
    ) -> None:
        self.kernel = kernel if kernel is not None else LinuxKernel()
        ops = tuple(DEFAULT_OPERATIONS if operations is None else dict.fromkeys(operations))
        unknown = [op for op in ops if op not in OPERATIONS]
        if unknown:
            raise UsageError(f"unknown operations {unknown}: choose among {list(OPERATIONS)}")
        if decision_timeout <= 0:
            raise UsageError("decision_timeout must be positive")
        self.operations: tuple[str, ...] = ops
        self.decision_timeout = float(decision_timeout)
        self.on_timeout = Verdict(on_timeout)
        self.cacheable = cacheable
        self.roots: tuple[str, ...] = tuple(
            dict.fromkeys(os.path.realpath(os.fspath(p)) for p in paths)
        )
        self.marked: tuple[str, ...] = ()
        self.skipped: tuple[tuple[str, str], ...] = ()
        self.perm: FanotifyGroup | None = None
        self.notif: FanotifyGroup | None = None
        self._prefixes = tuple(r if r.endswith("/") else r + "/" for r in self.roots)
        self._poll_interval = poll_interval
        self._own_pid = os.getpid()
        self._counters = _Counters()
        self._subscribers: list[Subscriber] = []
        self._records: queue.Queue[object] = queue.Queue(record_queue_size)
        self._dropped_unreported = 0
        self._dropped_lock = threading.Lock()
        self._backlog: deque[_PermissionItem] = deque()
        self._notifications: deque[_NotificationItem] = deque()
        self._mount_fds: dict[tuple[int, int], int] = {}
        self._ignored_dirs: set[str] = set()
        self._multi_mounted: set[int] = set()
        self._perm_mask = FanMask(0)
        self._notif_mask = FanMask(0)
        self._reported_notif: frozenset[str] = frozenset()
        self._report_tid = False
        self._policy_cache = False
        self._scope_cache = False
        self._cache_lock = threading.Lock()
        self._cache_generation = 0
        self._closed = False
        self._running = False
        self._reader_done = threading.Event()
        self._reader_done.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._pool = _DecisionPool(self._wake_fd, max_workers)
        self._poller = select.poll()
        self._decision_poller = select.poll()
        try:
            self._features = features or probe_features()
            self.attributor = attributor if attributor is not None else Attributor(self.kernel)
            self._open_groups(permission, report_tid, unlimited_queue, notification_unlimited_queue)
            self._mark()
        except BaseException:
            self.close()
            raise
        for group in (self.perm, self.notif):
            if group is not None:
                self._poller.register(group.fileno(), select.POLLIN)
        self._poller.register(self._wake_fd, select.POLLIN)
        # While a decision runs only our own permission events are read: pending
        # notifications must not make that wait spin.
        if self.perm is not None:
            self._decision_poller.register(self.perm.fileno(), select.POLLIN)
        self._decision_poller.register(self._wake_fd, select.POLLIN)

    # -- setup ------------------------------------------------------------------------------

    def _open_groups(
        self,
        permission: bool | None,
        report_tid: bool,
        unlimited_queue: bool,
        notification_unlimited_queue: bool,
    ) -> None:
        perm_ops = [op for op in self.operations if op in PERMISSION_OPERATIONS]
        if permission is None:
            permission = any(
                self.kernel.filters.has_pre_operations(MAJOR_FUNCTIONS[op]) for op in perm_ops
            )
        if permission and perm_ops:
            self.perm = FanotifyGroup.permission_group(
                unlimited_queue=unlimited_queue, report_tid=report_tid, features=self._features
            )
            self._report_tid = bool(self.perm.flags & FanInit.REPORT_TID)
            mask = FanMask.ONDIR
            for op in perm_ops:
                mask |= _PERM_MASKS[op]
            self._perm_mask = mask
        notif_ops = [op for op in self.operations if self.perm is None or op not in perm_ops]
        self._policy_cache = self.perm is not None and self.cacheable is not None
        self._scope_cache = bool(self.roots) and self._features.mark_ignore
        if not notif_ops and not (self._policy_cache or self._scope_cache):
            return
        self.notif = FanotifyGroup.notification_group(
            unlimited_queue=notification_unlimited_queue, features=self._features
        )
        if not self.notif.flags & FanInit.REPORT_DIR_FID:
            # No FAN_CREATE / FAN_MOVED_TO without FID reporting: nothing would take an
            # ignore mark back, so the caches stay off.
            self._policy_cache = self._scope_cache = False
            notif_ops = [op for op in notif_ops if not _NOTIF_MASKS[op] & _FID_ONLY]
        mask = FanMask(0)
        for op in notif_ops:
            mask |= _NOTIF_MASKS[op]
        if self._policy_cache or self._scope_cache:
            mask |= _INVALIDATING
        if mask & _FID_ONLY:
            mask |= FanMask.ONDIR
        self._notif_mask = mask
        self._reported_notif = frozenset(notif_ops)
        if not mask:
            self.notif.close()
            self.notif = None

    def _mark(self) -> None:
        strict = bool(self.roots)
        if strict:
            candidates = list(self.roots)
        else:
            candidates = filesystems_to_mark(parse_mounts(_read_mounts()))
        devices: set[int] = set()
        marked: list[str] = []
        skipped: list[tuple[str, str]] = []
        for path in candidates:
            try:
                device = os.stat(path).st_dev
                if device in devices:
                    continue
                self._mark_one(path)
            except OSError as err:
                if strict:
                    raise
                skipped.append((path, err.strerror or str(err)))
                continue
            devices.add(device)
            marked.append(path)
        if not marked:
            raise UnsupportedPlatformError(
                "no mounted filesystem accepts a fanotify mark", feature="FAN_MARK_FILESYSTEM"
            )
        self.marked = tuple(marked)
        self.skipped = tuple(skipped)
        self._multi_mounted = _devices_mounted_twice()

    def _mark_one(self, path: str) -> None:
        if self.notif is not None:
            # The mount fd resolves file handles (open_by_handle_at). Opened before the marks,
            # so that no permission event of ours is needed for it.
            key = _statvfs_key(path)
            if key not in self._mount_fds:
                directory = path if os.path.isdir(path) else os.path.dirname(path)
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
                self._mount_fds[key] = os.open(directory, flags)
        if self.perm is not None:
            self.perm.mark_filesystem(path, self._perm_mask)
        if self.notif is not None:
            try:
                self.notif.mark_filesystem(path, self._notif_mask)
            except OSError:
                if self.perm is None:
                    raise
                # No file handles on this filesystem (fsid 0, no export): permission events
                # still work, notifications are not available here.

    # -- public surface ---------------------------------------------------------------------

    @property
    def permission(self) -> bool:
        """Whether this monitor holds a permission group (it can deny, and blocks openers)."""
        return self.perm is not None

    @property
    def stats(self) -> MonitorStats:
        return self._counters.snapshot()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(FileOperation)`` for every operation (on the dispatcher thread,
        after the kernel was answered); returns a function that unsubscribes. A subscriber
        that raises is counted (``subscriber_errors``) and keeps receiving."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def clear_cache(self) -> None:
        """Drop every ignore mark (the kernel asks again about everything), from any thread.

        Call it after the policy behind ``cacheable`` changed (a rule reload), after the new
        policy is in place: an answer cached under the old one would go on answering for it.
        A decision that started before this call adds no mark afterwards.
        """
        with self._cache_lock:
            self._cache_generation += 1
            for group in (self.perm, self.notif):
                if group is not None and not group.closed:
                    with contextlib.suppress(OSError):
                        group.flush(FanMark.INODE)  # our only inode marks are ignore marks
        self._ignored_dirs = set()

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Read, decide, answer and report until ``stop_event`` is set (or :meth:`close`).

        On the way out it handles what the kernel has queued by then (bounded: a busy machine
        never runs dry), lets the subscribers finish what they were given while still
        answering this process's own events, and returns. The groups stay open until
        :meth:`close`.
        """
        if self._closed:
            raise ClosedResourceError("this FileMonitor was closed")
        if self._running:
            raise UsageError("this FileMonitor is already running")
        self._running = True
        self._reader = threading.current_thread()
        self._reader_done.clear()
        stop = stop_event if stop_event is not None else self._stop
        self._start_dispatcher()
        try:
            while not stop.is_set() and not self._stop.is_set():
                self._step(self._poll_interval)
            self._finish_queued()
        finally:
            try:
                self._flush_subscribers()
            finally:
                self._running = False
                self._reader_done.set()

    def start(self) -> None:
        """Run :meth:`run` on a thread of its own, until :meth:`close`."""
        if self._thread is not None or self._running:
            raise UsageError("this FileMonitor is already running")
        self._thread = threading.Thread(target=self.run, name="sessionio-reader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the reader :meth:`start` made (it finishes as :meth:`run` does), close the
        groups (the kernel then allows whatever is still pending) and every fd; idempotent."""
        if self._closed:
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        elif self._running and self._reader is not threading.current_thread():
            self._reader_done.wait()  # run() on another thread: let it finish as it does
        self._closed = True
        for group in (self.perm, self.notif):
            if group is not None:
                group.close()
        for item in self._backlog:
            close_event_fds([item.event])
        self._backlog.clear()
        for fd in self._mount_fds.values():
            os.close(fd)
        self._mount_fds.clear()
        self._pool.shutdown()
        os.close(self._wake_fd)

    # -- the reader loop --------------------------------------------------------------------

    def _step(self, timeout: float) -> None:
        before = self.attributor.sample()
        ready = dict(self._poller.poll(max(0, int(timeout * 1000))))
        self._drain_wake()
        # Notifications first: their records then come out before those of permission
        # events read after them, closer to the order things happened in.
        if self.notif is not None:
            if ready.get(self.notif.fileno(), 0) & _READY:
                self._read_notifications(before)
            else:
                self.attributor.queue_empty(before)  # poll looked: nothing queued
        if self.perm is not None and ready.get(self.perm.fileno(), 0) & _READY:
            self._read_permission()
        self._process_backlog()
        self._process_notifications()

    def _finish_queued(self) -> None:
        """Stopping: handle what is queued now, for a bounded time."""
        deadline = time.monotonic() + self.decision_timeout + 1.0
        while time.monotonic() < deadline:
            got = self._read_notifications(self.attributor.sample())
            got += self._read_permission()
            self._process_backlog()
            self._process_notifications()
            if not got:
                return

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake_fd)

    def _is_own(self, pid: int) -> bool:
        if pid == self._own_pid:
            return True
        # With FAN_REPORT_TID the pid is a thread id; ours are under /proc/self/task (and
        # the requesting thread exists: it is blocked on this event).
        return self._report_tid and os.path.exists(f"/proc/self/task/{pid}")

    def _read_permission(self) -> int:
        """Read one batch of permission events: answer our own at once, queue the others.
        Returns how many events were read."""
        group = self.perm
        if group is None:
            return 0
        token = self.attributor.permission_token()
        events = group.read_events(0)
        now = time.time()
        for event in events:
            self._counters.add("events")
            self._counters.add("permission_events")
            if event.is_overflow:
                close_event_fds([event])
                self._report_overflow(
                    now,
                    "the permission queue overflowed: operations were allowed unasked",
                )
            elif event.fd < 0:
                close_event_fds([event])
            elif self._is_own(event.pid):
                try:
                    self._answer(event, Verdict.ALLOW)
                    self._counters.add("own_allowed")
                finally:
                    close_event_fds([event])
            else:
                self._backlog.append(_PermissionItem(event, token, now))
        return len(events)

    def _read_notifications(self, before: int) -> int:
        """Drain the notification queue (bounded), attributing each event at once, while
        its process may still be alive; ``before`` is a cursor sample taken before the
        first read. Returns how many events were read."""
        group = self.notif
        if group is None:
            return 0
        count = 0
        for _ in range(_MAX_DRAIN_READS):
            stamp = self.attributor.stamp()
            events = group.read_events(0)
            if not events:
                self.attributor.queue_empty(before)
                break
            now = time.time()
            for event in events:
                try:
                    self._accept_notification(event, stamp, now)
                finally:
                    close_event_fds([event])
            count += len(events)
            before = self.attributor.sample()
        return count

    def _accept_notification(
        self, event: FanotifyEvent, stamp: NotificationStamp, now: float
    ) -> None:
        self._counters.add("events")
        if event.is_overflow:
            self._report_overflow(now, "the notification queue overflowed: events were lost")
            return
        if event.pid == self._own_pid:
            return
        path = self._notification_path(event)
        if event.mask & _INVALIDATING and self._counters.values["ignore_marks"]:
            self._invalidate(path, is_dir=bool(event.mask & FanMask.ONDIR))
        operations = tuple(
            (op, detail)
            for bit, op, detail in _NOTIFICATION_BITS
            if event.mask & bit and op in self._reported_notif
        )
        if not operations:
            return
        if not self._in_scope(path):
            self._counters.add("out_of_scope")
            self._cache_out_of_scope(path)
            return
        requester = self.attributor.notified(event.pid, event.pidfd, stamp)
        self._counters.add(str(requester.attribution))
        self._notifications.append(_NotificationItem(operations, path, requester, now))

    def _notification_path(self, event: FanotifyEvent) -> str:
        if event.fd >= 0:
            return _fd_path(event.fd)
        dfid = event.dfid
        name = event.name or ""
        mount_fd = None if dfid is None else self._mount_fds.get(_fsid_key(dfid.fsid))
        if dfid is None or mount_fd is None:
            return name
        try:
            handle_fd = open_by_handle_at(mount_fd, dfid, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return name  # the directory is gone (ESTALE)
        try:
            directory = _fd_path(handle_fd)
        finally:
            os.close(handle_fd)
        if not directory:
            return name
        if not name or name == ".":
            return directory
        return directory.rstrip("/") + "/" + name

    def _in_scope(self, path: str) -> bool:
        if not self.roots:
            return True
        return any(
            path == root or path.startswith(prefix)
            for root, prefix in zip(self.roots, self._prefixes, strict=True)
        )

    # -- permission events ------------------------------------------------------------------

    def _process_backlog(self) -> None:
        while self._backlog:
            self._handle_permission(self._backlog.popleft())

    def _handle_permission(self, item: _PermissionItem) -> None:
        event = item.event
        answered = False
        record: FileOperation | None = None
        try:
            operation = next((op for bit, op in _PERMISSION_BITS if event.mask & bit), "open")
            path = _fd_path(event.fd)
            if not self._in_scope(path):
                self._answer(event, Verdict.ALLOW)
                answered = True
                self._counters.add("out_of_scope")
                self._cache_out_of_scope(path)
                return
            requester = self.attributor.blocked(event.pid, item.token, is_tid=self._report_tid)
            self._counters.add(str(requester.attribution))
            data = self._callback_data(operation, path, requester)
            generation = self._cache_generation
            verdict, outcome, detail = self._decide(data, pre=True)
            if self.notif is not None and self.attributor.epoch < item.token:
                # What this event taught may answer notification events only once the queue
                # was seen empty after it was read (sessionio.runtime.attribution, rule 2).
                self._read_notifications(self.attributor.sample())
            if verdict is Verdict.ALLOW and outcome is Outcome.DECIDED:
                self._cache_allow(event, operation, path, generation)
            final = verdict if verdict is not None else Verdict.ALLOW
            self._answer(event, final)
            answered = True
            record = _operation(item.time, operation, path, requester, final, outcome, detail, data)
        finally:
            if not answered:
                with contextlib.suppress(OSError):
                    self._answer(event, self.on_timeout)
            close_event_fds([event])
        if record is not None:
            self._process_notifications(read_before=item.time)
            self._emit(record)

    def _answer(self, event: FanotifyEvent, verdict: Verdict) -> None:
        group = self.perm
        if group is None or group.closed:
            return
        try:
            group.respond(event.fd, allow=verdict is Verdict.ALLOW)
        except OSError as err:
            if err.errno != errno.ENOENT:  # ENOENT: it was answered already
                raise
            return
        self._counters.add("allowed" if verdict is Verdict.ALLOW else "denied")

    def _cache_allow(
        self, event: FanotifyEvent, operation: str, path: str, generation: int
    ) -> None:
        """The kernel-side cache: an ignore mark on exactly this inode (see the docstring),
        unless :meth:`clear_cache` ran since the decision started (it may be stale)."""
        group = self.perm
        if group is None or not self._policy_cache or self.cacheable is None:
            return
        if not self.cacheable(operation, path):
            return
        try:
            info = os.fstat(event.fd)
        except OSError:
            return
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return  # another name could lead a rule-concerned path to this inode
        if info.st_dev in self._multi_mounted:
            return  # so could another mount of the same filesystem
        with self._cache_lock:
            if generation != self._cache_generation:
                return
            try:
                group.add_ignore(
                    f"/proc/self/fd/{event.fd}", _PERM_MASKS[operation], flags=self._ignore_flags()
                )
            except OSError:
                return
        self._counters.add("ignore_marks")

    def _ignore_flags(self) -> FanMark:
        return FanMark.EVICTABLE if self._features.evictable_marks else FanMark.INODE

    def _cache_out_of_scope(self, path: str) -> None:
        """Path mode: stop events from the directory of an out-of-scope path (not recursive),
        unless that directory leads to a watched tree (its children include the root)."""
        if not self._scope_cache or not path.startswith("/"):
            return
        parent = os.path.dirname(path)
        if parent in self._ignored_dirs or self._in_scope(parent):
            return
        prefix = parent.rstrip("/") + "/"
        if any(root.startswith(prefix) for root in self.roots):
            return
        added = False
        for group, mask in ((self.perm, self._perm_mask), (self.notif, self._notif_mask)):
            if group is None or not mask:
                continue
            try:
                group.add_ignore(
                    parent,
                    mask | FanMask.EVENT_ON_CHILD | FanMask.ONDIR,
                    flags=self._ignore_flags() | FanMark.DONT_FOLLOW,
                )
            except OSError:
                continue
            added = True
        if added:
            if len(self._ignored_dirs) >= _MAX_IGNORED_DIRS:
                self._ignored_dirs.clear()  # only a shortcut: the kernel keeps the marks
            self._ignored_dirs.add(parent)
            self._counters.add("ignore_marks")

    def _invalidate(self, path: str, *, is_dir: bool) -> None:
        """A name was created or moved here: drop any ignore mark its inode carries, so a
        cached answer never follows it to a path a rule may concern."""
        if not path.startswith("/"):
            return
        extra = FanMask.EVENT_ON_CHILD | FanMask.ONDIR if is_dir else FanMask(0)
        for group, mask in ((self.perm, self._perm_mask), (self.notif, self._notif_mask)):
            if group is None or not mask:
                continue
            with contextlib.suppress(OSError):  # ENOENT: it had none
                group.remove_ignore(path, mask | extra, flags=FanMark.DONT_FOLLOW)
        self._ignored_dirs.discard(path)

    # -- filters ----------------------------------------------------------------------------

    def _callback_data(self, operation: str, path: str, requester: Requester) -> CallbackData:
        request = IoRequest(
            kernel=self.kernel,
            major_function=MAJOR_FUNCTIONS[operation],
            thread=requester.thread,
            file=FileObject(path),
            origin_pid=Pid(requester.pid) if requester.pid > 0 else None,
            operation=operation,
        )
        return CallbackData.for_request(request)

    def _decide(self, data: CallbackData, *, pre: bool) -> tuple[Verdict | None, Outcome, str]:
        """Run the filters on a worker within the deadline: (verdict, outcome, detail).
        The verdict is None for post-operations (there is nothing left to answer)."""
        major = data.Iopb.MajorFunction
        done = Outcome.DECIDED if pre else Outcome.REPORTED
        default = self.on_timeout if pre else None
        if not any(r.handles(major) for r in self.kernel.filters.filters):
            return (Verdict.ALLOW if pre else None), done, ""
        kernel = self.kernel

        def call() -> NTSTATUS | None:
            with kernel.activate():
                if pre:
                    return kernel.filters.run(data, _perform)
                kernel.filters.run_post_only(data)
                return None

        job = _Job(call)
        if not self._pool.submit(job):
            self._counters.add("timeouts")
            return default, Outcome.TIMEOUT, "every decision worker is stuck in a filter"
        if not self._await(job, time.monotonic() + self.decision_timeout):
            self._counters.add("timeouts")
            detail = f"the filters did not decide within {self.decision_timeout:g} s"
            return default, Outcome.TIMEOUT, detail
        if job.error is not None:
            self._counters.add("filter_errors")
            return default, Outcome.ERROR, f"a filter raised {job.error!r}"
        if not pre:
            return None, done, ""
        status = job.result if job.result is not None else NTSTATUS.STATUS_SUCCESS
        return (Verdict.ALLOW if nt_success(status) else Verdict.DENY), done, ""

    def _await(self, job: _Job, deadline: float) -> bool:
        """Wait for ``job`` until ``deadline``, answering this process's own permission
        events meanwhile (a filter may open files in the watched tree). Once :meth:`close`
        was called, a wait lasts at most a second more (closing must not take a long
        decision timeout): then the operation gets the default verdict, as on a timeout."""
        closing = False
        while not job.done.is_set():
            if not closing and self._stop.is_set():
                closing = True
                deadline = min(deadline, time.monotonic() + _CLOSING_GRACE)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return job.done.is_set()
            ready = dict(self._decision_poller.poll(max(1, math.ceil(remaining * 1000))))
            self._drain_wake()
            if self.perm is not None and ready.get(self.perm.fileno(), 0) & _READY:
                self._read_permission()
        return True

    # -- notification events ----------------------------------------------------------------

    def _process_notifications(self, read_before: float | None = None) -> None:
        """Post-operations and records of the notifications read (those read before
        ``read_before`` only, when given)."""
        while self._notifications:
            if read_before is not None and self._notifications[0].time > read_before:
                return
            item = self._notifications.popleft()
            for operation, detail in item.operations:
                data = self._callback_data(operation, item.path, item.requester)
                _verdict, outcome, why = self._decide(data, pre=False)
                self._emit(
                    _operation(
                        item.time,
                        operation,
                        item.path,
                        item.requester,
                        None,
                        outcome,
                        why or detail,
                        data,
                    )
                )
            if self._backlog:
                self._process_backlog()  # permission events first: someone is waiting

    # -- records for the subscribers --------------------------------------------------------

    def _report_overflow(self, now: float, detail: str) -> None:
        self._counters.add("overflows")
        self._emit(_overflow(now, detail))

    def _emit(self, record: FileOperation | None) -> None:
        if record is None:
            return
        try:
            self._records.put_nowait(record)
        except queue.Full:
            self._counters.add("records_dropped")
            with self._dropped_lock:
                self._dropped_unreported += 1

    def _start_dispatcher(self) -> None:
        if self._dispatcher is not None and self._dispatcher.is_alive():
            return
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="sessionio-subscribers", daemon=True
        )
        self._dispatcher.start()

    def _flush_subscribers(self) -> None:
        """Let the dispatcher deliver what it was given, answering this process's own events
        meanwhile (a subscriber writing into the watched tree needs them answered)."""
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is None:
            return
        deadline = time.monotonic() + _FLUSH_TIMEOUT
        serving = not self._closed

        def wait(seconds: float) -> None:
            nonlocal serving
            if serving:
                try:
                    self._step(seconds)
                    return
                except ClosedResourceError:
                    serving = False
            dispatcher.join(seconds)

        while time.monotonic() < deadline:
            try:
                self._records.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                wait(0.0)
        while dispatcher.is_alive() and time.monotonic() < deadline:
            wait(0.05)

    def _dispatch(self) -> None:
        while (item := self._records.get()) is not _STOP:
            with self._dropped_lock:
                dropped, self._dropped_unreported = self._dropped_unreported, 0
            if dropped:
                detail = f"{dropped} records were dropped: the subscribers were too slow"
                self._deliver(_overflow(time.time(), detail))
            if isinstance(item, FileOperation):
                self._deliver(_named(item))

    def _deliver(self, record: FileOperation) -> None:
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(record)
            except Exception:
                self._counters.add("subscriber_errors")


def _perform(_data: CallbackData) -> NTSTATUS:
    """The file system below every filter: the kernel performs the operation once allowed."""
    return NTSTATUS.STATUS_SUCCESS


def _operation(
    when: float,
    operation: str,
    path: str,
    requester: Requester,
    verdict: Verdict | None,
    outcome: Outcome,
    detail: str,
    data: CallbackData | None,
) -> FileOperation:
    process = requester.process
    return FileOperation(
        time=when,
        operation=operation,
        path=path,
        pid=requester.pid,
        tid=requester.tid,
        comm=process.name if process is not None else "",
        exe=process.exe if process is not None else None,
        uid=process.uid if process is not None else None,
        euid=requester.euid,
        session_id=int(requester.session_id),
        attribution=requester.attribution,
        verdict=verdict,
        outcome=outcome,
        detail=detail,
        login_uid=requester.login_uid,
        data=data,
    )


def _overflow(now: float, detail: str) -> FileOperation:
    return FileOperation(
        time=now,
        operation=OVERFLOW,
        path="",
        pid=0,
        tid=0,
        comm="",
        exe=None,
        uid=None,
        euid=None,
        session_id=int(NO_SESSION),
        attribution=Attribution.UNIDENTIFIED,
        verdict=None,
        outcome=Outcome.OVERFLOW,
        detail=detail,
    )


def _named(record: FileOperation) -> FileOperation:
    """Resolve user names, on the dispatcher thread (the passwd database may be watched)."""
    if record.is_overflow:
        return record
    euid = record.euid if record.euid is not None else record.uid
    return replace(record, user=user_name(euid), login_user=user_name(record.login_uid))


def _read_mounts() -> str:
    with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _devices_mounted_twice() -> set[int]:
    """Devices of filesystems mounted more than once here (bind mounts): an inode there has
    several paths even with one link."""
    counts: dict[int, int] = {}
    try:
        mounts = parse_mounts(_read_mounts())
    except OSError:
        return set()
    for mount_point, _fstype in mounts:
        try:
            device = os.stat(mount_point).st_dev
        except OSError:
            continue
        counts[device] = counts.get(device, 0) + 1
    return {device for device, n in counts.items() if n > 1}
