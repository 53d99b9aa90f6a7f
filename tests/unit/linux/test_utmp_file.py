"""Reading a utmp file: current logins only, and silence when the file does not exist."""

from __future__ import annotations

import struct
from pathlib import Path

from sessionio.linux.utmp import read_utmp, user_processes
from sessionio.protocols.utmp import UTMP_FORMAT, UtmpType


def record(ut_type: UtmpType, user: bytes, line: bytes, pid: int) -> bytes:
    addr = (0, 0, 0, 0)
    return struct.pack(
        UTMP_FORMAT, ut_type, pid, line, line[-4:], user, b"", 0, 0, pid, 1_795_262_585, 0, *addr
    )


def test_user_processes_are_the_current_logins(tmp_path: Path) -> None:
    utmp = tmp_path / "utmp"
    utmp.write_bytes(
        record(UtmpType.BOOT_TIME, b"reboot", b"~", 0)
        + record(UtmpType.USER_PROCESS, b"alice", b"pts/0", 100)
        + record(UtmpType.DEAD_PROCESS, b"", b"pts/1", 200)
        + record(UtmpType.USER_PROCESS, b"bob", b"tty1", 300)
    )
    assert len(read_utmp(utmp)) == 4
    assert [(r.user, r.line, r.pid) for r in user_processes(utmp)] == [
        ("alice", "pts/0", 100),
        ("bob", "tty1", 300),
    ]


def test_a_missing_file_means_no_logins(tmp_path: Path) -> None:
    assert user_processes(tmp_path / "absent") == []
    assert read_utmp(tmp_path / "absent") == []
