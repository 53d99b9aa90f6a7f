"""The proc connector's wire format (linux/connector.h, linux/cn_proc.h), without a socket.

The kernel multicasts one netlink message of type ``NLMSG_DONE`` per process event, holding a
``struct cn_msg`` (20 bytes: ``{u32 idx; u32 val}`` callback id, ``u32 seq``, ``u32 ack``,
``u16 len``, ``u16 flags``) followed by a ``struct proc_event`` (``u32 what``, ``u32 cpu``,
``u64 timestamp_ns`` in nanoseconds since boot, then a union chosen by ``what``).

sessionio uses it to keep a process -> session table: a session's first process is seen at FORK
or EXEC, its last one at EXIT. There is no loginuid or sessionid event: read
``/proc/PID/sessionid`` when a process appears.

Pids follow the user's point of view, as cn_proc.h explains: ``*_tgid`` is the process id
(:class:`~sessionio.model.ids.Pid`) and ``*_pid`` the thread id
(:class:`~sessionio.model.ids.Tid`). A thread's fork or exit therefore has ``pid != tgid``. The
group leader's EXIT (``pid == tgid``) normally ends the process; a leader that leaves by
pthread_exit(3) while other threads run sends it early, so confirm with /proc when it matters.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from sessionio.errors import MalformedEventError
from sessionio.model.ids import Pid, Tid
from sessionio.protocols.netlink import (
    NetlinkAck,
    NlmsgType,
    encode_message,
    parse_messages,
)

__all__ = [
    "CN_IDX_PROC",
    "CN_VAL_PROC",
    "Ack",
    "ProcCnMcastOp",
    "ProcEvent",
    "ProcEventWhat",
    "ProcessComm",
    "ProcessCoredump",
    "ProcessExec",
    "ProcessExit",
    "ProcessFork",
    "ProcessGid",
    "ProcessPtrace",
    "ProcessSid",
    "ProcessUid",
    "UnknownProcEvent",
    "encode_listen",
    "parse_datagram",
]

CN_IDX_PROC = 1
"""CN_IDX_PROC: the connector index of the proc connector, also its multicast group."""
CN_VAL_PROC = 1
"""CN_VAL_PROC: the connector value of the proc connector."""

_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEADER = struct.Struct("=IIQ")
_OP = struct.Struct("=I")


class ProcCnMcastOp(enum.IntEnum):
    """``enum proc_cn_mcast_op``: what a listener tells the kernel."""

    LISTEN = 1
    """PROC_CN_MCAST_LISTEN: start generating events for this socket."""
    IGNORE = 2
    """PROC_CN_MCAST_IGNORE: stop."""


class ProcEventWhat(enum.IntFlag):
    """``enum what`` of ``struct proc_event`` (``PROC_EVENT_*``).

    The values are single bits so that a set of events is a mask (used by the event filter of
    ``struct proc_input``). Every event the kernel sends has exactly one bit set, or none for an
    acknowledgement. ``NONZERO_EXIT`` is a filter bit only: exits always arrive as ``EXIT``.
    """

    NONE = 0x00000000
    """PROC_EVENT_NONE: the acknowledgement of a LISTEN or IGNORE request."""
    FORK = 0x00000001
    """PROC_EVENT_FORK."""
    EXEC = 0x00000002
    """PROC_EVENT_EXEC."""
    UID = 0x00000004
    """PROC_EVENT_UID: real or effective uid changed."""
    GID = 0x00000040
    """PROC_EVENT_GID: real or effective gid changed."""
    SID = 0x00000080
    """PROC_EVENT_SID: setsid(2); the POSIX session, not the audit session."""
    PTRACE = 0x00000100
    """PROC_EVENT_PTRACE: attach or detach."""
    COMM = 0x00000200
    """PROC_EVENT_COMM: the command name changed."""
    NONZERO_EXIT = 0x20000000
    """PROC_EVENT_NONZERO_EXIT: filter bit, "exits with a non-zero code only" (Linux 6.6)."""
    COREDUMP = 0x40000000
    """PROC_EVENT_COREDUMP."""
    EXIT = 0x80000000
    """PROC_EVENT_EXIT: a thread exited (the process, when ``pid == tgid``)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """PROC_EVENT_NONE: the kernel's answer to a LISTEN or IGNORE request.

    The kernel multicasts it to every listener, so a listener also sees the answers to other
    sockets' requests. ``ack`` is the request's ``cn_msg.ack`` plus one (modulo 2**32), which is
    how a request is matched to its answer. ``seq`` echoed the request's ``seq`` on old kernels;
    current ones overwrite it with their per-CPU event counter, so it identifies nothing. ``err``
    is a positive errno, 0 on success (EPERM from kernels that demanded CAP_NET_ADMIN, EINVAL for
    an unknown operation).
    """

    cpu: int
    timestamp_ns: int
    seq: int
    ack: int
    err: int


