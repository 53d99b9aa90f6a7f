"""Audit records and struct audit_status, from golden text and bytes built with struct here."""

from __future__ import annotations

import contextlib
import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError
from sessionio.model.ids import Pid
from sessionio.protocols.audit import (
    AUDIT_ID_UNSET,
    AUDIT_NLGRP_READLOG,
    AuditEnabled,
    AuditLogin,
    AuditMessageType,
    AuditRecord,
    AuditStamp,
    AuditStatus,
    AuditStatusMask,
    decode_status,
    encode_get_request,
    encode_set_request,
    encode_status,
    known_id,
    parse_datagram,
    parse_login,
    parse_record,
    parse_record_line,
)

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR, NLMSG_DONE = 2, 3

# As printed on the 6.18 VM when a child shell wrote 1000 to /proc/self/loginuid.
LOGIN_LINE = (
    "type=1006 audit(1795261414.538:8): pid=6764 uid=0 old-auid=4294967295 auid=1000 "
    "tty=(none) old-ses=4294967295 ses=9 res=1"
)
LOGIN_PAYLOAD = LOGIN_LINE.split(" ", 1)[1].encode()
SYSCALL_PAYLOAD = (
    b"audit(1795261414.538:8): arch=c000003e syscall=1 success=yes exit=4 ppid=6763 pid=6764 "
    b'auid=1000 uid=0 tty=(none) ses=9 comm="bash" exe="/usr/bin/bash" key=(null)'
)


def nlmsg(type_: int, payload: bytes, *, flags: int = 0, seq: int = 0) -> bytes:
    length = 16 + len(payload)
    return NLMSGHDR.pack(length, type_, flags, seq, 0) + payload + bytes(-length % 4)


def test_message_types_carry_the_values_of_audit_h() -> None:
    assert AuditMessageType.GET == 1000
    assert AuditMessageType.SET == 1001
    assert AuditMessageType.LOGIN == 1006
    assert AuditMessageType.SYSCALL == 1300
    assert AuditMessageType.EOE == 1320
    assert AuditMessageType.FANOTIFY == 1331
    assert AuditMessageType.EVENT_LISTENER == 1335
    assert AuditMessageType.KERNEL == 2000
    assert AUDIT_NLGRP_READLOG == 1
    assert AUDIT_ID_UNSET == 2**32 - 1


def test_a_dmesg_line_parses_into_type_stamp_and_fields() -> None:
    record = parse_record_line(LOGIN_LINE)
    assert record.type == AuditMessageType.LOGIN
    assert isinstance(record.type, AuditMessageType)
    assert record.stamp == AuditStamp(1795261414, 538, 8)
    assert record.fields == (
        ("pid", "6764"),
        ("uid", "0"),
        ("old-auid", "4294967295"),
        ("auid", "1000"),
        ("tty", "(none)"),
        ("old-ses", "4294967295"),
        ("ses", "9"),
        ("res", "1"),
    )
    assert record.text.startswith("pid=6764 ")


def test_an_auditd_log_line_with_a_type_name_parses_the_same() -> None:
    auditd = LOGIN_LINE.replace("type=1006 audit", "type=LOGIN msg=audit")
    assert parse_record_line(auditd) == parse_record_line(LOGIN_LINE)


def test_a_kernel_log_line_with_its_audit_prefix_parses_the_same() -> None:
    assert parse_record_line("audit: " + LOGIN_LINE) == parse_record_line(LOGIN_LINE)


def test_the_netlink_payload_parses_and_trailing_nuls_are_dropped() -> None:
    assert parse_record(1006, LOGIN_PAYLOAD + b"\0") == parse_record_line(LOGIN_LINE)


def test_login_record_is_typed_with_raw_unset_ids() -> None:
    login = parse_login(parse_record_line(LOGIN_LINE))
    assert login == AuditLogin(
        stamp=AuditStamp(1795261414, 538, 8),
        pid=Pid(6764),
        uid=0,
        old_auid=4294967295,
        auid=1000,
        tty=None,
        old_ses=4294967295,
        ses=9,
        res=1,
        subj=None,
    )
    assert login.success


def test_login_helpers_turn_unset_into_none() -> None:
    login = parse_login(parse_record_line(LOGIN_LINE))
    assert (login.session_id, login.old_session_id) == (9, None)
    assert (login.login_uid, login.old_login_uid) == (1000, None)


def test_a_second_login_names_both_sessions() -> None:
    line = LOGIN_LINE.replace("old-auid=4294967295 auid=1000", "old-auid=1000 auid=1001")
    line = line.replace("old-ses=4294967295 ses=9", "old-ses=9 ses=10")
    login = parse_login(parse_record_line(line))
    assert (login.old_session_id, login.session_id) == (9, 10)
    assert (login.old_login_uid, login.login_uid) == (1000, 1001)


