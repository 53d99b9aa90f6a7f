"""fanotify groups on the running kernel: ``fanotify_init``/``fanotify_mark`` through libc, and
:class:`FanotifyGroup`, which owns a group fd, reads parsed events and writes answers.

The wire format lives in :mod:`sessionio.protocols.fanotify`; this module only moves bytes.

Who closes what:

- the group fd belongs to the :class:`FanotifyGroup` (``close()``, or the ``with`` block);
- every event's ``fd`` and ``pidfd`` belong to whoever called :meth:`FanotifyGroup.read_events`:
  close them on every path (:func:`close_event_fds`), or the process runs out of descriptors;
- every permission event must be answered exactly once (:meth:`FanotifyGroup.respond`), or the
  requester stays blocked (state D) until the group is closed, which *allows* everything pending.

Kernel features are probed once by trying them (:func:`probe_features`); the group constructors
ask for what the kernel has and fall back, and the caller reads what it got from
:attr:`FanotifyGroup.flags`. EPERM from ``fanotify_init`` becomes
:class:`~sessionio.errors.PrivilegeError` and ENOSYS
:class:`~sessionio.errors.UnsupportedPlatformError`; every other failure is the stdlib
``OSError`` the kernel meant.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import math
import os
import select
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Self

from sessionio.errors import (
    ClosedResourceError,
    PrivilegeError,
    UnsupportedPlatformError,
    UsageError,
)
from sessionio.linux.libc import StrOrBytesPath, libc_call, libc_function
from sessionio.linux.resource import Resource
from sessionio.protocols.fanotify import (
    FAN_ALLOW,
    FAN_AUDIT,
    FAN_DENY,
    FAN_INFO,
    AuditRule,
    FanInit,
    FanMark,
    FanMask,
    FanotifyEvent,
    FidRecord,
    deny_errno_response,
    encode_audit_rule,
    encode_response,
    parse_events,
)

__all__ = [
    "AT_FDCWD",
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_EVENT_F_FLAGS",
    "FanotifyFeatures",
    "FanotifyGroup",
    "close_event_fds",
    "fanotify_init",
    "fanotify_mark",
    "open_by_handle_at",
    "probe_features",
]

AT_FDCWD: Final = -100
"""``dirfd`` meaning "relative to the current directory", as in ``<fcntl.h>``."""

DEFAULT_EVENT_F_FLAGS: Final = os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC
"""Open flags of event fds: read-only, and never inherited by a child the listener spawns."""

DEFAULT_BUFFER_SIZE: Final = 256 * 1024
"""Bytes per ``read()``: fatrace's size, thousands of events per system call."""

_CAP_SYS_ADMIN: Final = 21
_MARK_COMMANDS: Final = FanMark.ADD | FanMark.REMOVE | FanMark.FLUSH


def _raw_fanotify_init(flags: int, event_f_flags: int) -> int:
    function = libc_function("fanotify_init", ctypes.c_int, ctypes.c_uint, ctypes.c_uint)
    return libc_call(function, flags, event_f_flags)


def fanotify_init(flags: int, event_f_flags: int = DEFAULT_EVENT_F_FLAGS) -> int:
    """``fanotify_init(2)``: a new group fd, owned by the caller.

    Raises :class:`~sessionio.errors.PrivilegeError` when the caller lacks the capability (every
    group this library makes needs CAP_SYS_ADMIN; FAN_ENABLE_AUDIT also CAP_AUDIT_WRITE),
    :class:`~sessionio.errors.UnsupportedPlatformError` without fanotify, and ``OSError(EINVAL)``
    for flags this kernel does not know.
    """
    try:
        return _raw_fanotify_init(flags, event_f_flags)
    except OSError as err:
        if err.errno == errno.EPERM:
            capability = "CAP_SYS_ADMIN"
            if flags & FanInit.ENABLE_AUDIT and _has_capability(_CAP_SYS_ADMIN):
                capability = "CAP_AUDIT_WRITE"
            raise PrivilegeError(
                f"fanotify_init({FanInit(flags).name}) was refused: this fanotify group needs "
                f"{capability} (run as root)",
                capability=capability,
            ) from err
        if err.errno == errno.ENOSYS:
            raise UnsupportedPlatformError(
                "this kernel has no fanotify (CONFIG_FANOTIFY)", feature="fanotify"
            ) from err
        raise


