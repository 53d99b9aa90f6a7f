"""Processes and threads: what an I/O request's requestor is made of.

A :class:`Process` is a value: its identity is (pid, start_time), so a pid reused by a new
process is a different process, never mistaken for the old one. A :class:`Thread` is an object,
because KeStackAttachProcess changes which process it is attached to while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sessionio.model.ids import NO_SESSION, Pid, SessionId, Tid

__all__ = ["Process", "Thread"]


@dataclass(frozen=True, slots=True)
class Process:
    """A process as the kernel that made it saw it.

    ``session_id`` is NO_SESSION (-1) for a process that belongs to no session (the System
    process on Windows; daemons and kernel threads on Linux). The descriptive fields (name, exe,
    uid...) do not take part in equality: they describe, the (pid, start_time) pair identifies.
    """

    pid: Pid
    session_id: SessionId = NO_SESSION
    start_time: float = field(default=0.0)
    name: str = field(default="", compare=False)
    ppid: Pid | None = field(default=None, compare=False)
    uid: int | None = field(default=None, compare=False)
    login_uid: int | None = field(default=None, compare=False)
    exe: str | None = field(default=None, compare=False)
    cmdline: tuple[str, ...] = field(default=(), compare=False)
    tty: str | None = field(default=None, compare=False)

    @property
    def has_session(self) -> bool:
        return self.session_id != NO_SESSION


@dataclass(eq=False, slots=True)
class Thread:
    """A thread, owned by the process that created it, possibly attached to another.

    ``own_session_id`` is for Linux, where the audit session is per thread: a thread that wrote
    its own loginuid has its own session. It is None when the thread shares its process's
    session, which is always so on Windows.
    """

    tid: Tid
    process: Process
    attached_process: Process | None = None
    own_session_id: SessionId | None = None

    @property
    def current_process(self) -> Process:
        """``Thread->Tcb.ApcState.Process``: the attached process if attached, else the owner."""
        return self.attached_process if self.attached_process is not None else self.process

    @property
    def apc_state_index(self) -> int:
        """0 when running in its own process, 1 when attached (KeStackAttachProcess)."""
        return 0 if self.attached_process is None else 1

    @property
    def session_id(self) -> SessionId:
        """The session the thread acts for: its own (Linux), else its owning process's."""
        if self.own_session_id is not None:
            return self.own_session_id
        return self.process.session_id
