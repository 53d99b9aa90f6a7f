"""The fanotify wire format from golden bytes: every layout is rebuilt here with ``struct`` from
the kernel's uapi header (not from the module under test), plus one buffer captured from a real
6.18 kernel, plus fuzzing."""

from __future__ import annotations

import errno
import os
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError, UsageError
from sessionio.protocols.fanotify import (
    FAN_ALLOW,
    FAN_AUDIT,
    FAN_DENY,
    FAN_INFO,
    FAN_NOFD,
    FAN_NOPIDFD,
    FANOTIFY_METADATA_VERSION,
    PERMISSION_EVENTS,
    AuditRule,
    AuditTrust,
    ErrorRecord,
    FanInfoType,
    FanInit,
    FanMark,
    FanMask,
    FanotifyEvent,
    FidRecord,
    RangeRecord,
    RawInfoRecord,
    deny_errno_response,
    encode_audit_rule,
    encode_response,
    parse_events,
)

# -- byte builders, straight from include/uapi/linux/fanotify.h -----------------------------------

METADATA = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
INFO_HEADER = struct.Struct("=BBH")  # info_type, pad, len


def event(
    mask: int,
    fd: int,
    pid: int,
    info: bytes = b"",
    *,
    vers: int = 3,
    metadata_len: int = 24,
    event_len: int | None = None,
) -> bytes:
    length = metadata_len + len(info) if event_len is None else event_len
    head = METADATA.pack(length, vers, 0, metadata_len, mask, fd, pid)
    return head + b"\0" * (metadata_len - METADATA.size) + info


def record(info_type: int, body: bytes, *, length: int | None = None) -> bytes:
    return INFO_HEADER.pack(info_type, 0, 4 + len(body) if length is None else length) + body


def pidfd_record(pidfd: int) -> bytes:
    return record(4, struct.pack("=i", pidfd))


def fid_record(
    info_type: int,
    fsid: tuple[int, int],
    handle_type: int,
    handle: bytes,
    name: bytes | None = None,
) -> bytes:
    body = struct.pack("=iiIi", fsid[0], fsid[1], len(handle), handle_type) + handle
    if name is not None:
        body += name + b"\0"
    body += b"\0" * (-(4 + len(body)) % 4)  # the kernel pads records to 4 bytes
    return record(info_type, body)


# -- golden events -----------------------------------------------------------------------------


def test_metadata_is_24_bytes_as_in_the_kernel() -> None:
    assert METADATA.size == 24
    assert FANOTIFY_METADATA_VERSION == 3


def test_a_bare_permission_event() -> None:
    data = event(0x0001_0000, 7, 4242)

    [ev] = parse_events(data)

    assert ev == FanotifyEvent(mask=FanMask.OPEN_PERM, fd=7, pid=4242)
    assert ev.is_permission
    assert not ev.is_overflow
    assert ev.pidfd is None
    assert ev.fid is None and ev.dfid is None and ev.name is None


def test_the_overflow_event() -> None:
    [ev] = parse_events(event(0x4000, FAN_NOFD, 0))

    assert ev.mask is FanMask.Q_OVERFLOW
    assert ev.is_overflow
    assert not ev.is_permission
    assert ev.fd == -1


def test_a_pidfd_record() -> None:
    data = event(0x20, 9, 100, pidfd_record(11))

    [ev] = parse_events(data)

    assert len(data) == 32  # as observed on 6.18: event_len=32, info=[(4, 8)]
    assert ev.pidfd == 11
    assert ev.mask == FanMask.OPEN


@pytest.mark.parametrize("value", [FAN_NOPIDFD, -2, -errno.ESRCH])
def test_negative_pidfd_values_are_kept_as_reported(value: int) -> None:
    [ev] = parse_events(event(0x20, 9, 100, pidfd_record(value)))

    assert ev.pidfd == value