def fanotify_mark(
    fd: int,
    flags: int,
    mask: int,
    dirfd: int = AT_FDCWD,
    path: StrOrBytesPath | None = None,
) -> None:
    """``fanotify_mark(2)``: add, remove or flush marks of group ``fd``.

    ``path`` ``None`` means ``dirfd`` itself is the object (or nothing, for FAN_MARK_FLUSH).
    Failures are ``OSError`` naming the path.
    """
    function = libc_function(
        "fanotify_mark",
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint64,
        ctypes.c_int,
        ctypes.c_char_p,
    )
    encoded = None if path is None else os.fsencode(path)
    libc_call(function, fd, flags, mask, dirfd, encoded, filename=path)


def open_by_handle_at(mount_fd: int, fid: FidRecord, flags: int = os.O_PATH | os.O_CLOEXEC) -> int:
    """``open_by_handle_at(2)``: an fd (the caller's) for the object a FID record names.

    ``mount_fd`` is any fd on the filesystem whose fsid the record carries. Needs
    CAP_DAC_READ_SEARCH; ESTALE means the object is gone.
    """
    function = libc_function(
        "open_by_handle_at", ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
    )
    return libc_call(function, mount_fd, fid.file_handle(), flags)


def _has_capability(bit: int) -> bool:
    """Whether the calling thread has capability ``bit`` in its effective set."""
    try:
        with open("/proc/thread-self/status", "rb") as status:
            for line in status:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


@dataclass(frozen=True, slots=True)
class FanotifyFeatures:
    """What this kernel's fanotify accepts, found by trying (:func:`probe_features`).

    Build one by hand (or with ``dataclasses.replace``) to make a group behave as on an older
    kernel: the constructors and :meth:`FanotifyGroup.add_ignore` choose their fallbacks from it.
    """

    class_content: bool
    """Permission events at all (CONFIG_FANOTIFY_ACCESS_PERMISSIONS)."""
    class_pre_content: bool
    """FAN_CLASS_PRE_CONTENT: FAN_PRE_ACCESS and FAN_DENY_ERRNO."""
    unlimited_queue: bool
    unlimited_marks: bool
    enable_audit: bool
    """FAN_ENABLE_AUDIT: also needs CAP_AUDIT_WRITE, so False when that is missing."""
    report_tid: bool
    report_pidfd: bool
    report_tid_pidfd: bool
    """FAN_REPORT_TID together with FAN_REPORT_PIDFD (EINVAL up to at least 6.18)."""
    report_fid: bool
    report_dfid_name: bool
    report_fd_error: bool
    filesystem_marks: bool
    """FAN_MARK_FILESYSTEM (4.20); without it, MOUNT marks are the widest."""
    mark_ignore: bool
    """FAN_MARK_IGNORE (6.0, backported to 5.15.154 and 5.10.220); else FAN_MARK_IGNORED_MASK."""
    evictable_marks: bool


