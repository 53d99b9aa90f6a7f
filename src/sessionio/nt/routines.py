"""The routines of the five reference pages and their documented companions.

Each routine is a thin view over the model: it checks the IRQL it is documented for (on the
simulated kernel a violation raises IrqlNotLessOrEqual, as Driver Verifier would stop the
machine), asks the model, and answers in the documented convention. Where the documentation
and the observed Windows behaviour differ, the docstring says which one is followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sessionio.errors import AccessDenied, NoSuchProcess, RegistrationError
from sessionio.model.ids import NO_SESSION
from sessionio.model.io_objects import DeviceObject, DriverObject, FileObject, notification_scope
from sessionio.model.kernel import Kernel, current_kernel
from sessionio.model.notifications import Registration
from sessionio.model.process import Process
from sessionio.model.request import CallbackData, IoRequest
from sessionio.model.session import Session, SessionEvent
from sessionio.nt.error import raise_api_error
from sessionio.ntdef.status import NTSTATUS, WinError
from sessionio.ntdef.structures import (
    IO_SESSION_CONNECT_INFO,
    IO_SESSION_STATE_INFORMATION,
    IO_SESSION_STATE_NOTIFICATION,
)
from sessionio.ntdef.values import (
    IO_CONTAINER_INFORMATION_CLASS,
    IO_CONTAINER_NOTIFICATION_CLASS,
    IO_SESSION_EVENT,
    KIRQL,
)

__all__ = [
    "ContainerNotificationHandle",
    "FltGetRequestorProcess",
    "FltGetRequestorProcessId",
    "FltGetRequestorProcessIdEx",
    "FltGetRequestorSessionId",
    "IO_SESSION_NOTIFICATION_FUNCTION",
    "IoGetContainerInformation",
    "IoGetRequestorProcess",
    "IoGetRequestorProcessId",
    "IoGetRequestorSessionId",
    "IoRegisterContainerNotification",
    "IoUnregisterContainerNotification",
    "ProcessIdToSessionId",
]

_UNSUCCESSFUL_SESSION = -1
"""(ULONG)-1, written to the session id when the requestor cannot be found."""


# -- The requestor of an I/O request (ntifs.h) --------------------------------------------------


def IoGetRequestorProcess(Irp: IoRequest) -> Process | None:
    """The process behind an IRP; None if the IRP is not associated with any thread.

    Vista and later: the issuing process for IRPs queued to file objects, the attached process
    when the IRP was built attached, else the process that created the thread. XP: the attached
    process (and the documented undefined-thread access, a bug check, when not attached). Before
    XP: the creating process. IRQL <= DISPATCH_LEVEL.
    """
    Irp.kernel.check_irql("IoGetRequestorProcess", KIRQL.DISPATCH_LEVEL)
    return Irp.requestor_process


def IoGetRequestorProcessId(Irp: IoRequest) -> int:
    """The pid of IoGetRequestorProcess's process; 0 when there is none. IRQL <= DISPATCH_LEVEL."""
    Irp.kernel.check_irql("IoGetRequestorProcessId", KIRQL.DISPATCH_LEVEL)
    process = Irp.requestor_process
    return 0 if process is None else int(process.pid)


def IoGetRequestorSessionId(Irp: IoRequest) -> tuple[NTSTATUS, int]:
    """``(STATUS_SUCCESS, session)``, or ``(STATUS_UNSUCCESSFUL, -1)`` when the IRP has no thread.

    The session is the one of the thread's *owning* process (attachment does not change it). A
    process with no session gives 0, as Windows' MmGetSessionId maps it (the System process is
    session 0 here); compare FltGetRequestorSessionId, documented to give -1. IRQL <= APC_LEVEL.
    """
    Irp.kernel.check_irql("IoGetRequestorSessionId", KIRQL.APC_LEVEL)
    if Irp.thread is None:
        return NTSTATUS.STATUS_UNSUCCESSFUL, _UNSUCCESSFUL_SESSION
    session_id = Irp.session_id
    return NTSTATUS.STATUS_SUCCESS, 0 if session_id == NO_SESSION else int(session_id)


# -- The requestor of a minifilter operation (fltkernel.h) --------------------------------------


def FltGetRequestorProcess(CallbackData: CallbackData) -> Process | None:
    """The process the requesting thread is currently attached to; None without a thread."""
    CallbackData.kernel.check_irql("FltGetRequestorProcess", KIRQL.DISPATCH_LEVEL)
    return CallbackData.requestor_process