def test_a_dfid_name_record_then_a_pidfd_record() -> None:
    handle = bytes(range(1, 9))
    info = fid_record(2, (-5, 77), 1, handle, b"report.txt") + pidfd_record(4)
    data = event(0x0000_0100 | 0x4000_0000, FAN_NOFD, 31, info)

    [ev] = parse_events(data)

    assert ev.mask == FanMask.CREATE | FanMask.ONDIR
    assert ev.fd == FAN_NOFD
    assert ev.pidfd == 4
    assert ev.fids == (
        FidRecord(
            info_type=FanInfoType.DFID_NAME,
            fsid=(-5, 77),
            handle_type=1,
            handle=handle,
            name="report.txt",
        ),
    )
    assert ev.dfid is ev.fids[0]
    assert ev.name == "report.txt"
    assert ev.fid is None


def test_fid_and_dfid_records_carry_no_name() -> None:
    info = fid_record(3, (1, 2), 0x81, b"\xaa" * 12) + fid_record(1, (1, 2), 0x81, b"\xbb" * 6)

    [ev] = parse_events(event(0x0000_0200, FAN_NOFD, 5, info))

    assert ev.dfid == FidRecord(FanInfoType.DFID, (1, 2), 0x81, b"\xaa" * 12, None)
    assert ev.fid == FidRecord(FanInfoType.FID, (1, 2), 0x81, b"\xbb" * 6, None)
    assert ev.name is None


def test_rename_carries_old_and_new_names() -> None:
    info = fid_record(10, (3, 4), 1, b"\x01" * 8, b"old") + fid_record(
        12, (3, 4), 1, b"\x02" * 8, b"new"
    )

    [ev] = parse_events(event(0x1000_0000, FAN_NOFD, 5, info))

    assert [(fid.info_type, fid.name) for fid in ev.fids] == [
        (FanInfoType.OLD_DFID_NAME, "old"),
        (FanInfoType.NEW_DFID_NAME, "new"),
    ]
    assert ev.name is None  # neither is the plain DFID_NAME record


def test_undecodable_names_round_trip_through_os_fsencode() -> None:
    raw = b"caf\xe9\xff.txt"

    [ev] = parse_events(event(0x20, FAN_NOFD, 5, fid_record(2, (0, 0), 1, b"h", raw)))

    assert ev.name is not None
    assert os.fsencode(ev.name) == raw


def test_the_file_handle_is_struct_file_handle() -> None:
    fid = FidRecord(FanInfoType.FID, (0, 0), 0x4D, b"\x01\x02\x03")

    assert fid.file_handle() == struct.pack("=Ii", 3, 0x4D) + b"\x01\x02\x03"


def test_error_and_range_records() -> None:
    info = record(5, struct.pack("=iI", -errno.EIO, 3)) + record(
        6, struct.pack("=IQQ", 0, 4096, 8192)
    )

    [ev] = parse_events(event(0x0000_8000 | 0x0010_0000, 3, 9, info))

    assert ev.error == ErrorRecord(error=-errno.EIO, error_count=3)
    assert ev.file_range == RangeRecord(offset=4096, count=8192)
    assert ev.is_permission  # FAN_PRE_ACCESS blocks like the other permission events


def test_unknown_records_are_kept_raw_after_known_ones() -> None:
    info = pidfd_record(8) + record(7, b"\0" * 4 + struct.pack("=Q", 99)) + record(200, b"xyzw")

    [ev] = parse_events(event(0x20, 3, 9, info))

    assert ev.pidfd == 8
    assert ev.unknown == (
        RawInfoRecord(7, b"\0" * 4 + struct.pack("=Q", 99)),
        RawInfoRecord(200, b"xyzw"),
    )


def test_several_events_in_one_buffer() -> None:
    data = (
        event(0x0001_0000, 10, 1)
        + event(0x20, 11, 2, pidfd_record(12))
        + event(0x4000, FAN_NOFD, 0)
        + event(0x0004_0000, 13, 3)
    )

    events = parse_events(data)

    assert [(ev.mask, ev.fd, ev.pid, ev.pidfd) for ev in events] == [
        (FanMask.OPEN_PERM, 10, 1, None),
        (FanMask.OPEN, 11, 2, 12),
        (FanMask.Q_OVERFLOW, -1, 0, None),
        (FanMask.OPEN_EXEC_PERM, 13, 3, None),
    ]


