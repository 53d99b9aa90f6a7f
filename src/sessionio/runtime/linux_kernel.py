"""LinuxKernel: the model's Kernel over the live Linux kernel.

Processes come from /proc (``sessionio.linux.procfs``), sessions are audit sessions, and the
filter manager and notification registry are the model's own, fed by the services in this
package (fanotify for I/O, the proc connector / audit / logind for session changes). Live code
always runs at PASSIVE_LEVEL and with Vista semantics: a Linux requestor is never "attached".
"""

from __future__ import annotations

import functools
import os
import pwd

from sessionio.errors import AccessDenied, NoSuchProcess
from sessionio.linux.procfs import ProcessSnapshot, ProcFS
from sessionio.model.ids import NO_SESSION, Pid, SessionId, Tid
from sessionio.model.kernel import Kernel
from sessionio.model.process import Process, Thread
from sessionio.ntdef.values import WindowsVersion

__all__ = ["LinuxKernel", "thread_of", "user_name"]


@functools.lru_cache(maxsize=4096)
def user_name(uid: int | None) -> str | None:
    """The login name of ``uid`` (None when unset), or the number when it has no name."""
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def thread_of(process: Process, tid: int, session_id: int | None) -> Thread:
    """Thread ``tid`` of ``process``, whose own audit session (/proc/PID/task/TID/sessionid,
    ``None`` when unset) is ``session_id``: the model keeps a thread's own session only where
    it differs from its process's (a thread that wrote its own loginuid)."""
    own = NO_SESSION if session_id is None else SessionId(session_id)
    if tid == process.pid or own == process.session_id:
        return Thread(Tid(tid), process)
    return Thread(Tid(tid), process, own_session_id=own)


class LinuxKernel(Kernel):
    """The live kernel. ``procfs`` is injectable so tests can point it at a fake /proc tree."""

    def __init__(self, procfs: ProcFS | None = None) -> None:
        super().__init__(WindowsVersion.WINDOWS_VISTA)
        self.procfs = procfs if procfs is not None else ProcFS()

    def own_pid(self) -> Pid:
        return Pid(os.getpid())

    def process(self, pid: int) -> Process:
        return self.process_from_snapshot(self.procfs.process(pid))

    def process_session_id(self, pid: int) -> SessionId:
        """Only /proc/PID/sessionid: the one read ProcessIdToSessionId needs."""
        session_id = self.procfs.session_id(pid)
        return NO_SESSION if session_id is None else SessionId(session_id)

    def processes(self) -> list[Process]:
        """Every process now, as far as we may see.

        One that exits while listed is left out, never half-reported; one the kernel refuses to
        show (/proc mounted with hidepid) is left out too, as procps does.
        """
        found = []
        for pid in self.procfs.pids():
            try:
                found.append(self.process(pid))
            except (NoSuchProcess, AccessDenied):
                continue
        return found

    def thread(self, pid: int, tid: int | None = None) -> Thread:
        """The thread ``tid`` of ``pid`` (the main thread by default), with its own session."""
        process = self.process(pid)
        if tid is None or tid == pid:
            return Thread(Tid(pid), process)
        return thread_of(process, tid, self.procfs.session_id(pid, tid))

    def process_from_snapshot(self, snapshot: ProcessSnapshot) -> Process:
        started = self.procfs.epoch_of(snapshot.start_ticks)
        return Process(
            pid=Pid(snapshot.pid),
            session_id=NO_SESSION
            if snapshot.session_id is None
            else SessionId(snapshot.session_id),
            start_time=started,
            name=snapshot.comm,
            ppid=Pid(snapshot.ppid),
            uid=snapshot.uid,
            login_uid=snapshot.login_uid,
            exe=snapshot.exe,
            cmdline=snapshot.cmdline,
            tty=snapshot.tty,
        )
