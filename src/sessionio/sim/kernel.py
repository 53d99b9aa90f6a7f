"""SimKernel: a deterministic, in-memory NT kernel for exercising the documented contracts.

Everything is driven by explicit calls (create a session, connect it, create a process, attach a
thread, raise the IRQL, issue an IRP) and numbered by counters, never by clocks, so the same
script always produces the same objects and the same events in the same order. Driver authors
use it to unit-test filters and notification callbacks without Windows or root.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

from sessionio.errors import AccessDenied, BugCheck, NoSuchProcess
from sessionio.model.ids import NO_SESSION, Pid, SessionId, Tid
from sessionio.model.io_objects import DeviceObject, DriverObject, FileObject
from sessionio.model.kernel import Kernel
from sessionio.model.process import Process, Thread
from sessionio.model.request import CallbackData, IoRequest
from sessionio.model.session import Session, SessionEvent
from sessionio.ntdef.status import NTSTATUS
from sessionio.ntdef.values import (
    IO_SESSION_EVENT,
    IRP_HOLD_DEVICE_QUEUE,
    IRP_MJ,
    KAPC_ENVIRONMENT,
    KIRQL,
    WindowsVersion,
)

__all__ = ["SYSTEM_PID", "SimKernel"]

SYSTEM_PID = Pid(4)
"""The System process: no session (its threads do paging and lazy-writer I/O)."""

_E = IO_SESSION_EVENT


class SimKernel(Kernel):
    """A simulated NT kernel. ``version`` selects the IoGetRequestorProcess semantics."""

    def __init__(self, version: WindowsVersion = WindowsVersion.WINDOWS_VISTA) -> None:
        super().__init__(version)
        self._irql = KIRQL.PASSIVE_LEVEL
        self._next_pid = itertools.count(8, 4)
        self._next_tid = itertools.count(1000, 4)
        self._next_session = itertools.count(1)
        self._processes: dict[Pid, Process] = {}
        self._protected: set[Pid] = set()
        self._file_status: dict[str, NTSTATUS] = {}
        self.history: list[SessionEvent] = []
        """Every delivered session event, in order: what a replay compares."""
        self.system_process = Process(SYSTEM_PID, NO_SESSION, name="System")
        self._processes[SYSTEM_PID] = self.system_process
        self._protected.add(SYSTEM_PID)
        self.system_thread = Thread(Tid(next(self._next_tid)), self.system_process)

    # IRQL (KeRaiseIrql / KeLowerIrql)

    @property
    def irql(self) -> KIRQL:
        return self._irql

    def raise_irql(self, level: KIRQL) -> KIRQL:
        """KeRaiseIrql: returns the old level; lowering through it is a bug check."""
        if level < self._irql:
            raise BugCheck(
                "IRQL_NOT_GREATER_OR_EQUAL",
                f"KeRaiseIrql to {level.name} from {self._irql.name}",
            )
        old, self._irql = self._irql, KIRQL(level)
        return old

    def lower_irql(self, level: KIRQL) -> None:
        """KeLowerIrql: raising through it is a bug check."""
        if level > self._irql:
            raise BugCheck(
                "IRQL_NOT_LESS_OR_EQUAL", f"KeLowerIrql to {level.name} from {self._irql.name}"
            )
        self._irql = KIRQL(level)

    @contextlib.contextmanager
    def at_irql(self, level: KIRQL) -> Iterator[None]:
        old = self.raise_irql(level)
        try:
            yield
        finally:
            self.lower_irql(old)

    # Sessions (what the session manager, smss and winlogon, would drive)

    def create_session(self, session_id: int | None = None, *, local: bool = True) -> Session:
        """Create a session (it moves Initialized -> Created); ids count up from 1."""
        sid = next(self._next_session) if session_id is None else session_id
        self.deliver_session_event(sid, _E.IoSessionEventCreated, local=local)
        return self.session(sid)

    def connect(self, session_id: int, *, local: bool | None = None) -> SessionEvent:
        return self.deliver_session_event(session_id, _E.IoSessionEventConnected, local=local)

    def disconnect(self, session_id: int) -> SessionEvent:
        return self.deliver_session_event(session_id, _E.IoSessionEventDisconnected)

    def logon(self, session_id: int) -> SessionEvent:
        return self.deliver_session_event(session_id, _E.IoSessionEventLogon)

    def logoff(self, session_id: int) -> SessionEvent:
        return self.deliver_session_event(session_id, _E.IoSessionEventLogoff)

    def terminate_session(self, session_id: int) -> SessionEvent:
        return self.deliver_session_event(session_id, _E.IoSessionEventTerminated)

    def _dispatch(self, session: Session, event: SessionEvent) -> None:
        """Record, then notify at PASSIVE_LEVEL (session events come from a worker thread)."""
        self.history.append(event)
        old, self._irql = self._irql, KIRQL.PASSIVE_LEVEL
        try:
            super()._dispatch(session, event)
        finally:
            self._irql = old

    # Processes and threads

    def create_process(
        self, name: str, session_id: int = NO_SESSION, *, protected: bool = False
    ) -> Process:
        """A process in ``session_id`` (which must exist), or in no session (NO_SESSION)."""
        if session_id != NO_SESSION:
            self.session(session_id)  # raises NoSuchSession
        process = Process(Pid(next(self._next_pid)), SessionId(session_id), name=name)
        self._processes[process.pid] = process
        if protected:
            self._protected.add(process.pid)
        return process

    def terminate_process(self, process: Process) -> None:
        self._processes.pop(process.pid, None)
        self._protected.discard(process.pid)

    def process(self, pid: int) -> Process:
        process = self._processes.get(Pid(pid))
        if process is None:
            raise NoSuchProcess(pid)
        if process.pid in self._protected:
            raise AccessDenied(pid, process.name)
        return process

    def processes(self) -> list[Process]:
        return list(self._processes.values())

    def create_thread(self, process: Process) -> Thread:
        return Thread(Tid(next(self._next_tid)), process)

    def attach(self, thread: Thread, process: Process) -> None:
        """KeStackAttachProcess: the thread now runs in ``process``'s address space."""
        thread.attached_process = process

    def detach(self, thread: Thread) -> None:
        """KeUnstackDetachProcess."""
        thread.attached_process = None

    # I/O objects and requests

    def create_device_object(self, session_id: int | None = None) -> DeviceObject:
        """A device; a nonzero ``session_id`` makes it a per-session device (DEVPKEY set)."""
        return DeviceObject(session_id=session_id)

    def create_driver_object(self, name: str = "\\Driver\\sim") -> DriverObject:
        return DriverObject(name)

    def create_file_object(self, path: str) -> FileObject:
        return FileObject(path)

    def build_irp(
        self,
        thread: Thread | None,
        major_function: IRP_MJ,
        path: str = "",
        *,
        queued_by: Process | None = None,
        apc_environment: KAPC_ENVIRONMENT | None = None,
    ) -> IoRequest:
        """An IRP as the I/O manager (or IoBuild*Request) builds it for ``thread``.

        ApcEnvironment is captured from the thread now (IoInitializeIrp); ``queued_by`` marks an
        IRP queued to a file object by that process; ``thread=None`` is an IRP a driver
        allocated itself. ``apc_environment`` overrides the captured value, for the cases the
        routines must also handle.
        """
        if apc_environment is None:
            apc_environment = KAPC_ENVIRONMENT(thread.apc_state_index if thread else 0)
        return IoRequest(
            self,
            major_function,
            thread,
            FileObject(path),
            apc_environment=apc_environment,
            flags=IRP_HOLD_DEVICE_QUEUE if queued_by is not None else 0,
            issuing_process=queued_by,
        )

    def set_file_status(self, path: str, status: NTSTATUS) -> None:
        """What the simulated file system below all filters answers for ``path``."""
        self._file_status[path] = status

    def issue(self, irp: IoRequest) -> NTSTATUS:
        """Send ``irp`` through the registered filters to the file system; the final status."""
        return self.filters.run(CallbackData.for_request(irp), self._file_system)

    def _file_system(self, data: CallbackData) -> NTSTATUS:
        return self._file_status.get(data.path, NTSTATUS.STATUS_SUCCESS)
