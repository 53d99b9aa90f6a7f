"""The /proc text formats, from golden bytes written as the kernel prints them, and fuzzed."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionio.errors import MalformedEventError
from sessionio.protocols.procfs import (
    AUDIT_ID_UNSET,
    IdSet,
    parse_boot_time,
    parse_cgroup,
    parse_cmdline,
    parse_id,
    parse_stat,
    parse_status,
    tty_name,
)

# /proc/4867/stat of `cat` on the 6.18 VM, as read.
CAT_STAT = (
    b"4867 (cat) R 4865 4865 3223 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 44771 3133440 380 "
    b"18446744073709551615 94448999575552 94448999595433 140734731549072 0 0 0 0 0 0 0 0 0 17 "
    b"0 0 0 0 0 0 94448999611440 94448999613056 94449754439680 140734731553506 140734731553526 "
    b"140734731553526 140734731554795 0\n"
)


def stat_line(
    pid: int = 42,
    comm: bytes = b"bash",
    *,
    ppid: int = 1,
    session: int = 40,
    tty_nr: int = 34816,
    num_threads: int = 3,
    starttime: int = 123456,
) -> bytes:
    """A stat line with the given fields in their proc_pid_stat(5) positions."""
    fields = [b"S", ppid, 41, session, tty_nr, 41, 4194304, 0, 0, 0, 0, 7, 5, 0, 0, 20, 0]
    fields += [num_threads, 0, starttime, 1000, 200]
    rest = b" ".join(f if isinstance(f, bytes) else str(f).encode() for f in fields)
    return b"%d (%s) %s\n" % (pid, comm, rest)


def test_parse_stat_reads_the_fields_of_a_real_line() -> None:
    stat = parse_stat(CAT_STAT)
    assert (stat.pid, stat.comm, stat.state) == (4867, "cat", "R")
    assert (stat.ppid, stat.pgrp, stat.session, stat.tty_nr, stat.tpgid) == (
        4865,
        4865,
        3223,
        0,
        -1,
    )
    assert (stat.num_threads, stat.starttime) == (1, 44771)


def test_parse_stat_cuts_comm_at_the_last_parenthesis() -> None:
    stat = parse_stat(stat_line(7, b") S 1 (evil) ", starttime=99))
    assert stat.comm == ") S 1 (evil) "
    assert (stat.pid, stat.ppid, stat.starttime) == (7, 1, 99)


def test_parse_stat_keeps_undecodable_comm_bytes() -> None:
    stat = parse_stat(stat_line(comm=b"\xff\xfe x"))
    assert os.fsencode(stat.comm) == b"\xff\xfe x"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"42 bash S 1",  # no parentheses
        stat_line().rsplit(b" ", 5)[0],  # truncated before starttime
        stat_line().replace(b"(bash) S", b"(bash) 9"),  # state is not a letter
        stat_line().replace(b" 123456 ", b" 12_3456 "),  # int() would accept it
        b"x" + stat_line(),  # pid is not a number
    ],
)
def test_parse_stat_refuses_malformed_lines(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_stat(data)


STATUS = b"""Name:\tcat
Umask:\t0022
State:\tR (running)
Tgid:\t4868
Ngid:\t0
Pid:\t4868
PPid:\t4865
TracerPid:\t0
Uid:\t1000\t1001\t1002\t1003
Gid:\t100\t101\t102\t103
FDSize:\t256
Groups:\t
Threads:\t1
"""


def test_parse_status_reads_ids_and_parents() -> None:
    status = parse_status(STATUS)
    assert (status.name, status.state) == ("cat", "R")
    assert (status.tgid, status.pid, status.ppid, status.threads) == (4868, 4868, 4865, 1)
    assert status.uids == IdSet(real=1000, effective=1001, saved=1002, fs=1003)
    assert status.gids == IdSet(100, 101, 102, 103)


def test_parse_status_takes_the_first_line_of_a_key_at_a_line_start() -> None:
    # "Uid:" inside a value is not a line; a repeated key keeps its first value.
    data = STATUS.replace(b"Name:\tcat", b"Name:\tx Uid:\t1 2 3 4") + b"Uid:\t7\t7\t7\t7\n"
    status = parse_status(data)
    assert status.name == "x Uid:\t1 2 3 4"
    assert status.uids == IdSet(real=1000, effective=1001, saved=1002, fs=1003)
    assert parse_status(data.rstrip(b"\n")).uids.real == 1000  # no final newline needed


@pytest.mark.parametrize(
    "data",
    [
        STATUS.replace(b"PPid:\t4865\n", b""),
        STATUS.replace(b"\nGid:", b"\nXGid:"),
        STATUS.replace(b"Uid:\t1000\t1001\t1002\t1003", b"Uid:\t1000\t1001"),
        STATUS.replace(b"Tgid:\t4868", b"Tgid:\tabc"),
        STATUS.replace(b"State:\tR (running)", b"State:\t"),
    ],
)
def test_parse_status_refuses_missing_or_bad_fields(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_status(data)


def test_parse_id_maps_the_unset_value_to_none() -> None:
    assert AUDIT_ID_UNSET == 2**32 - 1
    assert parse_id(b"4294967295") is None
    assert parse_id(b"17") == 17
    assert parse_id(b"1000\n") == 1000
    assert parse_id(b"0") == 0


@pytest.mark.parametrize("data", [b"", b"-1", b"4294967296", b"12 ", b"0x10", b"1 2"])
def test_parse_id_refuses_what_is_not_a_u32(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_id(data)


def test_parse_cmdline_splits_on_nul() -> None:
    assert parse_cmdline(b"/bin/sh\0-c\0echo hi\0") == ["/bin/sh", "-c", "echo hi"]
    assert parse_cmdline(b"") == []
    assert parse_cmdline(b"\0") == [""]
    assert parse_cmdline(b"nginx: worker process") == ["nginx: worker process"]
    assert parse_cmdline(b"a\0\0b\0") == ["a", "", "b"]


CGROUP_V2 = b"0::/user.slice/user-1000.slice/session-12.scope\n"
CGROUP_V1 = (
    b"12:pids:/user.slice/user-1000.slice/session-3.scope\n"
    b"4:memory:/process_api/5b56\n"
    b"1:name=systemd:/user.slice/user-1000.slice/session-c2.scope\n"
)


def test_parse_cgroup_finds_the_logind_session_scope() -> None:
    assert parse_cgroup(CGROUP_V2) == "12"
    assert parse_cgroup(CGROUP_V1) == "c2"  # name=systemd, not another controller's path
    assert parse_cgroup(b"0::/user.slice/user-1000.slice/session-4.scope/sub\n") == "4"


def test_parse_cgroup_outside_a_session_is_none() -> None:
    assert parse_cgroup(b"0::/\n") is None
    assert parse_cgroup(b"0::/system.slice/sshd.service\n") is None
    assert parse_cgroup(b"0::/user.slice/user-1000.slice/user@1000.service/app.slice\n") is None
    assert parse_cgroup(b"") is None


@pytest.mark.parametrize("data", [b"garbage\n", b"x::/\n", b"0:/\n"])
def test_parse_cgroup_refuses_lines_without_three_fields(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_cgroup(data)


def test_parse_boot_time_reads_btime() -> None:
    assert parse_boot_time(b"cpu  1 2 3\nintr 5\nbtime 1795262585\nprocesses 9\n") == 1795262585
    with pytest.raises(MalformedEventError):
        parse_boot_time(b"cpu  1 2 3\n")


@pytest.mark.parametrize(
    ("tty_nr", "name"),
    [
        (0, None),
        (34816, "pts/0"),  # major 136, minor 0
        (34819, "pts/3"),
        (35072, "pts/256"),  # major 137
        (1025, "tty1"),  # major 4
        (1088, "ttyS0"),  # major 4, minor 64
        (1281, "console"),  # major 5, minor 1
        (48128, "ttyUSB0"),  # major 188
        (os.makedev(250, 3), "250:3"),
    ],
)
def test_tty_name_decodes_the_device_number(tty_nr: int, name: str | None) -> None:
    assert tty_name(tty_nr) == name


@given(st.binary(max_size=600))
def test_parsers_either_parse_or_raise_malformed(data: bytes) -> None:
    for parse in (parse_stat, parse_status, parse_id, parse_cgroup, parse_boot_time):
        with contextlib.suppress(MalformedEventError):
            parse(data)
    assert isinstance(parse_cmdline(data), list)


@given(
    pid=st.integers(1, 2**22),
    comm=st.binary(max_size=15).filter(lambda c: b"\n" not in c),
    ppid=st.integers(0, 2**22),
    starttime=st.integers(0, 2**63),
    num_threads=st.integers(1, 10_000),
)
def test_parse_stat_round_trips_any_comm(
    pid: int, comm: bytes, ppid: int, starttime: int, num_threads: int
) -> None:
    stat = parse_stat(stat_line(pid, comm, ppid=ppid, starttime=starttime, num_threads=num_threads))
    assert os.fsencode(stat.comm) == comm
    assert (stat.pid, stat.ppid, stat.starttime, stat.num_threads) == (
        pid,
        ppid,
        starttime,
        num_threads,
    )


@given(st.integers(0, 2**32 - 2))
def test_parse_id_round_trips_every_set_value(value: int) -> None:
    assert parse_id(str(value).encode()) == value
