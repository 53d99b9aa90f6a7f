"""utmp records from bytes packed field by field, as glibc's struct utmp lays them out."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError
from sessionio.protocols.utmp import (
    UTMP_FORMAT,
    UTMP_RECORD_SIZE,
    UtmpType,
    parse_utmp,
    parse_utmp_record,
)


def record(
    ut_type: int = 7,
    pid: int = 4242,
    line: bytes = b"pts/3",
    ut_id: bytes = b"ts/3",
    user: bytes = b"alice",
    host: bytes = b"198.51.100.7",
    session: int = 4240,
    tv_sec: int = 1_795_262_585,
    tv_usec: int = 250_000,
    addr: bytes = bytes(16),
) -> bytes:
    """One record, built by hand: offsets from <bits/utmp.h> (x86_64)."""
    data = bytearray(384)
    struct.pack_into("=h", data, 0, ut_type)  # ut_type, then 2 bytes of padding
    struct.pack_into("=i", data, 4, pid)
    data[8 : 8 + len(line)] = line  # ut_line[32]
    data[40 : 40 + len(ut_id)] = ut_id  # ut_id[4]
    data[44 : 44 + len(user)] = user  # ut_user[32]
    data[76 : 76 + len(host)] = host  # ut_host[256]
    struct.pack_into("=hh", data, 332, 0, 0)  # ut_exit
    struct.pack_into("=iii", data, 336, session, tv_sec, tv_usec)  # ut_session, ut_tv
    data[348:364] = addr  # ut_addr_v6, then 20 reserved bytes
    return bytes(data)


def test_the_struct_format_is_384_bytes() -> None:
    assert struct.calcsize(UTMP_FORMAT) == UTMP_RECORD_SIZE == 384


def test_parse_a_user_process_record() -> None:
    rec = parse_utmp_record(record(addr=bytes([198, 51, 100, 7]) + bytes(12)))
    assert rec.type is UtmpType.USER_PROCESS
    assert (rec.pid, rec.line, rec.id, rec.user, rec.host) == (
        4242,
        "pts/3",
        "ts/3",
        "alice",
        "198.51.100.7",
    )
    assert rec.session == 4240
    assert rec.time == 1_795_262_585.25
    assert rec.address == ipaddress.IPv4Address("198.51.100.7")


def test_an_ipv6_address_and_no_address() -> None:
    v6 = ipaddress.IPv6Address("2001:db8::7")
    assert parse_utmp_record(record(addr=v6.packed)).address == v6
    assert parse_utmp_record(record()).address is None


def test_a_field_that_fills_its_array_has_no_nul() -> None:
    rec = parse_utmp_record(record(user=b"u" * 32, line=b"l" * 32))
    assert rec.user == "u" * 32
    assert rec.line == "l" * 32


def test_parse_utmp_keeps_file_order_and_ignores_a_trailing_partial_record() -> None:
    login = record(user=b"bob", line=b"pts/1")
    logout = record(ut_type=8, user=b"", line=b"pts/1")
    records = parse_utmp(login + logout + login[:100])
    assert [(r.type, r.user, r.line) for r in records] == [
        (UtmpType.USER_PROCESS, "bob", "pts/1"),
        (UtmpType.DEAD_PROCESS, "", "pts/1"),
    ]
    assert parse_utmp(b"") == []


def test_an_unknown_type_is_malformed() -> None:
    with pytest.raises(MalformedEventError):
        parse_utmp(record() + record(ut_type=42))


def test_a_record_of_the_wrong_size_is_malformed() -> None:
    with pytest.raises(MalformedEventError):
        parse_utmp_record(record()[:383])


@given(st.binary(max_size=3 * 384 + 10))
def test_any_bytes_parse_or_raise_malformed(data: bytes) -> None:
    try:
        records = parse_utmp(data)
    except MalformedEventError:
        return
    assert len(records) == len(data) // UTMP_RECORD_SIZE


@given(
    ut_type=st.sampled_from(list(UtmpType)),
    user=st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=8),
    pid=st.integers(0, 2**31 - 1),
    tv_sec=st.integers(0, 2**31 - 1),
)
def test_records_round_trip(ut_type: UtmpType, user: str, pid: int, tv_sec: int) -> None:
    rec = parse_utmp_record(record(ut_type, pid, user=user.encode(), tv_sec=tv_sec, tv_usec=0))
    assert (rec.type, rec.user, rec.pid, rec.time) == (ut_type, user, pid, tv_sec)