def test_login_with_a_subject_label_and_a_tty_and_a_refusal() -> None:
    line = LOGIN_LINE.replace("uid=0 old-auid", "uid=0 subj=unconfined_u:unconfined_r old-auid")
    line = line.replace("tty=(none)", "tty=pts0").replace("res=1", "res=0")
    login = parse_login(parse_record_line(line))
    assert login.subj == "unconfined_u:unconfined_r"
    assert login.tty == "pts0"
    assert not login.success


def test_unset_session_after_a_reset_to_unset() -> None:
    line = LOGIN_LINE.replace("auid=1000 ", "auid=4294967295 ").replace("ses=9 ", "ses=4294967295 ")
    login = parse_login(parse_record_line(line))
    assert login.session_id is None
    assert login.login_uid is None


@pytest.mark.parametrize(("raw", "known"), [(4294967295, None), (0, 0), (9, 9), (1000, 1000)])
def test_known_id(raw: int, known: int | None) -> None:
    assert known_id(raw) == known


def test_quoted_values_free_words_and_empty_values() -> None:
    payload = (
        b'audit(1.002:3): op=set msg=\'op=login acct="root" res=success\' comm="my prog" '
        b"initialized empty= key=(null)"
    )
    record = parse_record(1305, payload)
    assert record.type == AuditMessageType.CONFIG_CHANGE
    assert record.stamp == AuditStamp(1, 2, 3)
    assert record.fields == (
        ("op", "set"),
        ("msg", 'op=login acct="root" res=success'),
        ("comm", "my prog"),
        ("empty", ""),
        ("key", "(null)"),
    )
    assert record.get("comm") == "my prog"
    assert record.get("missing") is None


def test_an_unterminated_quote_runs_to_the_end() -> None:
    record = parse_record(1300, b'audit(1.000:1): comm="trunc')
    assert record.fields == (("comm", "trunc"),)


def test_first_of_repeated_keys_is_what_get_returns() -> None:
    record = parse_record(1300, b"audit(1.000:1): a=1 a=2")
    assert record.fields == (("a", "1"), ("a", "2"))
    assert record.get("a") == "1"


def test_unknown_record_types_stay_plain_ints() -> None:
    record = parse_record(1399, b"audit(1.000:1): x=y")
    assert record.type == 1399
    assert not isinstance(record.type, AuditMessageType)


def test_stamp_prints_like_the_kernel() -> None:
    assert str(AuditStamp(1795261414, 38, 8)) == "audit(1795261414.038:8)"


@pytest.mark.parametrize(
    "line",
    [
        "pid=1 uid=0",  # no type=
        "type=1006 pid=1 uid=0",  # no stamp
        "type=NOT_A_TYPE audit(1.000:1): x=y",  # unknown name
        "type=1006 audit(1.000): x=y",  # stamp without serial
    ],
)
def test_lines_without_type_or_stamp_are_malformed(line: str) -> None:
    with pytest.raises(MalformedEventError):
        parse_record_line(line)


@pytest.mark.parametrize(
    "change",
    [
        ("ses=9 ", ""),  # missing field
        ("ses=9", "ses=nine"),  # not a number
        ("ses=9", "ses=\u0669"),  # an Arabic-Indic digit, which int() would take
        ("ses=9", "ses=4294967296"),  # past u32
        ("pid=6764", "pid=-2147483649"),  # past i32
        ("auid=1000", "auid=-1"),  # unsigned field written signed
    ],
    ids=["missing", "text", "unicode-digit", "u32-overflow", "i32-underflow", "negative-u32"],
)
def test_login_records_with_bad_fields_are_malformed(change: tuple[str, str]) -> None:
    record = parse_record_line(LOGIN_LINE.replace(*change))
    with pytest.raises(MalformedEventError):
        parse_login(record)


def test_only_login_records_type_as_logins() -> None:
    with pytest.raises(MalformedEventError):
        parse_login(parse_record(1300, SYSCALL_PAYLOAD))


def test_datagram_of_records() -> None:
    data = nlmsg(1006, LOGIN_PAYLOAD) + nlmsg(1300, SYSCALL_PAYLOAD)
    records = parse_datagram(data)
    assert [r.type for r in records] == [AuditMessageType.LOGIN, AuditMessageType.SYSCALL]
    assert records[1].get("exe") == "/usr/bin/bash"
    assert records[0].stamp == records[1].stamp


@pytest.mark.parametrize(
    "data",
    [
        nlmsg(NLMSG_ERROR, struct.pack("=i", -errno.EPERM) + NLMSGHDR.pack(16, 1000, 1, 1, 0)),
        nlmsg(NLMSG_DONE, b""),
        nlmsg(1006, b"no stamp here"),
    ],
    ids=["error", "done", "no-stamp"],
)
def test_datagrams_that_are_not_records_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_datagram(data)


# struct audit_status: 11 x __u32 (mask, enabled, failure, pid, rate_limit, backlog_limit, lost,
# backlog, feature_bitmap|version, backlog_wait_time, backlog_wait_time_actual).
STATUS_VALUES = (0, 1, 1, 0, 0, 64, 2, 0, 127, 15000, 3)


