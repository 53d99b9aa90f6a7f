"""The text formats of /proc/PID/*: bytes in, typed values out (no file is opened here).

Reading is ``sessionio.linux.procfs``'s job; this module only knows the formats, so every one of
them is unit-tested from golden bytes and fuzzed. Field positions are those of proc_pid_stat(5)
and proc_pid_status(5); byte strings the kernel does not constrain (comm, cmdline, cgroup paths)
are decoded with ``surrogateescape`` so that no byte is lost and no input makes decoding fail.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Final

from sessionio.errors import MalformedEventError
from sessionio.protocols.audit import AUDIT_ID_UNSET

__all__ = [
    "AUDIT_ID_UNSET",
    "IdSet",
    "ProcStat",
    "ProcStatus",
    "parse_boot_time",
    "parse_cgroup",
    "parse_cmdline",
    "parse_id",
    "parse_stat",
    "parse_status",
    "tty_name",
]

"""AUDIT_SID_UNSET / AUDIT_UID_UNSET, ``(u32)-1``: the loginuid or sessionid was never set.

Daemons and kernel threads have it; ``parse_id`` turns it into ``None``.
"""

_U32_MAX: Final = 0xFFFFFFFF
_DECIMAL = re.compile(rb"-?[0-9]+")
_UNSIGNED = re.compile(rb"[0-9]+")
_SESSION_SCOPE = re.compile(r"session-([A-Za-z0-9]+)\.scope")

# Indexes into the fields after "pid (comm) ": index 0 is field 3 (state) of proc_pid_stat(5).
_STAT_STATE = 0
_STAT_PPID = 1
_STAT_PGRP = 2
_STAT_SESSION = 3
_STAT_TTY_NR = 4
_STAT_TPGID = 5
_STAT_UTIME = 11
_STAT_STIME = 12
_STAT_NUM_THREADS = 17
_STAT_STARTTIME = 19


@dataclass(frozen=True, slots=True)
class ProcStat:
    """/proc/PID/stat, the fields sessionio uses.

    ``session`` is the getsid() process-group session (the "windowing" session of setsid), not
    the audit session: that one is ``/proc/PID/sessionid``. ``starttime`` is in clock ticks
    since boot and, with the pid, identifies a process: a reused pid has another starttime.
    """

    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    tty_nr: int
    tpgid: int
    utime: int
    stime: int
    num_threads: int
    starttime: int


@dataclass(frozen=True, slots=True)
class IdSet:
    """The four ids of a ``Uid:`` or ``Gid:`` line of /proc/PID/status."""

    real: int
    effective: int
    saved: int
    fs: int


@dataclass(frozen=True, slots=True)
class ProcStatus:
    """/proc/PID/status, the fields sessionio uses.

    ``name`` is as the kernel prints it there (escaped: a newline in comm shows as ``\\n``); the
    raw comm is ``ProcStat.comm``.
    """

    name: str
    state: str
    tgid: int
    pid: int
    ppid: int
    uids: IdSet
    gids: IdSet
    threads: int


def _int(field: bytes, what: str, *, signed: bool = True) -> int:
    """Parse one decimal field strictly: ``int()`` alone would also take "1_0" and " 1"."""
    pattern = _DECIMAL if signed else _UNSIGNED
    if pattern.fullmatch(field) is None:
        raise MalformedEventError(f"{what}: {field[:40]!r} is not a decimal number")
    try:
        return int(field)
    except ValueError as err:  # more digits than int() converts (sys.int_info)
        raise MalformedEventError(f"{what}: number too long") from err


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def parse_stat(data: bytes) -> ProcStat:
    """Parse /proc/PID/stat (or task/TID/stat).

    comm may hold spaces and parentheses, so it runs from the first "(" to the LAST ")" (as
    psutil and procps cut it); everything after is space-separated numbers and the state letter.
    """
    lparen = data.find(b"(")
    rparen = data.rfind(b")")
    if lparen < 0 or rparen < lparen:
        raise MalformedEventError("stat: no '(comm)'")
    pid = _int(data[:lparen].strip(b" "), "stat pid", signed=False)
    comm = _text(data[lparen + 1 : rparen])
    fields = data[rparen + 1 :].split()
    if len(fields) <= _STAT_STARTTIME:
        need = _STAT_STARTTIME + 1
        raise MalformedEventError(f"stat: {len(fields)} fields after comm, need {need}")
    state = fields[_STAT_STATE]
    if len(state) != 1 or not state.isalpha():
        raise MalformedEventError(f"stat: state {state[:10]!r} is not one letter")
    return ProcStat(
        pid=pid,
        comm=comm,
        state=state.decode("ascii"),
        ppid=_int(fields[_STAT_PPID], "stat ppid"),
        pgrp=_int(fields[_STAT_PGRP], "stat pgrp"),
        session=_int(fields[_STAT_SESSION], "stat session"),
        tty_nr=_int(fields[_STAT_TTY_NR], "stat tty_nr"),
        tpgid=_int(fields[_STAT_TPGID], "stat tpgid"),
        utime=_int(fields[_STAT_UTIME], "stat utime", signed=False),
        stime=_int(fields[_STAT_STIME], "stat stime", signed=False),
        num_threads=_int(fields[_STAT_NUM_THREADS], "stat num_threads", signed=False),
        starttime=_int(fields[_STAT_STARTTIME], "stat starttime", signed=False),
    )


def _id_set(value: bytes, what: str) -> IdSet:
    parts = value.split()
    if len(parts) != 4:
        raise MalformedEventError(f"status {what}: expected 4 ids, got {len(parts)}")
    real, effective, saved, fs = (_int(p, f"status {what}", signed=False) for p in parts)
    return IdSet(real, effective, saved, fs)


_STATUS_KEYS: Final = (b"Name", b"State", b"Tgid", b"Pid", b"PPid", b"Uid", b"Gid", b"Threads")


def _status_field(data: bytes, key: bytes) -> bytes:
    """The value of the first ``key:`` line, stripped of spaces and tabs."""
    if data.startswith(key + b":"):
        start = len(key) + 1
    else:
        found = data.find(b"\n" + key + b":")
        if found < 0:
            raise MalformedEventError(f"status: no {key!r} line")
        start = found + len(key) + 2
    end = data.find(b"\n", start)
    return data[start : None if end < 0 else end].strip(b" \t")


def parse_status(data: bytes) -> ProcStatus:
    """Parse /proc/PID/status: ``Key:<TAB>value`` lines, of which only a few are kept (the
    first line of each key; the others are never split: this runs on the permission path)."""
    name, state, tgid, pid, ppid, uid, gid, threads = (
        _status_field(data, key) for key in _STATUS_KEYS
    )
    if not state[:1].isalpha():
        raise MalformedEventError(f"status: state {state[:10]!r} does not start with a letter")
    return ProcStatus(
        name=_text(name),
        state=state[:1].decode("ascii"),
        tgid=_int(tgid, "status Tgid", signed=False),
        pid=_int(pid, "status Pid", signed=False),
        ppid=_int(ppid, "status PPid", signed=False),
        uids=_id_set(uid, "Uid"),
        gids=_id_set(gid, "Gid"),
        threads=_int(threads, "status Threads", signed=False),
    )


def parse_id(data: bytes) -> int | None:
    """Parse /proc/PID/sessionid or /proc/PID/loginuid (a u32, printed without a newline).

    ``None`` when unset (``AUDIT_ID_UNSET``): the process belongs to no audit session.
    """
    value = _int(data.strip(b"\n"), "audit id", signed=False)
    if value > _U32_MAX:
        raise MalformedEventError(f"audit id: {value} does not fit in 32 bits")
    return None if value == AUDIT_ID_UNSET else value


def parse_cmdline(data: bytes) -> list[str]:
    """Parse /proc/PID/cmdline: NUL-terminated arguments; empty for kernel threads and zombies.

    A process that rewrote its argument area may leave no final NUL; the last argument is then
    whatever follows the last NUL. Any bytes parse.
    """
    if not data:
        return []
    args = data.split(b"\0")
    if data.endswith(b"\0"):
        args.pop()
    return [_text(a) for a in args]


def parse_cgroup(data: bytes) -> str | None:
    """The systemd-logind session id from /proc/PID/cgroup, or ``None`` outside a session scope.

    logind puts each session's processes in ``session-ID.scope`` (cg_path_get_session); that is
    the *logind* session, which equals the audit session only when pam_loginuid ran. The unified
    (``0::``) hierarchy is preferred, then cgroup v1's ``name=systemd``.
    """
    paths: dict[str, str] = {}
    for line in data.split(b"\n"):
        if not line:
            continue
        parts = line.split(b":", 2)
        if len(parts) != 3:
            raise MalformedEventError(f"cgroup: {line[:60]!r} is not 'id:controllers:path'")
        _int(parts[0], "cgroup hierarchy id", signed=False)
        paths.setdefault(_text(parts[1]), _text(parts[2]))
    for controllers in ("", "name=systemd"):
        path = paths.get(controllers)
        if path is None:
            continue
        for component in path.split("/"):
            match = _SESSION_SCOPE.fullmatch(component)
            if match is not None:
                return match.group(1)
    return None


def parse_boot_time(data: bytes) -> int:
    """The ``btime`` line of /proc/stat: boot time in seconds since the epoch."""
    for line in data.split(b"\n"):
        if line.startswith(b"btime "):
            return _int(line[len(b"btime ") :].strip(), "stat btime", signed=False)
    raise MalformedEventError("/proc/stat: no btime line")


_TTY_MAJOR: Final = 4  # tty0-63 are virtual consoles, 64-255 ttyS serial ports
_TTYAUX_MAJOR: Final = 5  # /dev/tty, /dev/console, /dev/ptmx
_UNIX98_PTY_SLAVE_MAJOR: Final = 136  # 136-143: /dev/pts/N
_UNIX98_PTY_MAJOR_COUNT: Final = 8
_NAMED_MAJORS: Final = {166: "ttyACM", 188: "ttyUSB", 229: "hvc"}


def tty_name(tty_nr: int) -> str | None:
    """The /dev name of a stat ``tty_nr`` ("pts/3", "tty1", "ttyS0"), ``None`` without a tty.

    tty_nr is the kernel's new_encode_dev() of the controlling terminal. Majors of
    Documentation/admin-guide/devices.txt that logins use are known; any other terminal is
    named ``"MAJOR:MINOR"`` rather than guessed.
    """
    dev = tty_nr & _U32_MAX
    if dev == 0:
        return None
    major, minor = os.major(dev), os.minor(dev)
    if major == _TTY_MAJOR:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if _UNIX98_PTY_SLAVE_MAJOR <= major < _UNIX98_PTY_SLAVE_MAJOR + _UNIX98_PTY_MAJOR_COUNT:
        return f"pts/{(major - _UNIX98_PTY_SLAVE_MAJOR) * 256 + minor}"
    if major == _TTYAUX_MAJOR and minor <= 2:
        return ("tty", "console", "ptmx")[minor]
    if major in _NAMED_MAJORS:
        return f"{_NAMED_MAJORS[major]}{minor}"
    return f"{major}:{minor}"