@functools.cache
def probe_features() -> FanotifyFeatures:
    """Try each feature on this kernel once and remember the answers for the process.

    Every probe is a throwaway notification group, closed at once; the only marks it adds are on
    ``/`` in those groups and vanish with them. Needs CAP_SYS_ADMIN
    (:class:`~sessionio.errors.PrivilegeError` otherwise).
    """
    base = FanInit.CLASS_NOTIF | FanInit.CLOEXEC
    os.close(fanotify_init(base, os.O_RDONLY | os.O_CLOEXEC))

    def accepts(flags: FanInit) -> bool:
        try:
            os.close(_raw_fanotify_init(base | flags, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as err:
            if err.errno in (errno.EINVAL, errno.EPERM):
                return False
            raise
        return True

    def marks(flags: FanMark, mask: FanMask, path: str | None) -> bool:
        fd = _raw_fanotify_init(base, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fanotify_mark(fd, flags, mask, AT_FDCWD, path)
        except OSError as err:
            if err.errno == errno.EINVAL:
                return False
            raise
        finally:
            os.close(fd)
        return True

    return FanotifyFeatures(
        class_content=accepts(FanInit.CLASS_CONTENT),
        class_pre_content=accepts(FanInit.CLASS_PRE_CONTENT),
        unlimited_queue=accepts(FanInit.UNLIMITED_QUEUE),
        unlimited_marks=accepts(FanInit.UNLIMITED_MARKS),
        enable_audit=accepts(FanInit.ENABLE_AUDIT),
        report_tid=accepts(FanInit.REPORT_TID),
        report_pidfd=accepts(FanInit.REPORT_PIDFD),
        report_tid_pidfd=accepts(FanInit.REPORT_TID | FanInit.REPORT_PIDFD),
        report_fid=accepts(FanInit.REPORT_FID),
        report_dfid_name=accepts(FanInit.REPORT_DFID_NAME),
        report_fd_error=accepts(FanInit.REPORT_FD_ERROR),
        filesystem_marks=marks(FanMark.FLUSH | FanMark.FILESYSTEM, FanMask(0), None),
        mark_ignore=marks(FanMark.ADD | FanMark.IGNORE_SURV, FanMask.OPEN, "/"),
        evictable_marks=marks(FanMark.ADD | FanMark.EVICTABLE, FanMask.OPEN, "/"),
    )


def close_event_fds(events: Iterable[FanotifyEvent]) -> None:
    """Close every event's ``fd`` and ``pidfd`` that is a descriptor (non-negative).

    All are closed even when one fails; the first failure is raised afterwards (EBADF there
    means a double close, which could have closed someone else's fd: a bug worth seeing).
    """
    first_error: OSError | None = None
    for event in events:
        for fd in (event.fd, event.pidfd):
            if fd is None or fd < 0:
                continue
            try:
                os.close(fd)
            except OSError as err:
                first_error = first_error or err
    if first_error is not None:
        raise first_error


class FanotifyGroup(Resource):
    """One fanotify group: its fd, its marks, the events it reads and the answers it writes.

    The fd is always non-blocking (set here whatever the init flags said), so
    :meth:`read_events` never blocks longer than its timeout. ``fileno()`` makes the group
    usable with ``select``, ``selectors`` and ``loop.add_reader``. Reading from one thread while
    others respond is fine; close the group only after its readers stopped, since a closed fd
    number may be reused at once.
    """

    __slots__ = (
        "_buffer",
        "_buffer_lock",
        "_buffer_size",
        "_event_f_flags",
        "_fd",
        "_features",
        "_flags",
        "_overflows",
    )

    def __init__(
        self,
        fd: int,
        flags: FanInit,
        event_f_flags: int = DEFAULT_EVENT_F_FLAGS,
        *,
        features: FanotifyFeatures | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        """Adopt ``fd``, a group made with ``flags``: from now on the group owns and closes it."""
        if fd < 0:
            raise UsageError(f"FanotifyGroup needs an open fd, got {fd}")
        os.set_blocking(fd, False)
        self._fd: int | None = fd
        self._flags = FanInit(flags)
        self._event_f_flags = event_f_flags
        self._features = features
        self._buffer_size = buffer_size
        # One buffer for every read: a fresh one per read costs an mmap/munmap pair per event.
        self._buffer: bytearray | None = None
        self._buffer_lock = threading.Lock()
        self._overflows = 0

    @classmethod
    def create(
        cls,
        flags: FanInit,
        event_f_flags: int = DEFAULT_EVENT_F_FLAGS,
        *,
        features: FanotifyFeatures | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> Self:
        """``fanotify_init(flags, event_f_flags)`` exactly as asked, without fallbacks."""
        fd = fanotify_init(flags, event_f_flags)
        return cls(fd, flags, event_f_flags, features=features, buffer_size=buffer_size)

    @classmethod
    def permission_group(
        cls,
        *,
        audit: bool = False,
        pre_content: bool = False,
        unlimited_queue: bool = True,
        report_tid: bool = False,
        event_f_flags: int = DEFAULT_EVENT_F_FLAGS,
        features: FanotifyFeatures | None = None,
    ) -> Self:
        """A group for permission events: FAN_CLASS_CONTENT|FAN_CLOEXEC|FAN_NONBLOCK and, by
        default, FAN_UNLIMITED_QUEUE (a limited queue *allows* what overflows, unasked).

        ``audit`` adds FAN_ENABLE_AUDIT, ``pre_content`` asks FAN_CLASS_PRE_CONTENT (needed for
        FAN_PRE_ACCESS and deny errnos), ``report_tid`` FAN_REPORT_TID. Each falls back
        silently when the kernel (or a missing CAP_AUDIT_WRITE) refuses it: check
        :attr:`flags`. FID reporting is impossible here (the kernel refuses it for content
        classes), so permission events always carry an fd.
        """
        features = features or probe_features()
        if not features.class_content:
            raise UnsupportedPlatformError(
                "this kernel has no fanotify permission events "
                "(CONFIG_FANOTIFY_ACCESS_PERMISSIONS)",
                feature="FAN_CLASS_CONTENT",
            )
        flags = FanInit.CLOEXEC | FanInit.NONBLOCK
        if pre_content and features.class_pre_content:
            flags |= FanInit.CLASS_PRE_CONTENT
        else:
            flags |= FanInit.CLASS_CONTENT
        if unlimited_queue and features.unlimited_queue:
            flags |= FanInit.UNLIMITED_QUEUE
        if audit and features.enable_audit:
            flags |= FanInit.ENABLE_AUDIT
        if report_tid and features.report_tid:
            flags |= FanInit.REPORT_TID
        return cls.create(flags, event_f_flags, features=features)

    @classmethod
    def notification_group(
        cls,
        *,
        report_dfid_name: bool = True,
        report_pidfd: bool = True,
        report_tid: bool = False,
        unlimited_queue: bool = False,
        event_f_flags: int = DEFAULT_EVENT_F_FLAGS,
        features: FanotifyFeatures | None = None,
    ) -> Self:
        """A group for notification events: FAN_CLASS_NOTIF|FAN_CLOEXEC|FAN_NONBLOCK.

        ``report_dfid_name`` (FAN_REPORT_DFID_NAME) reports directory handle + entry name
        instead of an fd and enables CREATE/DELETE/MOVE events; ``report_pidfd`` a pidfd per
        event, so a reused pid is never mistaken for the requester. Each falls back silently
        when the kernel refuses it; when TID and PIDFD cannot be combined the pidfd is dropped
        (per-thread attribution cannot be recovered later, a pid check can). The queue is
        limited by default: a slow reader loses events (FAN_Q_OVERFLOW), never memory.
        """
        features = features or probe_features()
        flags = FanInit.CLASS_NOTIF | FanInit.CLOEXEC | FanInit.NONBLOCK
        if report_dfid_name and features.report_dfid_name:
            flags |= FanInit.REPORT_DFID_NAME
        want_tid = report_tid and features.report_tid
        if want_tid:
            flags |= FanInit.REPORT_TID
        if report_pidfd and features.report_pidfd and (not want_tid or features.report_tid_pidfd):
            flags |= FanInit.REPORT_PIDFD
        if unlimited_queue and features.unlimited_queue:
            flags |= FanInit.UNLIMITED_QUEUE
        return cls.create(flags, event_f_flags, features=features)

    # -- state ---------------------------------------------------------------------------------

    @property
    def flags(self) -> FanInit:
        """The init flags this group was made with (after any fallback)."""
        return self._flags

    @property
    def event_f_flags(self) -> int:
        return self._event_f_flags

    @property
    def features(self) -> FanotifyFeatures:
        """The kernel features fallbacks are chosen from (probed on first use unless given)."""
        if self._features is None:
            self._features = probe_features()
        return self._features

    @property
    def overflow_count(self) -> int:
        """FAN_Q_OVERFLOW events :meth:`read_events` has returned: each means events were lost
        and, for permission events, operations were allowed without being asked."""
        return self._overflows

    @property
    def closed(self) -> bool:
        return self._fd is None

    def fileno(self) -> int:
        return self._require_open()

    def close(self) -> None:
        """Close the group; idempotent. The kernel then allows every pending permission event."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd={self._fd}"
        return f"<FanotifyGroup {state} flags={self._flags.name}>"

    def _require_open(self) -> int:
        if self._fd is None:
            raise ClosedResourceError("this fanotify group was closed")
        return self._fd

    # -- marks ---------------------------------------------------------------------------------

    def mark(
        self,
        path: StrOrBytesPath | None,
        mask: FanMask,
        flags: FanMark = FanMark.ADD,
        *,
        dirfd: int = AT_FDCWD,
    ) -> None:
        """``fanotify_mark`` on this group. Without ADD, REMOVE or FLUSH in ``flags``, ADD is
        meant: ``mark(path, mask, FanMark.FILESYSTEM)`` adds a filesystem mark."""
        if not flags & _MARK_COMMANDS:
            flags |= FanMark.ADD
        fanotify_mark(self._require_open(), flags, mask, dirfd, path)

    def unmark(
        self,
        path: StrOrBytesPath | None,
        mask: FanMask,
        flags: FanMark = FanMark.INODE,
        *,
        dirfd: int = AT_FDCWD,
    ) -> None:
        """Remove ``mask`` from the mark of type ``flags`` on ``path`` (ENOENT if none)."""
        self.mark(path, mask, flags | FanMark.REMOVE, dirfd=dirfd)

    def flush(self, mark_type: FanMark = FanMark.INODE) -> None:
        """Remove every mark of ``mark_type`` (INODE, MOUNT or FILESYSTEM) from the group."""
        self.mark(None, FanMask(0), FanMark.FLUSH | mark_type)

    def mark_filesystem(
        self, path: StrOrBytesPath, mask: FanMask, *, dirfd: int = AT_FDCWD
    ) -> FanMark:
        """Mark the whole filesystem holding ``path`` (every bind mount of it), falling back to
        a mount mark on kernels without FAN_MARK_FILESYSTEM (or when it is refused with
        EINVAL). Returns the mark type used, FILESYSTEM or MOUNT."""
        if self.features.filesystem_marks:
            try:
                self.mark(path, mask, FanMark.ADD | FanMark.FILESYSTEM, dirfd=dirfd)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
            else:
                return FanMark.FILESYSTEM
        self.mark(path, mask, FanMark.ADD | FanMark.MOUNT, dirfd=dirfd)
        return FanMark.MOUNT

    def add_ignore(
        self,
        path: StrOrBytesPath,
        mask: FanMask,
        *,
        flags: FanMark = FanMark.INODE,
        survive_modify: bool = True,
        dirfd: int = AT_FDCWD,
    ) -> FanMark:
        """Stop ``mask`` events for ``path`` in the kernel: the decision cache.

        Uses FAN_MARK_IGNORE (where FAN_ONDIR and FAN_EVENT_ON_CHILD in ``mask`` apply, so a
        directory can ignore its direct children), else the legacy FAN_MARK_IGNORED_MASK
        (which drops those two bits). Returns which of the two was used.

        An ignore mask is the group's, the same for every process and session: cache only
        decisions no session changes. ``survive_modify`` (default) keeps the entry across
        writes to the file; it is required for directory, mount and filesystem marks. Without
        it, the first write clears the entry, and **adding it while the file is open for
        writing succeeds (returns 0) but adds nothing** (linux-mechanisms.md §1): never count
        on a non-surviving entry being there.
        """
        style = FanMark.IGNORE if self.features.mark_ignore else FanMark.IGNORED_MASK
        mark_flags = FanMark.ADD | style | flags
        if survive_modify:
            mark_flags |= FanMark.IGNORED_SURV_MODIFY
        self.mark(path, mask, mark_flags, dirfd=dirfd)
        return style

    def remove_ignore(
        self,
        path: StrOrBytesPath,
        mask: FanMask,
        *,
        flags: FanMark = FanMark.INODE,
        dirfd: int = AT_FDCWD,
    ) -> None:
        """Drop ``mask`` from the ignore mask on ``path`` (cache invalidation)."""
        style = FanMark.IGNORE if self.features.mark_ignore else FanMark.IGNORED_MASK
        self.mark(path, mask, FanMark.REMOVE | style | flags, dirfd=dirfd)

    # -- events --------------------------------------------------------------------------------

    def read_events(self, timeout: float | None = None) -> list[FanotifyEvent]:
        """Wait up to ``timeout`` seconds (``None``: until there are events; 0: just look) and
        return what one ``read()`` brought, parsed; ``[]`` when the time ran out.

        ``poll`` and ``read`` are retried on EINTR with the remaining time (PEP 475). The
        caller owns every returned ``fd``/``pidfd`` and must answer every permission event.
        FAN_Q_OVERFLOW events are returned like the others and counted in
        :attr:`overflow_count`. Bytes that do not parse raise
        :class:`~sessionio.errors.MalformedEventError` and the events of that read are lost to
        the caller: close the group then, which allows whatever they were.
        """
        fd = self._require_open()
        events = self._read_once(fd)  # the fd is non-blocking: a busy group needs no poll
        if events is not None:
            return events
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        poller: select.poll | None = None
        while deadline is None or time.monotonic() < deadline:
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
            wait_ms: int | None = None
            if deadline is not None:
                wait_ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
            if poller.poll(wait_ms):
                events = self._read_once(fd)
                if events is not None:
                    return events
                # else another reader took them between poll and read
        return []

    def _read_once(self, fd: int) -> list[FanotifyEvent] | None:
        """One non-blocking ``read()``, parsed; None when nothing was queued. The events are
        parsed from the group's reused buffer (a reader that finds it in use by another
        thread reads into a buffer of its own)."""
        if not self._buffer_lock.acquire(blocking=False):
            try:
                data = os.read(fd, self._buffer_size)
            except BlockingIOError:
                return None
            return self._parsed(data)
        try:
            buffer = self._buffer
            if buffer is None:
                buffer = self._buffer = bytearray(self._buffer_size)
            try:
                size = os.readv(fd, [buffer])
            except BlockingIOError:
                return None
            with memoryview(buffer) as view:
                return self._parsed(view[:size])
        finally:
            self._buffer_lock.release()

    def _parsed(self, data: bytes | memoryview) -> list[FanotifyEvent]:
        events = parse_events(data)
        self._overflows += sum(1 for event in events if event.is_overflow)
        return events

    def respond(
        self,
        event_fd: int,
        allow: bool,
        *,
        audit: bool = False,
        audit_rule: AuditRule | None = None,
        deny_errno: int | None = None,
    ) -> None:
        """Answer the permission event whose ``fd`` is ``event_fd``: FAN_ALLOW or FAN_DENY (the
        requester gets EPERM, or ``deny_errno`` from a PRE_CONTENT group).

        ``audit`` adds FAN_AUDIT (needs FAN_ENABLE_AUDIT); ``audit_rule`` adds FAN_AUDIT and
        FAN_INFO with the rule record, written in the same ``write()``. This does not close
        ``event_fd``: that stays the caller's job. ENOENT means the event was already answered.
        """
        if allow and deny_errno is not None:
            raise UsageError("deny_errno is only meaningful when denying")
        response = int(FAN_ALLOW if allow else FAN_DENY)
        if deny_errno is not None:
            response = deny_errno_response(deny_errno)
        info = b""
        if audit or audit_rule is not None:
            response |= FAN_AUDIT
        if audit_rule is not None:
            response |= FAN_INFO
            info = encode_audit_rule(audit_rule)
        payload = encode_response(event_fd, response) + info
        os.write(self._require_open(), payload)
