"""Netlink framing from golden bytes built here with struct from linux/netlink.h's layout."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError
from sessionio.protocols.netlink import (
    NLMSG_HDRLEN,
    NetlinkAck,
    NetlinkHeader,
    NetlinkMessage,
    NlmFlag,
    NlmsgType,
    encode_message,
    nlmsg_align,
    parse_messages,
)

# struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq;
#                   __u32 nlmsg_pid; }
NLMSGHDR = struct.Struct("=IHHII")


def nlmsg(type_: int, payload: bytes, *, flags: int = 0, seq: int = 0, pid: int = 0) -> bytes:
    """One message as the kernel lays it out, padded to 4 bytes."""
    length = 16 + len(payload)
    padding = (4 - length % 4) % 4
    return NLMSGHDR.pack(length, type_, flags, seq, pid) + payload + b"\0" * padding


def test_header_size_is_the_kernels() -> None:
    assert NLMSG_HDRLEN == NLMSGHDR.size == 16


@pytest.mark.parametrize(
    ("length", "aligned"), [(0, 0), (1, 4), (4, 4), (5, 8), (16, 16), (17, 20)]
)
def test_nlmsg_align_rounds_up_to_four(length: int, aligned: int) -> None:
    assert nlmsg_align(length) == aligned


def test_encode_message_matches_the_kernel_layout() -> None:
    encoded = encode_message(0x10, 0x5, 7, 4242, b"hello")
    assert encoded == NLMSGHDR.pack(21, 0x10, 0x5, 7, 4242) + b"hello" + b"\0\0\0"
    assert len(encoded) == 24


def test_encode_message_without_payload_is_a_bare_header() -> None:
    assert encode_message(1000, 1, 9, 0, b"") == NLMSGHDR.pack(16, 1000, 1, 9, 0)


@pytest.mark.parametrize(
    ("type_", "flags", "seq", "pid"),
    [(-1, 0, 0, 0), (0x10000, 0, 0, 0), (16, 0x10000, 0, 0), (16, 0, 2**32, 0), (16, 0, 0, -1)],
)
def test_encode_message_rejects_out_of_range_fields(
    type_: int, flags: int, seq: int, pid: int
) -> None:
    with pytest.raises(ValueError):
        encode_message(type_, flags, seq, pid, b"")


def test_parse_one_data_message() -> None:
    data = nlmsg(0x20, b"abcdef", flags=0x2, seq=11, pid=0)
    assert parse_messages(data) == [NetlinkMessage(0x20, NlmFlag.MULTI, 11, 0, b"abcdef")]


def test_parse_several_messages_and_an_unpadded_last_one() -> None:
    first = nlmsg(0x20, b"x", seq=1)
    second = nlmsg(0x21, b"yz", seq=2)
    third = NLMSGHDR.pack(16 + 3, 0x22, 0, 3, 0) + b"end"  # no trailing padding
    messages = parse_messages(first + second + third)
    assert [(m.type, m.seq) for m in messages if isinstance(m, NetlinkMessage)] == [
        (0x20, 1),
        (0x21, 2),
        (0x22, 3),
    ]
    assert [m.payload for m in messages if isinstance(m, NetlinkMessage)] == [b"x", b"yz", b"end"]


def test_noop_messages_are_dropped() -> None:
    data = nlmsg(NlmsgType.NOOP, b"ignored") + nlmsg(0x30, b"kept")
    assert parse_messages(data) == [NetlinkMessage(0x30, NlmFlag(0), 0, 0, b"kept")]


def test_done_is_a_message_with_its_payload() -> None:
    # The proc connector sends every event as NLMSG_DONE: the payload must survive.
    assert parse_messages(nlmsg(NlmsgType.DONE, b"event", seq=5)) == [
        NetlinkMessage(NlmsgType.DONE, NlmFlag(0), 5, 0, b"event")
    ]


def test_overrun_is_returned_with_its_type() -> None:
    (message,) = parse_messages(nlmsg(NlmsgType.OVERRUN, b""))
    assert isinstance(message, NetlinkMessage)
    assert message.type == NlmsgType.OVERRUN


def test_error_message_is_decoded_to_a_positive_errno_and_the_request_header() -> None:
    request = NLMSGHDR.pack(60, 1001, 0x5, 77, 1234)
    payload = struct.pack("=i", -errno.EPERM) + request + b"original request body"
    (ack,) = parse_messages(nlmsg(NlmsgType.ERROR, payload, seq=77, pid=0))
    assert ack == NetlinkAck(
        seq=77,
        pid=0,
        errno=errno.EPERM,
        request=NetlinkHeader(60, 1001, NlmFlag.REQUEST | NlmFlag.ACK, 77, 1234),
    )
    assert not ack.ok


def test_error_zero_is_an_acknowledgement() -> None:
    payload = struct.pack("=i", 0) + NLMSGHDR.pack(16, 1001, 5, 3, 0)
    (ack,) = parse_messages(nlmsg(NlmsgType.ERROR, payload, seq=3))
    assert isinstance(ack, NetlinkAck)
    assert ack.ok
    assert ack.errno == 0
    assert ack.request is not None
    assert ack.request.seq == 3


def test_error_without_the_request_header_keeps_the_errno() -> None:
    (ack,) = parse_messages(nlmsg(NlmsgType.ERROR, struct.pack("=i", -errno.EINVAL)))
    assert ack == NetlinkAck(seq=0, pid=0, errno=errno.EINVAL, request=None)


@pytest.mark.parametrize(
    "payload", [b"", b"\xff\xff", struct.pack("=i", 5)], ids=["empty", "short", "positive"]
)
def test_inconsistent_error_messages_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_messages(nlmsg(NlmsgType.ERROR, payload))


@pytest.mark.parametrize(
    "data",
    [
        NLMSGHDR.pack(16, 0x10, 0, 0, 0)[:15],  # truncated header
        NLMSGHDR.pack(15, 0x10, 0, 0, 0),  # length below the header size
        NLMSGHDR.pack(40, 0x10, 0, 0, 0) + b"short",  # length past the datagram
        nlmsg(0x10, b"ok") + b"\0\0\0\0\0",  # trailing bytes that are not a header
    ],
    ids=["truncated-header", "length-too-small", "length-too-large", "trailing-garbage"],
)
def test_inconsistent_framing_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_messages(data)


def test_empty_datagram_has_no_messages() -> None:
    assert parse_messages(b"") == []


message_fields = st.tuples(
    st.integers(NlmsgType.OVERRUN + 1, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=64),
)


@given(st.lists(message_fields, max_size=8))
def test_encoded_messages_parse_back(fields: list[tuple[int, int, int, int, bytes]]) -> None:
    data = b"".join(encode_message(*f) for f in fields)
    parsed = [m for m in parse_messages(data) if isinstance(m, NetlinkMessage)]
    assert [(m.type, m.flags, m.seq, m.pid, m.payload) for m in parsed] == fields


@given(st.binary(max_size=512))
def test_any_bytes_parse_or_are_malformed(data: bytes) -> None:
    try:
        items = parse_messages(data)
    except MalformedEventError:
        return
    assert all(isinstance(i, NetlinkMessage | NetlinkAck) for i in items)


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=6))
def test_well_framed_datagrams_with_any_types_parse_or_are_malformed(
    messages: list[tuple[int, bytes]],
) -> None:
    data = b"".join(nlmsg(t, p) for t, p in messages)
    try:
        items = parse_messages(data)
    except MalformedEventError:
        # Only an NLMSG_ERROR with an impossible payload may fail in a well-framed datagram.
        assert any(t == NlmsgType.ERROR for t, _ in messages)
        return
    assert len(items) == sum(t != NlmsgType.NOOP for t, _ in messages)