def test_an_empty_read_is_no_events() -> None:
    assert parse_events(b"") == []


def test_a_longer_metadata_len_is_skipped_to_the_info_records() -> None:
    data = event(0x20, 5, 6, pidfd_record(7), metadata_len=32)

    [ev] = parse_events(data)

    assert ev.pidfd == 7


def test_unknown_mask_bits_are_kept() -> None:
    [ev] = parse_events(event(0x20 | 1 << 40, 5, 6))

    assert int(ev.mask) == 0x20 | 1 << 40
    assert FanMask.OPEN in ev.mask


def test_memoryview_and_bytearray_input() -> None:
    data = event(0x20, 5, 6, pidfd_record(7))

    assert parse_events(memoryview(data)) == parse_events(bytearray(data)) == parse_events(data)


@pytest.mark.skipif(sys.byteorder != "little", reason="captured on a little-endian machine")
def test_a_buffer_captured_from_linux_6_18() -> None:
    # A FAN_CLASS_NOTIF|FAN_REPORT_DFID_NAME|FAN_REPORT_PIDFD group, an inode mark on a
    # directory with FAN_OPEN|FAN_EVENT_ON_CHILD, then open("report.txt") in it.
    data = bytes.fromhex(
        "48000000030018002000000000000000ffffffff22190000"  # metadata: len 72, OPEN, fd -1
        "020028004fa541c090441d360800000001000000fec020008fcf779b"  # DFID_NAME, len 40
        "7265706f72742e747874000004000800"  # "report.txt\0" + pad; PIDFD hdr
        "04000000"  # pidfd 4
    )

    [ev] = parse_events(data)

    assert ev.mask == FanMask.OPEN
    assert ev.fd == FAN_NOFD
    assert ev.pid == 0x1922
    assert ev.pidfd == 4
    assert ev.name == "report.txt"
    assert ev.dfid is not None
    assert ev.dfid.handle_type == 1
    assert ev.dfid.handle == bytes.fromhex("fec020008fcf779b")
    assert ev.dfid.fsid == (-1069439665, 907887760)


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("vers", [0, 1, 2, 4, 255])
def test_an_unknown_metadata_version_is_refused(vers: int) -> None:
    with pytest.raises(MalformedEventError, match=f"version {vers}"):
        parse_events(event(0x20, 5, 6, vers=vers))


def test_a_bad_version_in_a_later_event_is_refused() -> None:
    with pytest.raises(MalformedEventError, match="version 2"):
        parse_events(event(0x20, 5, 6) + event(0x20, 5, 6, vers=2))


@pytest.mark.parametrize("cut", [1, 8, 23])
def test_a_truncated_metadata_is_refused(cut: int) -> None:
    with pytest.raises(MalformedEventError, match="truncated"):
        parse_events(event(0x20, 5, 6)[:cut])


def test_trailing_bytes_after_the_last_event_are_refused() -> None:
    with pytest.raises(MalformedEventError, match="truncated"):
        parse_events(event(0x20, 5, 6) + b"\x30\0\0\0")


@pytest.mark.parametrize(
    ("event_len", "metadata_len"),
    [(0, 24), (23, 24), (25, 24), (200, 24), (24, 16), (24, 0), (24, 28)],
)
def test_inconsistent_event_and_metadata_lengths_are_refused(
    event_len: int, metadata_len: int
) -> None:
    data = METADATA.pack(event_len, 3, 0, metadata_len, 0x20, 5, 6)

    with pytest.raises(MalformedEventError):
        parse_events(data)


def test_an_event_len_past_the_buffer_is_refused() -> None:
    data = event(0x20, 5, 6, pidfd_record(7))

    with pytest.raises(MalformedEventError, match="event_len"):
        parse_events(data[:-1])


@pytest.mark.parametrize("length", [0, 1, 3])
def test_an_info_len_below_the_header_is_refused(length: int) -> None:
    info = record(4, struct.pack("=i", 1), length=length)

    with pytest.raises(MalformedEventError, match="len"):
        parse_events(event(0x20, 5, 6, info))