@dataclass(frozen=True, slots=True)
class ProcessFork:
    """PROC_EVENT_FORK: ``parent`` created ``child`` (a thread when ``child_pid != child_tgid``)."""

    cpu: int
    timestamp_ns: int
    parent_pid: Tid
    parent_tgid: Pid
    child_pid: Tid
    child_tgid: Pid


@dataclass(frozen=True, slots=True)
class ProcessExec:
    """PROC_EVENT_EXEC: the process replaced its program (the audit session is kept)."""

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid


@dataclass(frozen=True, slots=True)
class ProcessUid:
    """PROC_EVENT_UID: the real or effective uid changed (the loginuid does not)."""

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid
    ruid: int
    euid: int


@dataclass(frozen=True, slots=True)
class ProcessGid:
    """PROC_EVENT_GID: the real or effective gid changed."""

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid
    rgid: int
    egid: int


@dataclass(frozen=True, slots=True)
class ProcessSid:
    """PROC_EVENT_SID: the process called setsid(2): the POSIX session, not the audit one."""

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid


@dataclass(frozen=True, slots=True)
class ProcessPtrace:
    """PROC_EVENT_PTRACE: a tracer attached; ``tracer_pid == tracer_tgid == 0`` means detached."""

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid
    tracer_pid: Tid
    tracer_tgid: Pid


@dataclass(frozen=True, slots=True)
class ProcessComm:
    """PROC_EVENT_COMM: the command name changed (prctl PR_SET_NAME, or a thread name).

    ``comm`` is at most 15 bytes, cut at the first NUL and decoded as UTF-8 with
    ``surrogateescape`` (it is whatever the process set, possibly cut inside a character).
    """

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid
    comm: str


@dataclass(frozen=True, slots=True)
class ProcessCoredump:
    """PROC_EVENT_COREDUMP: the process is dumping core; its EXIT follows."""

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid
    parent_pid: Tid
    parent_tgid: Pid


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """PROC_EVENT_EXIT: a thread exited; the group leader when ``pid == tgid`` (see the module).

    ``exit_code`` is the raw wait status (``0x300`` is "exited with 3"); :attr:`returncode` reads
    it the way :mod:`subprocess` does. ``exit_signal`` is the signal the parent gets (SIGCHLD,
    17, for an ordinary process; -1 for a thread, which signals nobody). ``parent_*`` is the real
    parent at exit time (a reaper after reparenting).
    """

    cpu: int
    timestamp_ns: int
    pid: Tid
    tgid: Pid
    exit_code: int
    exit_signal: int
    parent_pid: Tid
    parent_tgid: Pid

    @property
    def returncode(self) -> int:
        """The exit status, or the negated signal number when a signal killed it."""
        signal = self.exit_code & 0x7F
        if signal:
            return -signal
        return (self.exit_code >> 8) & 0xFF


@dataclass(frozen=True, slots=True)
class UnknownProcEvent:
    """An event whose ``what`` this version does not know; ``data`` is the raw union bytes.

    Newer kernels may add events; returning them instead of failing keeps a listener running.
    """

    cpu: int
    timestamp_ns: int
    what: int
    data: bytes


ProcEvent: TypeAlias = (
    Ack
    | ProcessFork
    | ProcessExec
    | ProcessUid
    | ProcessGid
    | ProcessSid
    | ProcessPtrace
    | ProcessComm
    | ProcessCoredump
    | ProcessExit
    | UnknownProcEvent
)
"""Everything :func:`parse_datagram` returns; dispatch with ``match``."""


