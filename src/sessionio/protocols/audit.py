"""The audit netlink protocol (linux/audit.h, kernel/audit.c), without a socket.

Two things travel on ``NETLINK_AUDIT``:

- **control messages** (``AUDIT_GET`` / ``AUDIT_SET``) whose payload is the binary
  ``struct audit_status``; see :class:`AuditStatus`, :func:`encode_get_request` and
  :func:`encode_set_request`;
- **records**, one per netlink message, whose type is the record type (``AUDIT_LOGIN``,
  ``AUDIT_SYSCALL``, ...) and whose payload is text: ``audit(SECONDS.MILLIS:SERIAL): key=value
  ...``. All records of one event share the ``audit(...)`` stamp and the last is ``AUDIT_EOE``.
  See :class:`AuditRecord` and :func:`parse_datagram`.

sessionio reads records for one reason: ``AUDIT_LOGIN`` (type 1006) is the kernel's own notice
that a process set its loginuid and thereby started a new audit session (pam_loginuid does this
at every login). :class:`AuditLogin` is its typed form.

**Unset ids.** The kernel writes an unset loginuid (auid) or session id (ses) as 4294967295,
``(u32)-1``, :data:`AUDIT_ID_UNSET`. The typed values keep that raw number, so that nothing is lost
and the value matches ``/proc/PID/sessionid``; :func:`known_id` turns it into ``None`` for Python
code. The Windows surface spells "no session" as -1 (``NO_SESSION``): that is the model's
mapping of ``None``, not this module's.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import Final

from sessionio.errors import MalformedEventError
from sessionio.model.ids import Pid
from sessionio.protocols.netlink import (
    NLMSG_MIN_TYPE,
    NetlinkAck,
    NlmFlag,
    encode_message,
    parse_messages,
)

__all__ = [
    "AUDIT_ID_UNSET",
    "AUDIT_NLGRP_READLOG",
    "AuditEnabled",
    "AuditLogin",
    "AuditMessageType",
    "AuditRecord",
    "AuditStamp",
    "AuditStatus",
    "AuditStatusMask",
    "decode_status",
    "encode_get_request",
    "encode_set_request",
    "encode_status",
    "known_id",
    "parse_datagram",
    "parse_login",
    "parse_record",
    "parse_record_line",
]

AUDIT_ID_UNSET: Final = 4294967295
"""AUDIT_UID_UNSET / AUDIT_SID_UNSET: how the kernel writes an unset loginuid or session id."""

AUDIT_NLGRP_READLOG = 1
"""AUDIT_NLGRP_READLOG: the read-only multicast group of audit records (needs CAP_AUDIT_READ)."""


class AuditMessageType(enum.IntEnum):
    """Audit netlink message types (``AUDIT_*`` in linux/audit.h), prefix dropped.

    1000-1099 are control requests; 1100-1199 and 2100-2999 are userspace messages; the rest are
    kernel records. Records of a type missing here still parse: :attr:`AuditRecord.type` is then a
    plain ``int``.
    """

    GET = 1000
    """AUDIT_GET: get the status (answered with an AUDIT_GET message holding audit_status)."""
    SET = 1001
    """AUDIT_SET: set the status fields named in ``mask``."""
    LIST = 1002
    """AUDIT_LIST: list syscall rules (deprecated)."""
    ADD = 1003
    """AUDIT_ADD: add a syscall rule (deprecated)."""
    DEL = 1004
    """AUDIT_DEL: delete a syscall rule (deprecated)."""
    USER = 1005
    """AUDIT_USER: a message from userspace (deprecated)."""
    LOGIN = 1006
    """AUDIT_LOGIN: a process set its loginuid; the record names the new audit session."""
    WATCH_INS = 1007
    """AUDIT_WATCH_INS."""
    WATCH_REM = 1008
    """AUDIT_WATCH_REM."""
    WATCH_LIST = 1009
    """AUDIT_WATCH_LIST."""
    SIGNAL_INFO = 1010
    """AUDIT_SIGNAL_INFO: who signalled auditd."""
    ADD_RULE = 1011
    """AUDIT_ADD_RULE."""
    DEL_RULE = 1012
    """AUDIT_DEL_RULE."""
    LIST_RULES = 1013
    """AUDIT_LIST_RULES."""
    TRIM = 1014
    """AUDIT_TRIM."""
    MAKE_EQUIV = 1015
    """AUDIT_MAKE_EQUIV."""
    TTY_GET = 1016
    """AUDIT_TTY_GET."""
    TTY_SET = 1017
    """AUDIT_TTY_SET."""
    SET_FEATURE = 1018
    """AUDIT_SET_FEATURE."""
    GET_FEATURE = 1019
    """AUDIT_GET_FEATURE."""
    USER_AVC = 1107
    """AUDIT_USER_AVC: userspace AVC message."""
    USER_TTY = 1124
    """AUDIT_USER_TTY: non-ICANON TTY input."""
    DAEMON_START = 1200
    """AUDIT_DAEMON_START."""
    DAEMON_END = 1201
    """AUDIT_DAEMON_END."""
    DAEMON_ABORT = 1202
    """AUDIT_DAEMON_ABORT."""
    DAEMON_CONFIG = 1203
    """AUDIT_DAEMON_CONFIG."""
    SYSCALL = 1300
    """AUDIT_SYSCALL: the syscall record of an event (carries ``auid`` and ``ses``)."""
    PATH = 1302
    """AUDIT_PATH."""
    IPC = 1303
    """AUDIT_IPC."""
    SOCKETCALL = 1304
    """AUDIT_SOCKETCALL."""
    CONFIG_CHANGE = 1305
    """AUDIT_CONFIG_CHANGE: e.g. ``op=set audit_enabled=1 old=0``."""
    SOCKADDR = 1306
    """AUDIT_SOCKADDR."""
    CWD = 1307
    """AUDIT_CWD."""
    EXECVE = 1309
    """AUDIT_EXECVE."""
    IPC_SET_PERM = 1311
    """AUDIT_IPC_SET_PERM."""
    MQ_OPEN = 1312
    """AUDIT_MQ_OPEN."""
    MQ_SENDRECV = 1313
    """AUDIT_MQ_SENDRECV."""
    MQ_NOTIFY = 1314
    """AUDIT_MQ_NOTIFY."""
    MQ_GETSETATTR = 1315
    """AUDIT_MQ_GETSETATTR."""
    KERNEL_OTHER = 1316
    """AUDIT_KERNEL_OTHER."""
    FD_PAIR = 1317
    """AUDIT_FD_PAIR."""
    OBJ_PID = 1318
    """AUDIT_OBJ_PID."""
    TTY = 1319
    """AUDIT_TTY."""
    EOE = 1320
    """AUDIT_EOE: end of a multi-record event."""
    BPRM_FCAPS = 1321
    """AUDIT_BPRM_FCAPS."""
    CAPSET = 1322
    """AUDIT_CAPSET."""
    MMAP = 1323
    """AUDIT_MMAP."""
    NETFILTER_PKT = 1324
    """AUDIT_NETFILTER_PKT."""
    NETFILTER_CFG = 1325
    """AUDIT_NETFILTER_CFG."""
    SECCOMP = 1326
    """AUDIT_SECCOMP."""
    PROCTITLE = 1327
    """AUDIT_PROCTITLE."""
    FEATURE_CHANGE = 1328
    """AUDIT_FEATURE_CHANGE."""
    REPLACE = 1329
    """AUDIT_REPLACE."""
    KERN_MODULE = 1330
    """AUDIT_KERN_MODULE."""
    FANOTIFY = 1331
    """AUDIT_FANOTIFY: a fanotify permission decision (FAN_ENABLE_AUDIT)."""
    TIME_INJOFFSET = 1332
    """AUDIT_TIME_INJOFFSET."""
    TIME_ADJNTPVAL = 1333
    """AUDIT_TIME_ADJNTPVAL."""
    BPF = 1334
    """AUDIT_BPF."""
    EVENT_LISTENER = 1335
    """AUDIT_EVENT_LISTENER: a task joined or left the multicast read group."""
    URINGOP = 1336
    """AUDIT_URINGOP."""
    OPENAT2 = 1337
    """AUDIT_OPENAT2."""
    DM_CTRL = 1338
    """AUDIT_DM_CTRL."""
    DM_EVENT = 1339
    """AUDIT_DM_EVENT."""
    AVC = 1400
    """AUDIT_AVC: SELinux AVC denial or grant."""
    SELINUX_ERR = 1401
    """AUDIT_SELINUX_ERR."""
    AVC_PATH = 1402
    """AUDIT_AVC_PATH."""
    MAC_POLICY_LOAD = 1403
    """AUDIT_MAC_POLICY_LOAD."""
    MAC_STATUS = 1404
    """AUDIT_MAC_STATUS."""
    MAC_CONFIG_CHANGE = 1405
    """AUDIT_MAC_CONFIG_CHANGE."""
    ANOM_PROMISCUOUS = 1700
    """AUDIT_ANOM_PROMISCUOUS."""
    ANOM_ABEND = 1701
    """AUDIT_ANOM_ABEND: a process ended abnormally."""
    ANOM_LINK = 1702
    """AUDIT_ANOM_LINK."""
    ANOM_CREAT = 1703
    """AUDIT_ANOM_CREAT."""
    INTEGRITY_DATA = 1800
    """AUDIT_INTEGRITY_DATA."""
    INTEGRITY_METADATA = 1801
    """AUDIT_INTEGRITY_METADATA."""
    INTEGRITY_STATUS = 1802
    """AUDIT_INTEGRITY_STATUS."""
    INTEGRITY_HASH = 1803
    """AUDIT_INTEGRITY_HASH."""
    INTEGRITY_PCR = 1804
    """AUDIT_INTEGRITY_PCR."""
    INTEGRITY_RULE = 1805
    """AUDIT_INTEGRITY_RULE."""
    INTEGRITY_EVM_XATTR = 1806
    """AUDIT_INTEGRITY_EVM_XATTR."""
    INTEGRITY_POLICY_RULE = 1807
    """AUDIT_INTEGRITY_POLICY_RULE."""
    KERNEL = 2000
    """AUDIT_KERNEL: asynchronous audit record (``audit_initialized``)."""


class AuditEnabled(enum.IntEnum):
    """The values of ``audit_status.enabled`` (``AUDIT_OFF``, ``AUDIT_ON``, ``AUDIT_LOCKED``)."""

    OFF = 0
    """AUDIT_OFF: no records for most events (AUDIT_LOGIN included); the machine default."""
    ON = 1
    """AUDIT_ON."""
    LOCKED = 2
    """AUDIT_LOCKED: on, and the configuration can no longer change until reboot."""


class AuditStatusMask(enum.IntFlag):
    """``audit_status.mask``: which fields an AUDIT_SET changes (``AUDIT_STATUS_*``)."""

    ENABLED = 0x0001
    """AUDIT_STATUS_ENABLED."""
    FAILURE = 0x0002
    """AUDIT_STATUS_FAILURE."""
    PID = 0x0004
    """AUDIT_STATUS_PID: register (or unregister, with 0) the audit daemon."""
    RATE_LIMIT = 0x0008
    """AUDIT_STATUS_RATE_LIMIT."""
    BACKLOG_LIMIT = 0x0010
    """AUDIT_STATUS_BACKLOG_LIMIT."""
    BACKLOG_WAIT_TIME = 0x0020
    """AUDIT_STATUS_BACKLOG_WAIT_TIME."""
    LOST = 0x0040
    """AUDIT_STATUS_LOST: reset the lost counter."""
    BACKLOG_WAIT_TIME_ACTUAL = 0x0080
    """AUDIT_STATUS_BACKLOG_WAIT_TIME_ACTUAL: reset it."""


_NO_FIELDS: Final = AuditStatusMask(0)


@dataclass(frozen=True, slots=True)
class AuditStatus:
    """``struct audit_status``, the payload of AUDIT_GET replies and AUDIT_SET requests.

    The struct grew over the years: 32 bytes (8 fields) originally, then ``feature_bitmap`` (the
    union with the deprecated ``version``, Linux 3.12), ``backlog_wait_time`` (3.14) and
    ``backlog_wait_time_actual`` (5.10). A field the answering kernel did not send is ``None``.
    ``enabled`` is an :class:`AuditEnabled` value (kept as ``int`` to survive new values).
    """

    mask: AuditStatusMask = _NO_FIELDS
    enabled: int = 0
    failure: int = 0
    pid: int = 0
    rate_limit: int = 0
    backlog_limit: int = 0
    lost: int = 0
    backlog: int = 0
    feature_bitmap: int | None = None
    backlog_wait_time: int | None = None
    backlog_wait_time_actual: int | None = None


_STATUS_FIELD = struct.Struct("=I")
_STATUS_BASE_FIELDS = 8
_STATUS_FIELDS = 11
_STATUS_MIN_SIZE = _STATUS_BASE_FIELDS * _STATUS_FIELD.size
_STATUS_SIZE = _STATUS_FIELDS * _STATUS_FIELD.size


def decode_status(payload: bytes) -> AuditStatus:
    """Decode ``struct audit_status`` from any kernel since 2.6 (at least 32 bytes).

    Bytes past the 11 fields known here (a future kernel's additions) are ignored.
    """
    if len(payload) < _STATUS_MIN_SIZE:
        raise MalformedEventError(
            f"audit_status is {len(payload)} bytes, shorter than the oldest layout "
            f"({_STATUS_MIN_SIZE})"
        )
    count = min(len(payload) // _STATUS_FIELD.size, _STATUS_FIELDS)
    values = struct.unpack_from(f"={count}I", payload)
    optional: list[int | None] = [*values[_STATUS_BASE_FIELDS:]]
    optional += [None] * (_STATUS_FIELDS - count)
    mask, enabled, failure, pid, rate_limit, backlog_limit, lost, backlog = values[:8]
    return AuditStatus(
        AuditStatusMask(mask),
        enabled,
        failure,
        pid,
        rate_limit,
        backlog_limit,
        lost,
        backlog,
        *optional,
    )


def encode_status(status: AuditStatus) -> bytes:
    """Encode the full current (44-byte) ``struct audit_status``; ``None`` fields are sent as 0.

    The kernel reads only the fields named in ``mask`` and accepts shorter structs, so the zeros
    change nothing.
    """
    return struct.pack(
        f"={_STATUS_FIELDS}I",
        status.mask,
        status.enabled,
        status.failure,
        status.pid,
        status.rate_limit,
        status.backlog_limit,
        status.lost,
        status.backlog,
        status.feature_bitmap or 0,
        status.backlog_wait_time or 0,
        status.backlog_wait_time_actual or 0,
    )


def encode_get_request(seq: int) -> bytes:
    """AUDIT_GET. The kernel answers with an AUDIT_GET message carrying ``seq`` and the status,
    or with an NLMSG_ERROR (EPERM without CAP_AUDIT_CONTROL). No ACK is requested: the reply is
    sent from a kernel thread and could arrive after the ACK, and errors are answered anyway.
    """
    return encode_message(AuditMessageType.GET, NlmFlag.REQUEST, seq, 0, b"")


def encode_set_request(seq: int, status: AuditStatus) -> bytes:
    """AUDIT_SET with an ACK requested: the kernel answers only with NLMSG_ERROR (errno 0 on
    success), carrying ``seq`` in its ``request`` header.
    """
    return encode_message(
        AuditMessageType.SET, NlmFlag.REQUEST | NlmFlag.ACK, seq, 0, encode_status(status)
    )


def known_id(value: int) -> int | None:
    """``None`` for the unset id (4294967295), else the id: loginuids and audit session ids."""
    return None if value == AUDIT_ID_UNSET else value


@dataclass(frozen=True, slots=True)
class AuditStamp:
    """The ``audit(SECONDS.MILLIS:SERIAL)`` stamp. Records with equal stamps form one event.

    ``seconds`` and ``milliseconds`` are wall-clock (CLOCK_REALTIME) time; ``serial`` counts
    events since boot. Serials repeat across reboots, so pair them with the boot id.
    """

    seconds: int
    milliseconds: int
    serial: int

    def __str__(self) -> str:
        return f"audit({self.seconds}.{self.milliseconds:03d}:{self.serial})"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit record: its type, stamp and ``key=value`` fields, in the kernel's order.

    ``type`` is an :class:`AuditMessageType` when the type is known, else the plain number.
    Field values are as written, minus surrounding double or single quotes: values the kernel
    hex-encodes (untrusted strings with spaces or quotes) stay hex. Words without ``=`` are not
    fields and appear only in ``text``, the record body after the stamp.
    """

    type: int
    stamp: AuditStamp
    fields: tuple[tuple[str, str], ...]
    text: str

    def get(self, key: str) -> str | None:
        """The first value of field ``key``, or ``None``."""
        for name, value in self.fields:
            if name == key:
                return value
        return None


_STAMP = re.compile(r"audit\(([0-9]+)\.([0-9]+):([0-9]+)\):[ ]?")
_LINE_PREFIX = re.compile(r"(?:audit:[ ]+)?type=([A-Za-z0-9_]+)[ ]+(?:msg=)?")
_FIELD = re.compile(
    r"""
    (?P<key>[^\s=]+)=
    (?: "(?P<dq>[^"]*)(?:"|$)
      | '(?P<sq>[^']*)(?:'|$)
      | (?P<bare>\S*)
    )
    """,
    re.VERBOSE,
)


def _record_type(value: int) -> int:
    try:
        return AuditMessageType(value)
    except ValueError:
        return value


def _parse_fields(body: str) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    position = 0
    while position < len(body):
        if body[position].isspace():
            position += 1
            continue
        match = _FIELD.match(body, position)
        if match is None:
            # A word without "=": free text, not a field.
            end = position
            while end < len(body) and not body[end].isspace():
                end += 1
            position = end
            continue
        value = match.group("dq")
        if value is None:
            value = match.group("sq")
        if value is None:
            value = match.group("bare")
        fields.append((match.group("key"), value))
        position = match.end()
    return tuple(fields)


def parse_record(type: int, payload: bytes) -> AuditRecord:
    """Parse a record as received from netlink: its message type and its text payload.

    Trailing NULs and newlines are dropped. A value whose closing quote is missing (a record the
    kernel truncated) runs to the end of the text. Raises
    :class:`~sessionio.errors.MalformedEventError` when the ``audit(...)`` stamp is missing.
    """
    text = payload.rstrip(b"\0\n").decode("utf-8", "surrogateescape")
    match = _STAMP.match(text)
    if match is None:
        raise MalformedEventError(
            f"audit record of type {type} does not start with an audit(...) stamp: {text[:60]!r}"
        )
    stamp = AuditStamp(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    body = text[match.end() :]
    return AuditRecord(_record_type(type), stamp, _parse_fields(body), body)


def parse_record_line(line: str) -> AuditRecord:
    """Parse a record written as text with its type: a kernel log line
    (``audit: type=1006 audit(...): ...``, the ``audit:`` prefix optional) or an auditd log line
    (``type=LOGIN msg=audit(...): ...``).
    """
    line = line.strip()
    prefix = _LINE_PREFIX.match(line)
    if prefix is None:
        raise MalformedEventError(f"audit line does not start with type=: {line[:60]!r}")
    name = prefix.group(1)
    if name.isdigit():
        record_type = int(name)
    elif name in AuditMessageType.__members__:
        record_type = AuditMessageType[name]
    else:
        raise MalformedEventError(f"unknown audit record type {name!r}")
    return parse_record(record_type, line[prefix.end() :].encode("utf-8", "surrogateescape"))


def parse_datagram(data: bytes) -> list[AuditRecord]:
    """Decode one datagram from the audit multicast group into its records.

    The group carries only records; a control message (NLMSG_ERROR, NLMSG_DONE, or a type below
    ``NLMSG_MIN_TYPE``) raises :class:`~sessionio.errors.MalformedEventError`.
    """
    records: list[AuditRecord] = []
    for item in parse_messages(data):
        if isinstance(item, NetlinkAck):
            raise MalformedEventError(f"unexpected NLMSG_ERROR (errno {item.errno}) from audit")
        if item.type < NLMSG_MIN_TYPE:
            raise MalformedEventError(f"unexpected netlink control type {item.type} from audit")
        records.append(parse_record(item.type, item.payload))
    return records


@dataclass(frozen=True, slots=True)
class AuditLogin:
    """AUDIT_LOGIN: process ``pid`` changed its loginuid from ``old_auid`` to ``auid``, which moved
    it from audit session ``old_ses`` to the new session ``ses``.

    Kernel format: ``pid=%d uid=%u [subj=%s] old-auid=%u auid=%u tty=%s old-ses=%u ses=%u
    res=%d``. Ids are raw: 4294967295 (:data:`AUDIT_ID_UNSET`) means unset, see :func:`known_id`
    and the properties below. ``tty`` is ``None`` for the kernel's ``(none)``. ``res`` is 1 when
    the change succeeded, 0 when it was refused (then ``ses`` is unchanged). ``subj`` is the LSM
    label, when an LSM is active.
    """

    stamp: AuditStamp
    pid: Pid
    uid: int
    old_auid: int
    auid: int
    tty: str | None
    old_ses: int
    ses: int
    res: int
    subj: str | None = None

    @property
    def success(self) -> bool:
        """True when the kernel accepted the new loginuid."""
        return self.res == 1

    @property
    def session_id(self) -> int | None:
        """The new audit session, ``None`` when unset (the loginuid was reset to unset)."""
        return known_id(self.ses)

    @property
    def old_session_id(self) -> int | None:
        """The previous audit session, ``None`` when the process had none."""
        return known_id(self.old_ses)

    @property
    def login_uid(self) -> int | None:
        """The new loginuid, ``None`` when it was reset to unset."""
        return known_id(self.auid)

    @property
    def old_login_uid(self) -> int | None:
        """The previous loginuid, ``None`` when it was unset."""
        return known_id(self.old_auid)


_DECIMAL = re.compile(r"-?[0-9]+")
_U32_MAX = 0xFFFFFFFF
_I32_MIN = -(2**31)


def _number(record: AuditRecord, key: str, *, signed: bool) -> int:
    raw = record.get(key)
    if raw is None:
        raise MalformedEventError(f"AUDIT_LOGIN record lacks {key}=: {record.text[:80]!r}")
    if _DECIMAL.fullmatch(raw) is None:
        raise MalformedEventError(f"AUDIT_LOGIN field {key}={raw!r} is not a number")
    value = int(raw)
    low, high = (_I32_MIN, _U32_MAX // 2) if signed else (0, _U32_MAX)
    if not low <= value <= high:
        raise MalformedEventError(f"AUDIT_LOGIN field {key}={raw} is out of range")
    return value


def parse_login(record: AuditRecord) -> AuditLogin:
    """Type an AUDIT_LOGIN record, in the normalized ``key=value`` format of current kernels.

    Raises :class:`~sessionio.errors.MalformedEventError` when the record is of another type or
    lacks a field (very old kernels wrote ``old auid=`` with spaces; those records do not type).
    """
    if record.type != AuditMessageType.LOGIN:
        raise MalformedEventError(f"record type {record.type} is not AUDIT_LOGIN (1006)")
    tty = record.get("tty")
    return AuditLogin(
        stamp=record.stamp,
        pid=Pid(_number(record, "pid", signed=True)),
        uid=_number(record, "uid", signed=False),
        old_auid=_number(record, "old-auid", signed=False),
        auid=_number(record, "auid", signed=False),
        tty=None if tty in (None, "(none)") else tty,
        old_ses=_number(record, "old-ses", signed=False),
        ses=_number(record, "ses", signed=False),
        res=_number(record, "res", signed=True),
        subj=record.get("subj"),
    )
