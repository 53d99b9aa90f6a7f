"""The pure parts of the file monitor: the mount table parser, which filesystems the default
mode marks, the operation table, and the record subscribers receive."""

from __future__ import annotations

import json
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from sessionio.ntdef.values import IRP_MJ
from sessionio.rules.schema import Operation, Verdict
from sessionio.runtime.attribution import Attribution
from sessionio.runtime.file_monitor import (
    DEFAULT_OPERATIONS,
    MAJOR_FUNCTIONS,
    OPERATIONS,
    PERMISSION_OPERATIONS,
    FileOperation,
    Outcome,
    filesystems_to_mark,
    parse_mounts,
)

MOUNTS = (
    "/dev/vda / ext4 rw,relatime 0 0\n"
    "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
    "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
    "tmpfs /run tmpfs rw,nosuid,nodev,size=1610800k,mode=755 0 0\n"
    "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
    "/dev/vdb /srv/my\\040data xfs rw,relatime 0 0\n"
    "sshfs#bob@host: /mnt/remote fuse.sshfs rw,nosuid,nodev 0 0\n"
    "devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620 0 0\n"
    "/dev/vda /home ext4 rw,relatime 0 0\n"
)


def test_parse_mounts_unescapes_mount_points() -> None:
    mounts = parse_mounts(MOUNTS)

    assert mounts[0] == ("/", "ext4")
    assert ("/srv/my data", "xfs") in mounts
    assert len(mounts) == 9


def test_the_default_mode_marks_real_filesystems_root_first() -> None:
    chosen = filesystems_to_mark(parse_mounts(MOUNTS))

    # /home is the same filesystem as /: the monitor skips it by device when marking.
    assert chosen == ["/", "/run", "/srv/my data", "/home"]


@given(st.text(max_size=300))
def test_parse_mounts_never_fails(text: str) -> None:
    for mount_point, fstype in parse_mounts(text):
        assert isinstance(mount_point, str) and isinstance(fstype, str)


def test_every_operation_has_the_documented_major_function() -> None:
    assert set(OPERATIONS) == {op.value for op in Operation}
    assert MAJOR_FUNCTIONS == {
        "open": IRP_MJ.IRP_MJ_CREATE,
        "read": IRP_MJ.IRP_MJ_READ,
        "exec": IRP_MJ.IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION,
        "modify": IRP_MJ.IRP_MJ_WRITE,
        "close_write": IRP_MJ.IRP_MJ_CLEANUP,
        "create": IRP_MJ.IRP_MJ_CREATE,
        "delete": IRP_MJ.IRP_MJ_SET_INFORMATION,
        "rename": IRP_MJ.IRP_MJ_SET_INFORMATION,
    }
    assert {"open", "exec", "read"} == PERMISSION_OPERATIONS
    assert "read" not in DEFAULT_OPERATIONS  # a permission event per read() is opt-in


def test_a_record_is_one_flat_json_object() -> None:
    op = FileOperation(
        time=1_795_262_585.25,
        operation="open",
        path="/srv/payroll/march.csv",
        pid=4242,
        tid=4243,
        comm="cat",
        exe="/usr/bin/cat",
        uid=1000,
        euid=1000,
        session_id=7,
        attribution=Attribution.REMEMBERED,
        verdict=Verdict.DENY,
        outcome=Outcome.DECIDED,
        user="alice",
        login_uid=1000,
        login_user="alice",
    )

    row = json.loads(json.dumps(op.as_row()))

    assert row["op"] == "open" and row["path"] == "/srv/payroll/march.csv"
    assert (row["pid"], row["tid"], row["session"]) == (4242, 4243, 7)
    assert (row["attribution"], row["verdict"], row["outcome"]) == ("remembered", "deny", "decided")
    assert datetime.fromisoformat(row["time"]).timestamp() == op.time  # with its UTC offset
    assert not op.is_overflow
