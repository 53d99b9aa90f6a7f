"""utmp/wtmp records (glibc ``struct utmp``, x86_64): bytes in, typed records out.

utmp is only a fallback session source (xrdp does not write it; Debian trixie no longer creates
/run/utmp), so this parser is strict about each record but never guesses: 384 bytes a record,
int32 seconds (glibc keeps ``ut_tv`` 32-bit for compatibility even on 64-bit machines).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from sessionio.errors import MalformedEventError

__all__ = [
    "UTMP_FORMAT",
    "UTMP_RECORD_SIZE",
    "UtmpRecord",
    "UtmpType",
    "parse_utmp",
    "parse_utmp_record",
]

UTMP_FORMAT: Final = "=h2xi32s4s32s256shhiii4i20x"
"""ut_type, pad, ut_pid, ut_line, ut_id, ut_user, ut_host, ut_exit, ut_session, ut_tv, ut_addr_v6"""

_STRUCT: Final = struct.Struct(UTMP_FORMAT)
UTMP_RECORD_SIZE: Final = 384


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UtmpType(enum.IntEnum):
    """``ut_type`` values of glibc <bits/utmp.h> (the names are glibc's, without a prefix)."""

    EMPTY = 0
    RUN_LVL = 1
    BOOT_TIME = 2
    NEW_TIME = 3
    OLD_TIME = 4
    INIT_PROCESS = 5
    LOGIN_PROCESS = 6
    USER_PROCESS = 7
    """A logged-in user: what ``who`` lists."""
    DEAD_PROCESS = 8
    """A login that ended; utmp overwrites the USER_PROCESS slot with it, wtmp appends it."""
    ACCOUNTING = 9


@dataclass(frozen=True, slots=True)
class UtmpRecord:
    """One utmp/wtmp entry.

    ``session`` is ``ut_session``, the getsid() session of the login process, not the audit
    session. ``address`` is ``ut_addr_v6`` (an IPv4 address uses only its first word), ``None``
    when all zero.
    """

    type: UtmpType
    pid: int
    line: str
    id: str
    user: str
    host: str
    termination: int
    exit: int
    session: int
    time: float
    address: _Address | None


def _field(raw: bytes) -> str:
    """A fixed-size char array: NUL-terminated unless it fills the field."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _address(words: tuple[int, int, int, int]) -> _Address | None:
    raw = struct.pack("=4i", *words)  # the words hold network-order bytes, as glibc stores them
    if raw == bytes(16):
        return None
    if raw[4:] == bytes(12):
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw)


def parse_utmp_record(data: bytes) -> UtmpRecord:
    """Parse exactly one 384-byte record."""
    if len(data) != UTMP_RECORD_SIZE:
        raise MalformedEventError(f"utmp record: {len(data)} bytes, need {UTMP_RECORD_SIZE}")
    (
        ut_type,
        pid,
        line,
        ut_id,
        user,
        host,
        termination,
        exit_status,
        session,
        tv_sec,
        tv_usec,
        *addr,
    ) = _STRUCT.unpack(data)
    try:
        kind = UtmpType(ut_type)
    except ValueError as err:
        raise MalformedEventError(f"utmp record: unknown ut_type {ut_type}") from err
    return UtmpRecord(
        type=kind,
        pid=pid,
        line=_field(line),
        id=_field(ut_id),
        user=_field(user),
        host=_field(host),
        termination=termination,
        exit=exit_status,
        session=session,
        time=tv_sec + tv_usec / 1_000_000,
        address=_address((addr[0], addr[1], addr[2], addr[3])),
    )


def parse_utmp(data: bytes) -> list[UtmpRecord]:
    """Parse a whole utmp or wtmp file, every record in file order.

    A trailing partial record is IGNORED, as glibc's getutent() ignores it: it is a writer
    caught mid-append (wtmp) or a truncated copy, and the complete records before it are
    still true. A complete record that does not parse raises ``MalformedEventError``.
    """
    whole = len(data) - len(data) % UTMP_RECORD_SIZE
    return [
        parse_utmp_record(data[offset : offset + UTMP_RECORD_SIZE])
        for offset in range(0, whole, UTMP_RECORD_SIZE)
    ]