# ``struct proc_event`` unions: the layout of each event's data and the class it becomes. The
# classes take ``cpu, timestamp_ns`` and then the layout's fields, in the kernel's order.
_ACK = struct.Struct("=I")
_COMM = struct.Struct("=ii16s")
_LAYOUTS: dict[int, tuple[struct.Struct, Callable[..., ProcEvent]]] = {
    ProcEventWhat.FORK: (struct.Struct("=iiii"), ProcessFork),
    ProcEventWhat.EXEC: (struct.Struct("=ii"), ProcessExec),
    ProcEventWhat.UID: (struct.Struct("=iiII"), ProcessUid),
    ProcEventWhat.GID: (struct.Struct("=iiII"), ProcessGid),
    ProcEventWhat.SID: (struct.Struct("=ii"), ProcessSid),
    ProcEventWhat.PTRACE: (struct.Struct("=iiii"), ProcessPtrace),
    ProcEventWhat.COREDUMP: (struct.Struct("=iiii"), ProcessCoredump),
    ProcEventWhat.EXIT: (struct.Struct("=iiIiii"), ProcessExit),
}


def _unpack(layout: struct.Struct, data: bytes, what: int) -> tuple[Any, ...]:
    if len(data) < layout.size:
        raise MalformedEventError(
            f"proc connector event {what:#x} has {len(data)} data bytes, needs {layout.size}"
        )
    return layout.unpack_from(data)


def _decode_event(
    cpu: int, timestamp_ns: int, what: int, data: bytes, seq: int, ack: int
) -> ProcEvent:
    if what == ProcEventWhat.NONE:
        (err,) = _unpack(_ACK, data, what)
        return Ack(cpu, timestamp_ns, seq, ack, err)
    if what == ProcEventWhat.COMM:
        pid, tgid, raw = _unpack(_COMM, data, what)
        comm = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return ProcessComm(cpu, timestamp_ns, pid, tgid, comm)
    known = _LAYOUTS.get(what)
    if known is None:
        return UnknownProcEvent(cpu, timestamp_ns, what, data)
    layout, event_class = known
    return event_class(cpu, timestamp_ns, *_unpack(layout, data, what))


def _decode_cn_msg(payload: bytes) -> ProcEvent | None:
    if len(payload) < _CN_MSG.size:
        raise MalformedEventError(
            f"connector message has {len(payload)} bytes, shorter than a cn_msg ({_CN_MSG.size})"
        )
    idx, val, seq, ack, length, _flags = _CN_MSG.unpack_from(payload)
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
        return None
    body = payload[_CN_MSG.size :]
    if length > len(body):
        raise MalformedEventError(
            f"cn_msg announces {length} data bytes but the message holds {len(body)}"
        )
    if length < _EVENT_HEADER.size:
        raise MalformedEventError(
            f"proc_event has {length} bytes, shorter than its header ({_EVENT_HEADER.size})"
        )
    what, cpu, timestamp_ns = _EVENT_HEADER.unpack_from(body)
    data = body[_EVENT_HEADER.size : length]
    return _decode_event(cpu, timestamp_ns, what, data, seq, ack)


def parse_datagram(data: bytes) -> list[ProcEvent]:
    """Decode one datagram received on a proc connector socket into its events, in order.

    Connector messages addressed to other connector users (another callback id) are skipped:
    they are not proc events. Raises :class:`~sessionio.errors.MalformedEventError` on bytes that
    do not parse, and on netlink message types the connector never sends (anything but
    ``NLMSG_DONE``). An unknown ``what`` is returned as :class:`UnknownProcEvent`.
    """
    events: list[ProcEvent] = []
    for item in parse_messages(data):
        if isinstance(item, NetlinkAck):
            raise MalformedEventError(
                f"unexpected NLMSG_ERROR (errno {item.errno}) on the proc connector"
            )
        if item.type != NlmsgType.DONE:
            raise MalformedEventError(
                f"unexpected netlink message type {item.type} on the proc connector"
            )
        event = _decode_cn_msg(item.payload)
        if event is not None:
            events.append(event)
    return events


def encode_listen(pid: int, listen: bool, *, seq: int = 0, ack: int = 0) -> bytes:
    """Build the request that subscribes (``listen=True``) or unsubscribes a socket.

    ``pid`` is the socket's netlink port id (``getsockname()[0]``), written in the netlink header.
    ``seq`` goes in the netlink header and ``cn_msg.seq``, ``ack`` in ``cn_msg.ack``: the kernel's
    :class:`Ack` answers with ``ack + 1``, the one value that survives into its answer on every
    kernel. The request is the classic 4-byte operation, which subscribes to every event type.
    """
    op = ProcCnMcastOp.LISTEN if listen else ProcCnMcastOp.IGNORE
    body = _OP.pack(op)
    cn_msg = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, seq, ack, len(body), 0) + body
    return encode_message(NlmsgType.DONE, 0, seq, pid, cn_msg)