def test_an_info_len_past_the_event_is_refused() -> None:
    info = record(4, struct.pack("=i", 1), length=12)

    with pytest.raises(MalformedEventError, match="len 12"):
        parse_events(event(0x20, 5, 6, info))


def test_a_truncated_info_header_is_refused() -> None:
    with pytest.raises(MalformedEventError, match="header"):
        parse_events(event(0x20, 5, 6, b"\x04\0"))


@pytest.mark.parametrize(
    ("info_type", "body"),
    [(4, b"\1\0"), (5, b"\0" * 4), (6, b"\0" * 16), (1, b"\0" * 12), (2, b"\0" * 8)],
)
def test_records_shorter_than_their_structure_are_refused(info_type: int, body: bytes) -> None:
    with pytest.raises(MalformedEventError, match="truncated"):
        parse_events(event(0x20, 5, 6, record(info_type, body)))


def test_a_handle_longer_than_its_record_is_refused() -> None:
    body = struct.pack("=iiIi", 0, 0, 64, 1) + b"\0" * 8

    with pytest.raises(MalformedEventError, match="handle_bytes 64"):
        parse_events(event(0x20, FAN_NOFD, 6, record(1, body)))


def test_a_name_without_nul_is_refused() -> None:
    body = struct.pack("=iiIi", 0, 0, 4, 1) + b"hhhh" + b"name"

    with pytest.raises(MalformedEventError, match="NUL"):
        parse_events(event(0x20, FAN_NOFD, 6, record(2, body)))


def test_two_records_of_one_known_type_are_refused() -> None:
    with pytest.raises(MalformedEventError, match="two info records"):
        parse_events(event(0x20, 5, 6, pidfd_record(1) + pidfd_record(2)))


# -- responses ---------------------------------------------------------------------------------


def test_allow_and_deny_responses() -> None:
    assert encode_response(17, FAN_ALLOW) == struct.pack("=iI", 17, 1)
    assert encode_response(17, FAN_DENY | FAN_AUDIT) == struct.pack("=iI", 17, 0x12)
    assert encode_response(-1, FAN_ALLOW | FAN_INFO) == struct.pack("=iI", -1, 0x21)


@pytest.mark.parametrize("response", [0, FAN_AUDIT, FAN_ALLOW | FAN_DENY, 0x40])
def test_a_response_without_exactly_one_verdict_is_refused(response: int) -> None:
    with pytest.raises(UsageError, match="exactly one"):
        encode_response(3, response)


@pytest.mark.parametrize(("fd", "response"), [(2**31, 1), (-(2**31) - 1, 1), (3, 2**32 | 1)])
def test_out_of_range_responses_are_refused(fd: int, response: int) -> None:
    with pytest.raises(UsageError):
        encode_response(fd, response)


def test_the_audit_rule_record() -> None:
    rule = AuditRule(rule_number=42, subj_trust=AuditTrust.YES, obj_trust=AuditTrust.UNKNOWN)

    assert encode_audit_rule(rule) == struct.pack("=BBHIII", 1, 0, 16, 42, 1, 2)
    assert len(encode_audit_rule(AuditRule(7))) == 16


def test_an_audit_rule_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError, match="rule_number"):
        encode_audit_rule(AuditRule(rule_number=2**32))


def test_deny_errno_puts_the_errno_in_the_top_byte() -> None:
    response = deny_errno_response(errno.EBUSY)

    assert response == 0x02 | errno.EBUSY << 24
    assert encode_response(5, response) == struct.pack("=iI", 5, 0x1000_0002)


@pytest.mark.parametrize("err", [0, 256, -1])
def test_deny_errno_out_of_range_is_refused(err: int) -> None:
    with pytest.raises(UsageError):
        deny_errno_response(err)


# -- constants against the uapi header -------------------------------------------------------