def test_decode_the_current_44_byte_status() -> None:
    status = decode_status(struct.pack("=11I", *STATUS_VALUES))
    assert status == AuditStatus(
        mask=AuditStatusMask(0),
        enabled=AuditEnabled.ON,
        failure=1,
        pid=0,
        rate_limit=0,
        backlog_limit=64,
        lost=2,
        backlog=0,
        feature_bitmap=127,
        backlog_wait_time=15000,
        backlog_wait_time_actual=3,
    )


@pytest.mark.parametrize(
    ("fields", "missing"), [(8, 3), (9, 2), (10, 1)], ids=["2.6", "3.12", "3.14"]
)
def test_older_shorter_status_structs_leave_later_fields_none(fields: int, missing: int) -> None:
    status = decode_status(struct.pack(f"={fields}I", *STATUS_VALUES[:fields]))
    optional = (status.feature_bitmap, status.backlog_wait_time, status.backlog_wait_time_actual)
    assert optional == STATUS_VALUES[8:fields] + (None,) * missing
    assert status.backlog_limit == 64


def test_a_longer_future_status_is_read_up_to_what_is_known() -> None:
    status = decode_status(struct.pack("=13I", *STATUS_VALUES, 99, 98))
    assert status.backlog_wait_time_actual == 3


def test_a_status_shorter_than_the_oldest_layout_is_malformed() -> None:
    with pytest.raises(MalformedEventError):
        decode_status(struct.pack("=7I", *STATUS_VALUES[:7]))


def test_encode_status_writes_all_eleven_fields_and_zero_for_none() -> None:
    status = AuditStatus(mask=AuditStatusMask.ENABLED, enabled=1)
    assert encode_status(status) == struct.pack("=11I", 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def test_status_round_trip() -> None:
    status = decode_status(struct.pack("=11I", *STATUS_VALUES))
    assert decode_status(encode_status(status)) == status


def test_get_request_is_a_bare_request_header() -> None:
    assert encode_get_request(7) == NLMSGHDR.pack(16, 1000, NLM_F_REQUEST, 7, 0)


def test_set_request_asks_for_an_ack_and_carries_the_status() -> None:
    status = AuditStatus(mask=AuditStatusMask.ENABLED, enabled=0)
    expected = NLMSGHDR.pack(16 + 44, 1001, NLM_F_REQUEST | NLM_F_ACK, 8, 0)
    expected += struct.pack("=11I", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert encode_set_request(8, status) == expected


@given(st.integers(0, 0xFFFF), st.binary(max_size=300))
def test_any_record_payload_parses_or_is_malformed(type_: int, payload: bytes) -> None:
    try:
        record = parse_record(type_, payload)
    except MalformedEventError:
        return
    assert isinstance(record, AuditRecord)
    if record.type == AuditMessageType.LOGIN:
        with contextlib.suppress(MalformedEventError):
            parse_login(record)


LOGIN_KEYS = ["pid", "uid", "old-auid", "auid", "tty", "old-ses", "ses", "res", "subj"]
login_bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.tuples(
            st.sampled_from(LOGIN_KEYS),
            st.one_of(st.integers(-(2**33), 2**33).map(str), st.text(max_size=8)),
        ),
        max_size=12,
    ).map(lambda kv: " ".join(f"{k}={v}" for k, v in kv).encode("utf-8", "surrogatepass")),
)


@given(login_bodies)
def test_any_login_body_types_or_is_malformed(body: bytes) -> None:
    record = parse_record(1006, b"audit(1795261414.538:8): " + body)
    assert record.stamp == AuditStamp(1795261414, 538, 8)
    try:
        login = parse_login(record)
    except MalformedEventError:
        return
    assert 0 <= login.ses <= AUDIT_ID_UNSET


@given(st.text(max_size=200))
def test_any_line_parses_or_is_malformed(line: str) -> None:
    with contextlib.suppress(MalformedEventError):
        parse_record_line(line)


@given(st.binary(max_size=300))
def test_any_datagram_parses_or_is_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEventError):
        parse_datagram(data)


@given(st.binary(max_size=60))
def test_any_status_bytes_decode_or_are_malformed(data: bytes) -> None:
    try:
        decode_status(data)
    except MalformedEventError:
        assert len(data) < 32


keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="=\"'"))
values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\"'"))


@given(
    st.lists(st.tuples(keys.filter(bool), values), max_size=10),
    st.lists(st.tuples(keys.filter(bool), st.text(" abc=x", max_size=12)), max_size=3),
)
def test_fields_written_like_the_kernel_parse_back(
    bare: list[tuple[str, str]], quoted: list[tuple[str, str]]
) -> None:
    written = [f"{k}={v}" for k, v in bare] + [f'{k}="{v}"' for k, v in quoted]
    record = parse_record(1300, ("audit(5.006:7): " + " ".join(written)).encode())
    assert record.fields == tuple(bare + quoted)
