"""Proc connector datagrams built here with struct from linux/connector.h and linux/cn_proc.h."""

from __future__ import annotations

import errno
import struct
from collections.abc import Sequence
from dataclasses import astuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError
from sessionio.protocols.proc_connector import (
    Ack,
    ProcCnMcastOp,
    ProcessComm,
    ProcessCoredump,
    ProcessExec,
    ProcessExit,
    ProcessFork,
    ProcessGid,
    ProcessPtrace,
    ProcessSid,
    ProcessUid,
    ProcEvent,
    ProcEventWhat,
    UnknownProcEvent,
    encode_listen,
    parse_datagram,
)

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSG_ERROR, NLMSG_DONE = 2, 3
CN_MSG = struct.Struct("=IIIIHH")  # cb_id.idx, cb_id.val, seq, ack, len, flags
PROC_EVENT_HEADER = struct.Struct("=IIQ")  # what, cpu, timestamp_ns (aligned(8): offset 8)
SIZEOF_PROC_EVENT = 40  # 16-byte header + the largest union member (exit, comm: 24 bytes)
CPU, TIMESTAMP = 1, 123_456_789_012


def datagram(
    what: int,
    union: bytes,
    *,
    cpu: int = CPU,
    timestamp_ns: int = TIMESTAMP,
    idx: int = 1,
    val: int = 1,
    seq: int = 0,
    ack: int = 0,
    nl_type: int = NLMSG_DONE,
) -> bytes:
    """One message as cn_proc.c sends it: nlmsghdr, cn_msg, a full-size struct proc_event."""
    event = PROC_EVENT_HEADER.pack(what, cpu, timestamp_ns) + union
    event += bytes(SIZEOF_PROC_EVENT - len(event))
    body = CN_MSG.pack(idx, val, seq, ack, len(event), 0) + event
    return NLMSGHDR.pack(16 + len(body), nl_type, 0, seq, 0) + body


def rows(events: Sequence[ProcEvent]) -> list[tuple[object, ...]]:
    """Events as (class, field values...), so that goldens can be written with plain ints."""
    return [(type(e), *astuple(e)) for e in events]


def test_the_enum_carries_the_values_of_cn_proc_h() -> None:
    assert {name: int(w) for name, w in ProcEventWhat.__members__.items()} == {
        "NONE": 0x00000000,
        "FORK": 0x00000001,
        "EXEC": 0x00000002,
        "UID": 0x00000004,
        "GID": 0x00000040,
        "SID": 0x00000080,
        "PTRACE": 0x00000100,
        "COMM": 0x00000200,
        "NONZERO_EXIT": 0x20000000,
        "COREDUMP": 0x40000000,
        "EXIT": 0x80000000,
    }
    assert (ProcCnMcastOp.LISTEN, ProcCnMcastOp.IGNORE) == (1, 2)


def test_a_datagram_is_76_bytes_like_the_kernels() -> None:
    assert len(datagram(1, struct.pack("=iiii", 1, 2, 3, 4))) == 16 + 20 + 40


def test_fork() -> None:
    data = datagram(0x1, struct.pack("=iiii", 100, 100, 101, 101))
    assert rows(parse_datagram(data)) == [(ProcessFork, CPU, TIMESTAMP, 100, 100, 101, 101)]


def test_fork_of_a_thread_has_a_child_pid_other_than_its_tgid() -> None:
    (event,) = parse_datagram(datagram(0x1, struct.pack("=iiii", 100, 100, 102, 100)))
    assert isinstance(event, ProcessFork)
    assert (event.child_pid, event.child_tgid) == (102, 100)


def test_exec() -> None:
    data = datagram(0x2, struct.pack("=ii", 200, 200))
    assert rows(parse_datagram(data)) == [(ProcessExec, CPU, TIMESTAMP, 200, 200)]


