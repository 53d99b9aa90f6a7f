"""Netlink framing: ``struct nlmsghdr`` (linux/netlink.h), without a socket.

One netlink datagram carries one or more messages, each a 16-byte header
``{u32 len; u16 type; u16 flags; u32 seq; u32 pid}`` followed by its payload, the next message
starting at ``NLMSG_ALIGN(len)``. Every netlink user in sessionio (the proc connector, the audit
multicast group, the audit control channel) sends and receives this framing; it lives here once,
and the protocols above it only interpret payloads.

The four reserved control types below ``NLMSG_MIN_TYPE`` are handled by :func:`parse_messages`:

- ``NLMSG_NOOP`` carries nothing and is dropped;
- ``NLMSG_ERROR`` is decoded into a :class:`NetlinkAck` whose ``errno`` is the positive errno the
  kernel reported (0 is a plain acknowledgement: the kernel's own name for both is "ack");
- ``NLMSG_DONE`` is returned as a :class:`NetlinkMessage`: it ends a multipart dump, but it also
  carries real payloads (the proc connector sends every event as an ``NLMSG_DONE`` message);
- ``NLMSG_OVERRUN`` is returned as a :class:`NetlinkMessage` of that type. No kernel code sends it
  (the kernel reports lost messages as ``ENOBUFS`` from ``recv``), so the protocols above treat it
  as unexpected.

Everything is native byte order, as the kernel writes it: netlink never leaves the machine.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from sessionio.errors import MalformedEventError

__all__ = [
    "NLMSG_ALIGNTO",
    "NLMSG_HDRLEN",
    "NLMSG_MIN_TYPE",
    "NetlinkAck",
    "NetlinkHeader",
    "NetlinkMessage",
    "NetlinkProtocol",
    "NlmFlag",
    "NlmsgType",
    "encode_message",
    "nlmsg_align",
    "parse_messages",
]

NLMSG_ALIGNTO = 4
"""NLMSG_ALIGNTO: messages in a datagram start on 4-byte boundaries."""

_HEADER = struct.Struct("=IHHII")
NLMSG_HDRLEN = _HEADER.size
"""NLMSG_HDRLEN: the size of ``struct nlmsghdr`` (16), already aligned."""

NLMSG_MIN_TYPE = 0x10
"""NLMSG_MIN_TYPE: types below it are netlink's own control messages."""

_ERRNO = struct.Struct("=i")
_U32_MAX = 0xFFFFFFFF
_U16_MAX = 0xFFFF


class NetlinkProtocol(enum.IntEnum):
    """The netlink families sessionio opens (the ``NETLINK_*`` protocol numbers of socket(2)).

    Python's :mod:`socket` does not export these two, so they are named here.
    """

    AUDIT = 9
    """NETLINK_AUDIT: audit control (unicast) and the read-only record multicast group."""
    CONNECTOR = 11
    """NETLINK_CONNECTOR: the kernel connector, which carries the proc connector."""


class NlmsgType(enum.IntEnum):
    """The reserved control message types (``NLMSG_*``)."""

    NOOP = 0x1
    """NLMSG_NOOP: nothing; dropped by the parser."""
    ERROR = 0x2
    """NLMSG_ERROR: an error or, with errno 0, an acknowledgement."""
    DONE = 0x3
    """NLMSG_DONE: end of a dump; also the type of every connector message."""
    OVERRUN = 0x4
    """NLMSG_OVERRUN: data lost (defined, but sent by no kernel code)."""


class NlmFlag(enum.IntFlag):
    """The generic header flags (``NLM_F_*``); the per-request modifiers above 0x80 overlap."""

    REQUEST = 0x01
    """NLM_F_REQUEST: a request (every message userspace sends to the kernel)."""
    MULTI = 0x02
    """NLM_F_MULTI: part of a multipart answer ended by NLMSG_DONE."""
    ACK = 0x04
    """NLM_F_ACK: ask for an NLMSG_ERROR acknowledgement even on success."""
    ECHO = 0x08
    """NLM_F_ECHO: echo this request back."""
    DUMP_INTR = 0x10
    """NLM_F_DUMP_INTR: the dump was inconsistent."""
    DUMP_FILTERED = 0x20
    """NLM_F_DUMP_FILTERED: the dump was filtered as requested."""


@dataclass(frozen=True, slots=True)
class NetlinkHeader:
    """A decoded ``struct nlmsghdr``; ``pid`` is the sender's port id (0 for the kernel)."""

    length: int
    type: int
    flags: NlmFlag
    seq: int
    pid: int