UAPI_VALUES: list[tuple[int, int]] = [
    (FanInit.CLASS_CONTENT, 0x4),
    (FanInit.CLASS_PRE_CONTENT, 0x8),
    (FanInit.UNLIMITED_QUEUE, 0x10),
    (FanInit.ENABLE_AUDIT, 0x40),
    (FanInit.REPORT_PIDFD, 0x80),
    (FanInit.REPORT_TID, 0x100),
    (FanInit.REPORT_FD_ERROR, 0x2000),
    (FanInit.REPORT_DFID_NAME, 0x400 | 0x800),
    (FanMask.OPEN_PERM, 0x1_0000),
    (FanMask.ACCESS_PERM, 0x2_0000),
    (FanMask.OPEN_EXEC_PERM, 0x4_0000),
    (FanMask.PRE_ACCESS, 0x10_0000),
    (FanMask.Q_OVERFLOW, 0x4000),
    (FanMask.FS_ERROR, 0x8000),
    (FanMask.EVENT_ON_CHILD, 0x800_0000),
    (FanMask.RENAME, 0x1000_0000),
    (FanMask.ONDIR, 0x4000_0000),
    (FanMark.FILESYSTEM, 0x100),
    (FanMark.EVICTABLE, 0x200),
    (FanMark.IGNORE, 0x400),
    (FanMark.IGNORE_SURV, 0x440),
    (FanMark.MNTNS, 0x110),
    (PERMISSION_EVENTS, 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x10_0000),
]


@pytest.mark.parametrize(("constant", "value"), UAPI_VALUES)
def test_constants_match_the_uapi_header(constant: int, value: int) -> None:
    assert int(constant) == value


# -- fuzzing -------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=512))
def test_any_bytes_parse_or_raise_malformed(data: bytes) -> None:
    try:
        events = parse_events(data)
    except MalformedEventError:
        return
    assert all(isinstance(ev, FanotifyEvent) for ev in events)


names = st.binary(max_size=40).filter(lambda name: b"\0" not in name)
s32 = st.integers(-(2**31), 2**31 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def events_with_bytes(draw: st.DrawFn) -> tuple[FanotifyEvent, bytes]:
    """A random but valid event, and the bytes the kernel would write for it."""
    mask, fd, pid = draw(u64), draw(s32), draw(s32)
    info = b""
    fids: list[FidRecord] = []
    for info_type in draw(st.lists(st.sampled_from([1, 2, 3, 10, 12]), unique=True, max_size=3)):
        fsid = (draw(s32), draw(s32))
        handle_type, handle = draw(s32), draw(st.binary(max_size=64))
        name = draw(names) if info_type in (2, 10, 12) else None
        info += fid_record(info_type, fsid, handle_type, handle, name)
        fids.append(
            FidRecord(
                FanInfoType(info_type),
                fsid,
                handle_type,
                handle,
                None if name is None else os.fsdecode(name),
            )
        )
    pidfd = draw(st.none() | s32)
    if pidfd is not None:
        info += pidfd_record(pidfd)
    error = draw(st.none() | st.tuples(s32, u32))
    if error is not None:
        info += record(5, struct.pack("=iI", *error))
    expected = FanotifyEvent(
        mask=FanMask(mask),
        fd=fd,
        pid=pid,
        pidfd=pidfd,
        fids=tuple(fids),
        error=None if error is None else ErrorRecord(*error),
    )
    return expected, event(mask, fd, pid, info)


@settings(max_examples=300)
@given(st.lists(events_with_bytes(), max_size=5))
def test_valid_buffers_parse_to_what_was_encoded(pairs: list[tuple[FanotifyEvent, bytes]]) -> None:
    data = b"".join(raw for _, raw in pairs)

    assert parse_events(data) == [expected for expected, _ in pairs]


@settings(max_examples=500)
@given(
    st.lists(events_with_bytes(), min_size=1, max_size=3),
    st.data(),
)
def test_corrupted_valid_buffers_parse_or_raise_malformed(
    pairs: list[tuple[FanotifyEvent, bytes]], data: st.DataObject
) -> None:
    buf = bytearray(b"".join(raw for _, raw in pairs))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(buf) - 1))
        buf[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))

    try:
        events = parse_events(bytes(buf[:cut]))
    except MalformedEventError:
        return
    assert all(isinstance(ev, FanotifyEvent) for ev in events)