def test_uid_and_gid() -> None:
    uid = datagram(0x4, struct.pack("=iiII", 5, 5, 1000, 0))
    gid = datagram(0x40, struct.pack("=iiII", 5, 5, 100, 4294967295))
    assert rows(parse_datagram(uid + gid)) == [
        (ProcessUid, CPU, TIMESTAMP, 5, 5, 1000, 0),
        (ProcessGid, CPU, TIMESTAMP, 5, 5, 100, 4294967295),
    ]


def test_sid() -> None:
    data = datagram(0x80, struct.pack("=ii", 7, 7))
    assert rows(parse_datagram(data)) == [(ProcessSid, CPU, TIMESTAMP, 7, 7)]


def test_ptrace_attach_and_detach() -> None:
    attach = datagram(0x100, struct.pack("=iiii", 8, 8, 9, 9))
    detach = datagram(0x100, struct.pack("=iiii", 8, 8, 0, 0))
    assert rows(parse_datagram(attach + detach)) == [
        (ProcessPtrace, CPU, TIMESTAMP, 8, 8, 9, 9),
        (ProcessPtrace, CPU, TIMESTAMP, 8, 8, 0, 0),
    ]


def test_comm_is_cut_at_the_first_nul() -> None:
    data = datagram(0x200, struct.pack("=ii16s", 10, 11, b"worker\0garbage"))
    assert rows(parse_datagram(data)) == [(ProcessComm, CPU, TIMESTAMP, 10, 11, "worker")]


def test_comm_of_full_length_and_cut_inside_a_character_still_decodes() -> None:
    raw = b"abcdefghijklmn" + "é".encode()[:1] + b"\0"  # 16 bytes, last char cut
    (event,) = parse_datagram(datagram(0x200, struct.pack("=ii16s", 10, 10, raw)))
    assert isinstance(event, ProcessComm)
    assert event.comm.encode("utf-8", "surrogateescape") == raw[:15]


def test_coredump() -> None:
    data = datagram(0x40000000, struct.pack("=iiii", 12, 12, 1, 1))
    assert rows(parse_datagram(data)) == [(ProcessCoredump, CPU, TIMESTAMP, 12, 12, 1, 1)]


def test_exit_with_status_3_as_the_kernel_reports_it() -> None:
    # Measured on the 6.18 VM: "exit 3" arrives as exit_code 0x300, exit_signal 17 (SIGCHLD).
    data = datagram(0x80000000, struct.pack("=iiIiii", 300, 300, 0x300, 17, 1, 1))
    (event,) = parse_datagram(data)
    assert rows([event]) == [(ProcessExit, CPU, TIMESTAMP, 300, 300, 0x300, 17, 1, 1)]
    assert isinstance(event, ProcessExit)
    assert event.returncode == 3


def test_exit_by_signal_reads_as_a_negative_returncode() -> None:
    data = datagram(0x80000000, struct.pack("=iiIiii", 300, 300, 0x80 | 9, 17, 1, 1))
    (event,) = parse_datagram(data)
    assert isinstance(event, ProcessExit)
    assert event.returncode == -9


def test_exit_of_a_thread_has_exit_signal_minus_one() -> None:
    data = datagram(0x80000000, struct.pack("=iiIiii", 301, 300, 0, -1, 1, 1))
    (event,) = parse_datagram(data)
    assert isinstance(event, ProcessExit)
    assert (event.pid, event.tgid, event.exit_signal, event.returncode) == (301, 300, -1, 0)


def test_ack_keeps_the_answer_fields_of_the_cn_msg() -> None:
    data = datagram(0x0, struct.pack("=I", 0), seq=109, ack=9231, cpu=0)
    assert rows(parse_datagram(data)) == [(Ack, 0, TIMESTAMP, 109, 9231, 0)]


def test_ack_carries_the_error() -> None:
    (event,) = parse_datagram(datagram(0x0, struct.pack("=I", errno.EPERM)))
    assert isinstance(event, Ack)
    assert event.err == errno.EPERM


