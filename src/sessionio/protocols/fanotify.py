"""The fanotify wire format: the bytes ``read()`` returns from a group fd, and the bytes a
listener writes back to answer a permission event.

Sans-I/O (h11's shape): :func:`parse_events` is a pure function over whatever one ``read()``
returned, and the encoders return bytes for the caller to ``write()`` in one call. Nothing here
opens, closes or owns a file descriptor; the fds *inside* the events (``fd`` and ``pidfd``) are
numbers the kernel installed in the reader's table, and closing them is the reader's job (see
``sessionio.linux.fanotify.close_event_fds``).

Layouts follow ``include/uapi/linux/fanotify.h`` in native byte order, as the kernel writes them::

    struct fanotify_event_metadata { u32 event_len; u8 vers; u8 reserved; u16 metadata_len;
                                     u64 mask; s32 fd; s32 pid; }                 (24 bytes)
    struct fanotify_event_info_header { u8 info_type; u8 pad; u16 len; }          (4 bytes)
    pidfd record:  { hdr; s32 pidfd; }                                            (type 4)
    fid records:   { hdr; s32 fsid[2]; u32 handle_bytes; s32 handle_type;         (types 1, 2, 3,
                     u8 f_handle[handle_bytes]; [char name[], NUL-terminated] }    10 and 12)
    error record:  { hdr; s32 error; u32 error_count; }                           (type 5)
    range record:  { hdr; u32 pad; u64 offset; u64 count; }                       (type 6)
    struct fanotify_response { s32 fd; u32 response; }
    struct fanotify_response_info_audit_rule { u8 type; u8 pad; u16 len;
                                               u32 rule_number, subj_trust, obj_trust; }

Records of any other type (the mount record of FAN_REPORT_MNT, types added later) are kept raw in
:attr:`FanotifyEvent.unknown`, so a newer kernel never makes the parser refuse a whole batch.
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass
from typing import Final

from sessionio.errors import MalformedEventError, UsageError

__all__ = [
    "FAN_ALLOW",
    "FAN_AUDIT",
    "FAN_DENY",
    "FAN_EPIDFD",
    "FAN_EVENT_METADATA_LEN",
    "FAN_INFO",
    "FAN_NOFD",
    "FAN_NOPIDFD",
    "FANOTIFY_METADATA_VERSION",
    "PERMISSION_EVENTS",
    "AuditRule",
    "AuditTrust",
    "ErrorRecord",
    "FanInfoType",
    "FanInit",
    "FanMark",
    "FanMask",
    "FanResponse",
    "FanotifyEvent",
    "FidRecord",
    "RangeRecord",
    "RawInfoRecord",
    "deny_errno_response",
    "encode_audit_rule",
    "encode_response",
    "parse_events",
]


class FanInit(enum.IntFlag):
    """``fanotify_init(2)`` flags: each member is the kernel's ``FAN_``-prefixed constant
    (``FanInit.REPORT_PIDFD`` is FAN_REPORT_PIDFD).

    The three CLASS values are a two-bit field, not flags: CLASS_NOTIF is 0, so test the class
    with ``flags & (CLASS_CONTENT | CLASS_PRE_CONTENT)``, never with ``in``.
    """

    CLASS_NOTIF = 0x0000_0000
    CLOEXEC = 0x0000_0001
    NONBLOCK = 0x0000_0002
    CLASS_CONTENT = 0x0000_0004
    CLASS_PRE_CONTENT = 0x0000_0008
    UNLIMITED_QUEUE = 0x0000_0010
    UNLIMITED_MARKS = 0x0000_0020
    ENABLE_AUDIT = 0x0000_0040
    REPORT_PIDFD = 0x0000_0080
    REPORT_TID = 0x0000_0100
    REPORT_FID = 0x0000_0200
    REPORT_DIR_FID = 0x0000_0400
    REPORT_NAME = 0x0000_0800
    REPORT_TARGET_FID = 0x0000_1000
    REPORT_FD_ERROR = 0x0000_2000
    REPORT_MNT = 0x0000_4000
    REPORT_DFID_NAME = REPORT_DIR_FID | REPORT_NAME
    REPORT_DFID_NAME_TARGET = REPORT_DFID_NAME | REPORT_FID | REPORT_TARGET_FID


class FanMask(enum.IntFlag):
    """Event bits of ``fanotify_mark(2)`` masks and of ``fanotify_event_metadata.mask``: each
    member is the kernel's ``FAN_``-prefixed constant (``FanMask.OPEN_PERM`` is FAN_OPEN_PERM).

    Unknown bits from a newer kernel are kept (IntFlag's KEEP boundary), never refused.
    """

    ACCESS = 0x0000_0001
    MODIFY = 0x0000_0002
    ATTRIB = 0x0000_0004
    CLOSE_WRITE = 0x0000_0008
    CLOSE_NOWRITE = 0x0000_0010
    OPEN = 0x0000_0020
    MOVED_FROM = 0x0000_0040
    MOVED_TO = 0x0000_0080
    CREATE = 0x0000_0100
    DELETE = 0x0000_0200
    DELETE_SELF = 0x0000_0400
    MOVE_SELF = 0x0000_0800
    OPEN_EXEC = 0x0000_1000
    Q_OVERFLOW = 0x0000_4000
    FS_ERROR = 0x0000_8000
    OPEN_PERM = 0x0001_0000
    ACCESS_PERM = 0x0002_0000
    OPEN_EXEC_PERM = 0x0004_0000
    PRE_ACCESS = 0x0010_0000
    MNT_ATTACH = 0x0100_0000
    MNT_DETACH = 0x0200_0000
    EVENT_ON_CHILD = 0x0800_0000
    RENAME = 0x1000_0000
    ONDIR = 0x4000_0000
    CLOSE = CLOSE_WRITE | CLOSE_NOWRITE
    MOVE = MOVED_FROM | MOVED_TO


class FanMark(enum.IntFlag):
    """``fanotify_mark(2)`` flags: each member is the kernel's ``FAN_MARK_``-prefixed constant
    (``FanMark.IGNORE`` is FAN_MARK_IGNORE).

    INODE (0), MOUNT, FILESYSTEM and MNTNS (MOUNT|FILESYSTEM) form a mark-type field, like the
    init classes. IGNORE_SURV is the kernel's shorthand FAN_MARK_IGNORE_SURV.
    """

    INODE = 0x0000_0000
    ADD = 0x0000_0001
    REMOVE = 0x0000_0002
    DONT_FOLLOW = 0x0000_0004
    ONLYDIR = 0x0000_0008
    MOUNT = 0x0000_0010
    IGNORED_MASK = 0x0000_0020
    IGNORED_SURV_MODIFY = 0x0000_0040
    FLUSH = 0x0000_0080
    FILESYSTEM = 0x0000_0100
    EVICTABLE = 0x0000_0200
    IGNORE = 0x0000_0400
    MNTNS = MOUNT | FILESYSTEM
    IGNORE_SURV = IGNORE | IGNORED_SURV_MODIFY


class FanResponse(enum.IntFlag):
    """Bits of ``fanotify_response.response``: FAN_ALLOW, FAN_DENY, FAN_AUDIT, FAN_INFO.

    Exactly one of ALLOW and DENY; AUDIT needs a group made with FAN_ENABLE_AUDIT; INFO means an
    info record (see :func:`encode_audit_rule`) follows in the same ``write()``. The top byte of
    a DENY may carry an errno (:func:`deny_errno_response`).
    """

    ALLOW = 0x01
    DENY = 0x02
    AUDIT = 0x10
    INFO = 0x20


class FanInfoType(enum.IntEnum):
    """``fanotify_event_info_header.info_type``: FAN_EVENT_INFO_TYPE_FID, ... (prefix dropped)."""

    FID = 1
    DFID_NAME = 2
    DFID = 3
    PIDFD = 4
    ERROR = 5
    RANGE = 6
    MNT = 7
    OLD_DFID_NAME = 10
    NEW_DFID_NAME = 12


class AuditTrust(enum.IntEnum):
    """The trust values of ``fanotify_response_info_audit_rule`` (subj_trust, obj_trust), as the
    kernel prints them in AUDIT_FANOTIFY records: 0 no, 1 yes, 2 unknown (fapolicyd's meaning).
    """

    NO = 0
    YES = 1
    UNKNOWN = 2


FAN_ALLOW: Final = FanResponse.ALLOW
FAN_DENY: Final = FanResponse.DENY
FAN_AUDIT: Final = FanResponse.AUDIT
FAN_INFO: Final = FanResponse.INFO

FAN_NOFD: Final = -1
"""``metadata.fd`` when the event carries no fd (FID groups, FAN_Q_OVERFLOW)."""
FAN_NOPIDFD: Final = FAN_NOFD
"""The pidfd record's value when the process had already exited (and been reaped)."""
FAN_EPIDFD: Final = -2
"""The pidfd record's value when creating the pidfd failed for any other reason."""

FANOTIFY_METADATA_VERSION: Final = 3
"""The only ``metadata.vers`` this parser understands; any other is refused, as fapolicyd does."""

PERMISSION_EVENTS: Final = (
    FanMask.OPEN_PERM | FanMask.ACCESS_PERM | FanMask.OPEN_EXEC_PERM | FanMask.PRE_ACCESS
)
"""Events that block the requesting process until the group answers (the kernel's
FANOTIFY_PERM_EVENTS): every one of them must get exactly one response."""

_METADATA: Final = struct.Struct("=IBBHQii")
FAN_EVENT_METADATA_LEN: Final = _METADATA.size
_INFO_HEADER: Final = struct.Struct("=BBH")
_FID_HEAD: Final = struct.Struct("=iiIi")  # fsid.val[0], fsid.val[1], handle_bytes, handle_type
_PIDFD: Final = struct.Struct("=i")
_ERROR: Final = struct.Struct("=iI")
_RANGE: Final = struct.Struct("=IQQ")
_RESPONSE: Final = struct.Struct("=iI")
_AUDIT_RULE: Final = struct.Struct("=BBHIII")
_FILE_HANDLE_HEAD: Final = struct.Struct("=Ii")

_RESPONSE_INFO_AUDIT_RULE: Final = 1  # FAN_RESPONSE_INFO_AUDIT_RULE
_ERRNO_SHIFT: Final = 24  # FAN_ERRNO_SHIFT
_ERRNO_MASK: Final = 0xFF  # FAN_ERRNO_MASK
_VERDICT: Final = FanResponse.ALLOW | FanResponse.DENY

_FID_TYPES: Final = frozenset(
    {
        FanInfoType.FID,
        FanInfoType.DFID_NAME,
        FanInfoType.DFID,
        FanInfoType.OLD_DFID_NAME,
        FanInfoType.NEW_DFID_NAME,
    }
)
_KNOWN_TYPES: Final = frozenset(int(info_type) for info_type in FanInfoType)
_NAMED_FID_TYPES: Final = frozenset(
    {FanInfoType.DFID_NAME, FanInfoType.OLD_DFID_NAME, FanInfoType.NEW_DFID_NAME}
)


@dataclass(frozen=True, slots=True)
class FidRecord:
    """A file identifier: which filesystem (``fsid``) and which object on it (an opaque
    ``struct file_handle`` that ``open_by_handle_at(2)`` accepts).

    ``info_type`` says whose identifier it is: FID the object itself, DFID / DFID_NAME its
    directory (plus the entry ``name``), OLD_/NEW_DFID_NAME the two sides of a FAN_RENAME.
    ``name`` is decoded like ``os.fsdecode`` (``os.fsencode`` gives the exact bytes back).
    """

    info_type: FanInfoType
    fsid: tuple[int, int]
    handle_type: int
    handle: bytes
    name: str | None = None

    def file_handle(self) -> bytes:
        """The handle as ``struct file_handle`` bytes, ready for ``open_by_handle_at(2)``."""
        return _FILE_HANDLE_HEAD.pack(len(self.handle), self.handle_type) + self.handle


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """FAN_FS_ERROR's record: the first error's errno and how many errors were merged into it."""

    error: int
    error_count: int


@dataclass(frozen=True, slots=True)
class RangeRecord:
    """FAN_PRE_ACCESS's record: the byte range about to be accessed (page granular in practice)."""

    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class RawInfoRecord:
    """An info record this parser does not interpret: its type and the bytes after the header."""

    info_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FanotifyEvent:
    """One event as the kernel reported it.

    ``fd`` is an open file descriptor for the object (``FAN_NOFD`` when there is none, or a
    negative errno with FAN_REPORT_FD_ERROR) and ``pid`` the requesting process (its thread id
    with FAN_REPORT_TID; 0 when the group may not see it). ``pidfd`` is ``None`` when the event
    had no pidfd record, else the record's value: a pidfd, ``FAN_NOPIDFD`` or ``FAN_EPIDFD``.
    Non-negative ``fd`` and ``pidfd`` belong to the reader, which must close them.
    """

    mask: FanMask
    fd: int
    pid: int
    pidfd: int | None = None
    fids: tuple[FidRecord, ...] = ()
    error: ErrorRecord | None = None
    file_range: RangeRecord | None = None
    unknown: tuple[RawInfoRecord, ...] = ()

    @property
    def is_permission(self) -> bool:
        """The requester is blocked until this event is answered."""
        return bool(self.mask & PERMISSION_EVENTS)

    @property
    def is_overflow(self) -> bool:
        """The queue overflowed: events were dropped (permission events were *allowed* unasked)."""
        return bool(self.mask & FanMask.Q_OVERFLOW)

    @property
    def fid(self) -> FidRecord | None:
        """The object's own identifier (FAN_REPORT_FID), if reported."""
        return self._fid_of(FanInfoType.FID)

    @property
    def dfid(self) -> FidRecord | None:
        """The parent directory's identifier (FAN_REPORT_DIR_FID), with or without a name."""
        return self._fid_of(FanInfoType.DFID_NAME) or self._fid_of(FanInfoType.DFID)

    @property
    def name(self) -> str | None:
        """The directory entry's name (FAN_REPORT_NAME), if reported."""
        dfid = self._fid_of(FanInfoType.DFID_NAME)
        return None if dfid is None else dfid.name

    def _fid_of(self, info_type: FanInfoType) -> FidRecord | None:
        for record in self.fids:
            if record.info_type == info_type:
                return record
        return None


@dataclass(frozen=True, slots=True)
class AuditRule:
    """The FAN_INFO record fapolicyd sends: which rule decided, and how trusted subject and object
    were. The kernel copies it into the AUDIT_FANOTIFY record (``fan_info=`` in hex)."""

    rule_number: int
    subj_trust: AuditTrust = AuditTrust.UNKNOWN
    obj_trust: AuditTrust = AuditTrust.UNKNOWN


def parse_events(data: bytes | bytearray | memoryview) -> list[FanotifyEvent]:
    """Parse every event in one ``read()`` of a fanotify group fd.

    The kernel only returns whole events, so any trailing partial event, any ``event_len`` or
    info ``len`` that does not fit, and any metadata version other than
    :data:`FANOTIFY_METADATA_VERSION` raise :class:`~sessionio.errors.MalformedEventError`.
    """
    buf = bytes(data)
    end = len(buf)
    events: list[FanotifyEvent] = []
    offset = 0
    while offset < end:
        remaining = end - offset
        if remaining < FAN_EVENT_METADATA_LEN:
            raise MalformedEventError(
                f"fanotify event at offset {offset} is truncated: {remaining} bytes, "
                f"the metadata alone is {FAN_EVENT_METADATA_LEN}"
            )
        event_len, vers, _reserved, metadata_len, mask, fd, pid = _METADATA.unpack_from(buf, offset)
        if vers != FANOTIFY_METADATA_VERSION:
            raise MalformedEventError(
                f"fanotify metadata version {vers} at offset {offset} is not supported "
                f"(this parser reads version {FANOTIFY_METADATA_VERSION})"
            )
        if metadata_len < FAN_EVENT_METADATA_LEN:
            raise MalformedEventError(
                f"fanotify event at offset {offset}: metadata_len {metadata_len} is shorter "
                f"than the {FAN_EVENT_METADATA_LEN}-byte metadata"
            )
        if event_len < metadata_len or event_len > remaining:
            raise MalformedEventError(
                f"fanotify event at offset {offset}: event_len {event_len} is inconsistent "
                f"(metadata_len {metadata_len}, {remaining} bytes left)"
            )
        events.append(
            _parse_info_records(buf, offset + metadata_len, offset + event_len, mask, fd, pid)
        )
        offset += event_len
    return events


def _parse_info_records(
    buf: bytes, pos: int, end: int, mask: int, fd: int, pid: int
) -> FanotifyEvent:
    pidfd: int | None = None
    fids: list[FidRecord] = []
    error: ErrorRecord | None = None
    file_range: RangeRecord | None = None
    unknown: list[RawInfoRecord] = []
    seen: set[int] = set()
    while pos < end:
        if end - pos < _INFO_HEADER.size:
            raise MalformedEventError(
                f"fanotify info record at offset {pos} is truncated: {end - pos} bytes left "
                f"in the event, the header alone is {_INFO_HEADER.size}"
            )
        info_type, _pad, length = _INFO_HEADER.unpack_from(buf, pos)
        if length < _INFO_HEADER.size or length > end - pos:
            raise MalformedEventError(
                f"fanotify info record of type {info_type} at offset {pos}: len {length} is "
                f"inconsistent ({end - pos} bytes left in the event)"
            )
        body = pos + _INFO_HEADER.size
        record_end = pos + length
        if info_type in _KNOWN_TYPES:
            if info_type in seen:
                raise MalformedEventError(
                    f"fanotify event carries two info records of type {info_type}"
                )
            seen.add(info_type)
        if info_type == FanInfoType.PIDFD:
            pidfd = _unpack_fixed(_PIDFD, buf, body, record_end, "pidfd")[0]
        elif info_type in _FID_TYPES:
            fids.append(_parse_fid(FanInfoType(info_type), buf, body, record_end))
        elif info_type == FanInfoType.ERROR:
            err, count = _unpack_fixed(_ERROR, buf, body, record_end, "error")
            error = ErrorRecord(err, count)
        elif info_type == FanInfoType.RANGE:
            _range_pad, range_offset, range_count = _unpack_fixed(
                _RANGE, buf, body, record_end, "range"
            )
            file_range = RangeRecord(range_offset, range_count)
        else:
            unknown.append(RawInfoRecord(info_type, buf[body:record_end]))
        pos = record_end
    return FanotifyEvent(
        mask=FanMask(mask),
        fd=fd,
        pid=pid,
        pidfd=pidfd,
        fids=tuple(fids),
        error=error,
        file_range=file_range,
        unknown=tuple(unknown),
    )


def _unpack_fixed(
    layout: struct.Struct, buf: bytes, body: int, record_end: int, what: str
) -> tuple[int, ...]:
    if record_end - body < layout.size:
        raise MalformedEventError(
            f"fanotify {what} record is truncated: {record_end - body} bytes after the header, "
            f"it needs {layout.size}"
        )
    values: tuple[int, ...] = layout.unpack_from(buf, body)
    return values


def _parse_fid(info_type: FanInfoType, buf: bytes, body: int, record_end: int) -> FidRecord:
    fsid0, fsid1, handle_bytes, handle_type = _unpack_fixed(
        _FID_HEAD, buf, body, record_end, info_type.name.lower()
    )
    handle_start = body + _FID_HEAD.size
    handle_end = handle_start + handle_bytes
    if handle_end > record_end:
        raise MalformedEventError(
            f"fanotify {info_type.name.lower()} record: handle_bytes {handle_bytes} runs past "
            f"the record ({record_end - handle_start} bytes left)"
        )
    name: str | None = None
    if info_type in _NAMED_FID_TYPES:
        nul = buf.find(b"\0", handle_end, record_end)
        if nul < 0:
            raise MalformedEventError(
                f"fanotify {info_type.name.lower()} record: the name is not NUL-terminated"
            )
        name = os.fsdecode(buf[handle_end:nul])
    return FidRecord(
        info_type=info_type,
        fsid=(fsid0, fsid1),
        handle_type=handle_type,
        handle=buf[handle_start:handle_end],
        name=name,
    )


def encode_response(fd: int, response: int) -> bytes:
    """``struct fanotify_response`` answering the permission event whose ``fd`` was reported.

    ``response`` holds exactly one of FAN_ALLOW and FAN_DENY, optionally with FAN_AUDIT and
    FAN_INFO. With FAN_INFO the info record (:func:`encode_audit_rule`) must be appended and
    both written in *one* ``write()``: the kernel reads them together.
    """
    if not -(2**31) <= fd < 2**31:
        raise UsageError(f"fanotify response: fd {fd} does not fit a s32")
    if not 0 <= response < 2**32:
        raise UsageError(f"fanotify response: {response:#x} does not fit a u32")
    verdict = response & _VERDICT
    if verdict not in (FanResponse.ALLOW, FanResponse.DENY):
        raise UsageError(
            f"fanotify response {response:#x} must hold exactly one of FAN_ALLOW and FAN_DENY"
        )
    return _RESPONSE.pack(fd, response)


def encode_audit_rule(rule: AuditRule) -> bytes:
    """``struct fanotify_response_info_audit_rule``, to follow a response that has FAN_INFO."""
    for field, value in (
        ("rule_number", rule.rule_number),
        ("subj_trust", rule.subj_trust),
        ("obj_trust", rule.obj_trust),
    ):
        if not 0 <= value < 2**32:
            raise UsageError(f"fanotify audit rule: {field} {value} does not fit a u32")
    return _AUDIT_RULE.pack(
        _RESPONSE_INFO_AUDIT_RULE,
        0,
        _AUDIT_RULE.size,
        rule.rule_number,
        rule.subj_trust,
        rule.obj_trust,
    )


def deny_errno_response(err: int) -> int:
    """FAN_DENY_ERRNO(err): a deny whose requester fails with ``err`` instead of EPERM.

    Only FAN_CLASS_PRE_CONTENT groups may send it, and the kernel accepts only EPERM, EIO, EBUSY,
    ETXTBSY, EAGAIN, ENOSPC and EDQUOT; anything else is refused by the ``write()``.
    """
    if not 0 < err <= _ERRNO_MASK:
        raise UsageError(f"FAN_DENY_ERRNO: errno {err} does not fit the response's top byte")
    return int(FanResponse.DENY) | (err << _ERRNO_SHIFT)