@dataclass(frozen=True, slots=True)
class NetlinkMessage:
    """One message: its header fields and its payload, without padding."""

    type: int
    flags: NlmFlag
    seq: int
    pid: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class NetlinkAck:
    """An ``NLMSG_ERROR`` message (``struct nlmsgerr``).

    ``errno`` is positive, as in :mod:`errno` (the kernel sends it negated); 0 means the request
    succeeded. ``request`` is the header of the request being answered, which is how a reply is
    matched to its request (by ``request.seq``). It is ``None`` only when the message is too short
    to hold it, which no current kernel sends.
    """

    seq: int
    pid: int
    errno: int
    request: NetlinkHeader | None

    @property
    def ok(self) -> bool:
        """True for an acknowledgement, False for an error."""
        return self.errno == 0


def nlmsg_align(length: int) -> int:
    """NLMSG_ALIGN: round ``length`` up to the next multiple of :data:`NLMSG_ALIGNTO`."""
    return (length + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1)


def encode_message(type: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    """Build one netlink message: header, payload, and padding to the 4-byte boundary.

    ``nlmsg_len`` counts the header and the payload but not the padding, as NLMSG_LENGTH does.
    Out-of-range fields are a caller bug and raise :class:`ValueError` (from :mod:`struct`).
    """
    length = NLMSG_HDRLEN + len(payload)
    if length > _U32_MAX:
        raise ValueError(f"netlink payload too long: {len(payload)} bytes")
    if not 0 <= type <= _U16_MAX or not 0 <= flags <= _U16_MAX:
        raise ValueError(f"netlink type {type} or flags {flags} out of range for u16")
    if not 0 <= seq <= _U32_MAX or not 0 <= pid <= _U32_MAX:
        raise ValueError(f"netlink seq {seq} or pid {pid} out of range for u32")
    header = _HEADER.pack(length, type, flags, seq, pid)
    return header + payload + bytes(nlmsg_align(length) - length)


def _decode_header(data: bytes | memoryview, offset: int) -> NetlinkHeader:
    length, type_, flags, seq, pid = _HEADER.unpack_from(data, offset)
    return NetlinkHeader(length, type_, NlmFlag(flags), seq, pid)


def _decode_ack(header: NetlinkHeader, payload: bytes) -> NetlinkAck:
    if len(payload) < _ERRNO.size:
        raise MalformedEventError(
            f"NLMSG_ERROR payload is {len(payload)} bytes, shorter than its error code"
        )
    (error,) = _ERRNO.unpack_from(payload)
    if error > 0:
        raise MalformedEventError(f"NLMSG_ERROR carries a positive error code {error}")
    request = None
    if len(payload) >= _ERRNO.size + NLMSG_HDRLEN:
        request = _decode_header(payload, _ERRNO.size)
    return NetlinkAck(seq=header.seq, pid=header.pid, errno=-error, request=request)


def parse_messages(data: bytes) -> list[NetlinkMessage | NetlinkAck]:
    """Split one received datagram into its messages, in order.

    Raises :class:`~sessionio.errors.MalformedEventError` when a header is truncated, when a
    message claims fewer bytes than its header or more than the datagram holds, or when an
    ``NLMSG_ERROR`` message is inconsistent. The last message may omit its trailing padding.
    """
    view = memoryview(data)
    items: list[NetlinkMessage | NetlinkAck] = []
    offset = 0
    while offset < len(view):
        remaining = len(view) - offset
        if remaining < NLMSG_HDRLEN:
            raise MalformedEventError(
                f"netlink datagram has {remaining} trailing bytes at offset {offset}, "
                f"shorter than a {NLMSG_HDRLEN}-byte header"
            )
        header = _decode_header(view, offset)
        if not NLMSG_HDRLEN <= header.length <= remaining:
            raise MalformedEventError(
                f"netlink message at offset {offset} claims {header.length} bytes; "
                f"{remaining} remain and a header alone is {NLMSG_HDRLEN}"
            )
        payload = bytes(view[offset + NLMSG_HDRLEN : offset + header.length])
        offset += nlmsg_align(header.length)
        if header.type == NlmsgType.NOOP:
            continue
        if header.type == NlmsgType.ERROR:
            items.append(_decode_ack(header, payload))
            continue
        items.append(NetlinkMessage(header.type, header.flags, header.seq, header.pid, payload))
    return items