def test_unknown_what_is_returned_raw_and_not_an_error() -> None:
    union = struct.pack("=iiii", 1, 2, 3, 4)
    (event,) = parse_datagram(datagram(0x00000400, union))
    assert event == UnknownProcEvent(CPU, TIMESTAMP, 0x400, union + bytes(8))


def test_other_connector_users_are_skipped() -> None:
    foreign = datagram(0x1, struct.pack("=iiii", 1, 1, 2, 2), idx=2, val=1)
    ours = datagram(0x2, struct.pack("=ii", 3, 3))
    assert rows(parse_datagram(foreign + ours)) == [(ProcessExec, CPU, TIMESTAMP, 3, 3)]


def test_shorter_event_data_than_the_kernel_pads_to_is_accepted() -> None:
    # cn_msg.len bounds the event; an EXEC needs only 8 bytes of union.
    event = PROC_EVENT_HEADER.pack(0x2, CPU, TIMESTAMP) + struct.pack("=ii", 4, 4)
    body = CN_MSG.pack(1, 1, 0, 0, len(event), 0) + event
    data = NLMSGHDR.pack(16 + len(body), NLMSG_DONE, 0, 0, 0) + body
    assert rows(parse_datagram(data)) == [(ProcessExec, CPU, TIMESTAMP, 4, 4)]


def _with_cn_len(length: int, event: bytes) -> bytes:
    body = CN_MSG.pack(1, 1, 0, 0, length, 0) + event
    return NLMSGHDR.pack(16 + len(body), NLMSG_DONE, 0, 0, 0) + body


@pytest.mark.parametrize(
    "data",
    [
        _with_cn_len(40, bytes(20)),  # cn_msg.len beyond the message
        _with_cn_len(8, bytes(8)),  # shorter than the proc_event header
        _with_cn_len(20, PROC_EVENT_HEADER.pack(0x1, 0, 0) + bytes(4)),  # fork without its data
        NLMSGHDR.pack(16 + 10, NLMSG_DONE, 0, 0, 0) + bytes(10),  # shorter than a cn_msg
        datagram(0x1, bytes(16), nl_type=0x10),  # not NLMSG_DONE
        NLMSGHDR.pack(20, NLMSG_ERROR, 0, 0, 0) + struct.pack("=i", -1),  # an error
    ],
    ids=[
        "len-past-end",
        "len-below-header",
        "fork-truncated",
        "no-cn_msg",
        "wrong-type",
        "nlmsg-error",
    ],
)
def test_inconsistent_datagrams_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_datagram(data)


def test_encode_listen_is_the_documented_subscription_message() -> None:
    expected = NLMSGHDR.pack(16 + 20 + 4, NLMSG_DONE, 0, 0, 4242)
    expected += CN_MSG.pack(1, 1, 0, 0, 4, 0) + struct.pack("=I", 1)
    assert encode_listen(4242, True) == expected


def test_encode_ignore_carries_seq_and_ack() -> None:
    expected = NLMSGHDR.pack(40, NLMSG_DONE, 0, 5, 77)
    expected += CN_MSG.pack(1, 1, 5, 77, 4, 0) + struct.pack("=I", 2)
    assert encode_listen(77, False, seq=5, ack=77) == expected


@given(st.binary(max_size=256))
def test_any_bytes_parse_or_are_malformed(data: bytes) -> None:
    try:
        events = parse_datagram(data)
    except MalformedEventError:
        return
    assert isinstance(events, list)


@given(
    what=st.one_of(st.sampled_from([int(w) for w in ProcEventWhat]), st.integers(0, 2**32 - 1)),
    union=st.binary(max_size=32),
    cn_len=st.integers(0, 0xFFFF),
)
def test_any_event_in_a_valid_frame_parses_or_is_malformed(
    what: int, union: bytes, cn_len: int
) -> None:
    event = PROC_EVENT_HEADER.pack(what, CPU, TIMESTAMP) + union
    try:
        events = parse_datagram(_with_cn_len(cn_len, event))
    except MalformedEventError:
        return
    (parsed,) = events
    assert parsed.timestamp_ns == TIMESTAMP