def FltGetRequestorProcessId(CallbackData: CallbackData) -> int:
    """The pid of FltGetRequestorProcess's process; 0 without a thread. IRQL <= DISPATCH_LEVEL."""
    CallbackData.kernel.check_irql("FltGetRequestorProcessId", KIRQL.DISPATCH_LEVEL)
    pid = CallbackData.requestor_pid
    return 0 if pid is None else int(pid)


def FltGetRequestorProcessIdEx(CallbackData: CallbackData) -> int | None:
    """The pid as a HANDLE: None (NULL) without a thread. IRQL <= DISPATCH_LEVEL."""
    CallbackData.kernel.check_irql("FltGetRequestorProcessIdEx", KIRQL.DISPATCH_LEVEL)
    pid = CallbackData.requestor_pid
    return None if pid is None else int(pid)


def FltGetRequestorSessionId(CallbackData: CallbackData) -> tuple[NTSTATUS, int]:
    """``(STATUS_SUCCESS, session)``; -1 **with STATUS_SUCCESS** when the process has no session.

    ``(STATUS_UNSUCCESSFUL, -1)`` when the operation has no requesting thread; the page says the
    id is then not valid, and -1 is what we write so that it is never mistaken for a session.
    IRQL <= APC_LEVEL.
    """
    CallbackData.kernel.check_irql("FltGetRequestorSessionId", KIRQL.APC_LEVEL)
    if CallbackData.Thread is None:
        return NTSTATUS.STATUS_UNSUCCESSFUL, _UNSUCCESSFUL_SESSION
    return NTSTATUS.STATUS_SUCCESS, int(CallbackData.session_id)


# -- User mode (processthreadsapi.h), in pywin32's shape ----------------------------------------


def ProcessIdToSessionId(ProcessId: int) -> int:
    """The session of a process; raises ``sessionio.nt.error`` as pywin32's win32ts does.

    87 (ERROR_INVALID_PARAMETER) for pid 0 (the Idle process cannot be opened) and for a pid no
    process has; 5 (ERROR_ACCESS_DENIED) when the kernel refuses to tell. A process with no
    session gives -1 (Linux daemons and kernel threads; the System process of the simulated
    kernel). The pid is taken as an unsigned 32-bit value, as pywin32's "k" format does.
    """
    if not isinstance(ProcessId, int) or isinstance(ProcessId, bool):
        raise TypeError(f"ProcessId must be an int, not {type(ProcessId).__name__}")
    pid = ProcessId & 0xFFFFFFFF
    if pid == 0:
        raise raise_api_error("ProcessIdToSessionId", WinError.ERROR_INVALID_PARAMETER)
    try:
        session_id = current_kernel().process_session_id(pid)
    except NoSuchProcess:
        raise raise_api_error("ProcessIdToSessionId", WinError.ERROR_INVALID_PARAMETER) from None
    except AccessDenied:
        raise raise_api_error("ProcessIdToSessionId", WinError.ERROR_ACCESS_DENIED) from None
    return int(session_id)


# -- Session notifications (wdm.h) --------------------------------------------------------------


class IO_SESSION_NOTIFICATION_FUNCTION(Protocol):
    """``NTSTATUS cb(SessionObject, IoObject, Event, Context, NotificationPayload, PayloadLength)``.

    Called at PASSIVE_LEVEL (the page: <= APC_LEVEL). The payload is an IO_SESSION_CONNECT_INFO
    for IoSessionEventConnected and None (length 0) otherwise. The return value is ignored, as
    Windows ignores it.
    """

    def __call__(
        self,
        SessionObject: Session,
        IoObject: object,
        Event: int,
        Context: object,
        NotificationPayload: IO_SESSION_CONNECT_INFO | None,
        PayloadLength: int,
        /,
    ) -> object: ...


@dataclass(frozen=True, slots=True)
class ContainerNotificationHandle:
    """The CallbackRegistration that IoRegisterContainerNotification writes."""

    kernel: Kernel
    registration: Registration


def IoRegisterContainerNotification(
    NotificationClass: int,
    CallbackFunction: IO_SESSION_NOTIFICATION_FUNCTION,
    NotificationInformation: IO_SESSION_STATE_NOTIFICATION,
    NotificationInformationLength: int = IO_SESSION_STATE_NOTIFICATION.sizeof,
) -> tuple[NTSTATUS, ContainerNotificationHandle | None]:
    """Register for session events; returns ``(status, CallbackRegistration)``.

    Checked in Windows' order: a class other than IoSessionStateNotification gives
    STATUS_INVALID_PARAMETER_1; a length or ``Size`` other than the structure size (32 on x64)
    gives _4; an IoObject that is not a device, driver or file object gives _3; a second
    registration for the same IoObject gives STATUS_ALREADY_COMMITTED. Flags and EventMask are
    copied, not validated (a mask of 0 never fires). A per-session device object registers for
    its session only; any other object for all sessions. IRQL <= APC_LEVEL.
    """
    kernel = current_kernel()
    kernel.check_irql("IoRegisterContainerNotification", KIRQL.APC_LEVEL)
    if NotificationClass != IO_CONTAINER_NOTIFICATION_CLASS.IoSessionStateNotification:
        return NTSTATUS.STATUS_INVALID_PARAMETER_1, None
    info = NotificationInformation
    size = IO_SESSION_STATE_NOTIFICATION.sizeof
    if NotificationInformationLength != size or getattr(info, "Size", None) != size:
        return NTSTATUS.STATUS_INVALID_PARAMETER_4, None
    io_object = info.IoObject
    if not isinstance(io_object, DeviceObject | DriverObject | FileObject):
        return NTSTATUS.STATUS_INVALID_PARAMETER_3, None
    if not callable(CallbackFunction):
        return NTSTATUS.STATUS_INVALID_PARAMETER_2, None
    context = info.Context
    callback = CallbackFunction

    def deliver(session: Session, event: SessionEvent) -> object:
        if event.event == IO_SESSION_EVENT.IoSessionEventConnected:
            payload = IO_SESSION_CONNECT_INFO(int(session.id), event.local)
            return callback(session, io_object, int(event.event), context, payload, payload.sizeof)
        return callback(session, io_object, int(event.event), context, None, 0)

    try:
        registration = kernel.notifications.register(
            deliver,
            event_mask=info.EventMask & 0xFFFFFFFF,
            scope=notification_scope(io_object),
            io_object=io_object,
        )
    except RegistrationError:
        return NTSTATUS.STATUS_ALREADY_COMMITTED, None
    return NTSTATUS.STATUS_SUCCESS, ContainerNotificationHandle(kernel, registration)


def IoUnregisterContainerNotification(CallbackRegistration: object) -> None:
    """End a registration. An unknown or already ended handle is a silent no-op."""
    if isinstance(CallbackRegistration, ContainerNotificationHandle):
        kernel = CallbackRegistration.kernel
        kernel.check_irql("IoUnregisterContainerNotification", KIRQL.APC_LEVEL)
        kernel.notifications.unregister(CallbackRegistration.registration)


def IoGetContainerInformation(
    InformationClass: int,
    ContainerObject: Session | None,
    BufferLength: int = IO_SESSION_STATE_INFORMATION.sizeof,
) -> tuple[NTSTATUS, IO_SESSION_STATE_INFORMATION | None]:
    """``(status, IO_SESSION_STATE_INFORMATION)`` for a SessionObject a callback received.

    _1 for a class other than IoSessionStateInformation, _4 for a buffer under 12 bytes, _2 for
    no container object (the documented behaviour; Windows falls back to the caller's session).
    LocalSession is reported only while the session is connected, False otherwise.
    IRQL <= APC_LEVEL.
    """
    current_kernel().check_irql("IoGetContainerInformation", KIRQL.APC_LEVEL)
    if InformationClass != IO_CONTAINER_INFORMATION_CLASS.IoSessionStateInformation:
        return NTSTATUS.STATUS_INVALID_PARAMETER_1, None
    if BufferLength < IO_SESSION_STATE_INFORMATION.sizeof:
        return NTSTATUS.STATUS_INVALID_PARAMETER_4, None
    if not isinstance(ContainerObject, Session):
        return NTSTATUS.STATUS_INVALID_PARAMETER_2, None
    session = ContainerObject
    local = session.local if session.is_connected else False
    return NTSTATUS.STATUS_SUCCESS, IO_SESSION_STATE_INFORMATION(
        int(session.id), session.state, local
    )
