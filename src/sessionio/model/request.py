"""I/O requests: the IRP (:class:`IoRequest`) and the Filter Manager view (:class:`CallbackData`).

The *which process asked* logic lives here once, as properties; ``sessionio.nt`` turns the same
answers into the documented return conventions (NULL, 0, STATUS_UNSUCCESSFUL, -1) and the
Pythonic surface raises :class:`~sessionio.errors.RequestorUnknown` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sessionio.errors import BugCheck, RequestorUnknown
from sessionio.model.ids import Pid, SessionId
from sessionio.model.io_objects import FileObject
from sessionio.model.process import Process, Thread
from sessionio.ntdef.status import NTSTATUS
from sessionio.ntdef.values import (
    FLT_PREOP_CALLBACK_STATUS,
    IRP_HOLD_DEVICE_QUEUE,
    IRP_MJ,
    KAPC_ENVIRONMENT,
    KPROCESSOR_MODE,
    WindowsVersion,
)

if TYPE_CHECKING:
    from sessionio.model.kernel import Kernel

__all__ = ["CallbackData", "IoRequest", "IoStatusBlock", "ParameterBlock"]


@dataclass(eq=False, slots=True)
class IoRequest:
    """An I/O request packet.

    ``thread`` is ``Irp->Tail.Overlay.Thread`` (None for an IRP no thread is associated with);
    ``apc_environment`` is captured from the thread when the IRP is built, as IoInitializeIrp
    does; ``issuing_process`` with IRP_HOLD_DEVICE_QUEUE in ``flags`` marks an IRP queued to a
    file object (completion-port I/O), whose requestor is the process that issued it.
    ``origin_pid`` is what the live kernel was told (the fanotify event's pid), kept even when no
    thread could be identified. ``operation`` is the Linux operation the live kernel saw
    (open, read, exec, modify, close_write, create, delete, rename), finer than the major
    function (open and create are both IRP_MJ_CREATE); None on the simulated kernel.
    """

    kernel: Kernel
    major_function: IRP_MJ
    thread: Thread | None
    file: FileObject | None = None
    apc_environment: KAPC_ENVIRONMENT = KAPC_ENVIRONMENT.OriginalApcEnvironment
    flags: int = 0
    issuing_process: Process | None = None
    requestor_mode: KPROCESSOR_MODE = KPROCESSOR_MODE.UserMode
    origin_pid: Pid | None = None
    operation: str | None = None

    @property
    def path(self) -> str:
        return self.file.path if self.file is not None else ""

    @property
    def requestor_process(self) -> Process | None:
        """IoGetRequestorProcess, with the semantics of the kernel's Windows version."""
        version = self.kernel.version
        thread = self.thread
        if version >= WindowsVersion.WINDOWS_VISTA:
            if self.flags & IRP_HOLD_DEVICE_QUEUE and self.issuing_process is not None:
                return self.issuing_process
            if thread is None:
                return None
            if self.apc_environment == KAPC_ENVIRONMENT.OriginalApcEnvironment:
                return thread.process
            if self.apc_environment == KAPC_ENVIRONMENT.AttachedApcEnvironment:
                return thread.current_process
            return None
        if thread is None:
            return None
        if version >= WindowsVersion.WINDOWS_XP:
            if thread.attached_process is None:
                raise BugCheck(
                    "KMODE_EXCEPTION_NOT_HANDLED",
                    "IoGetRequestorProcess on Windows XP read the process of an IRP whose thread "
                    "is not attached: the documented undefined-thread access",
                )
            return thread.attached_process
        return thread.process

    @property
    def requestor_pid(self) -> Pid | None:
        process = self.requestor_process
        return None if process is None else process.pid

    @property
    def session_id(self) -> SessionId:
        """The session of the thread's owning process; NO_SESSION when it has none.

        Raises RequestorUnknown when the IRP has no thread. Like IoGetRequestorSessionId it uses
        the owning process, not the attached one.
        """
        if self.thread is None:
            raise RequestorUnknown("the request is not associated with any thread")
        return self.thread.session_id


@dataclass(slots=True)
class IoStatusBlock:
    """``IO_STATUS_BLOCK``: a pre-operation that completes sets ``Status`` here."""

    Status: NTSTATUS = NTSTATUS.STATUS_SUCCESS
    Information: int = 0


@dataclass(slots=True)
class ParameterBlock:
    """``FLT_IO_PARAMETER_BLOCK``: the parts a filter reads to know what the operation is."""

    MajorFunction: IRP_MJ
    TargetFileObject: FileObject | None = None
    MinorFunction: int = 0


@dataclass(eq=False, slots=True)
class CallbackData:
    """``FLT_CALLBACK_DATA``; a filter may change anything but ``Thread`` and ``RequestorMode``."""

    request: IoRequest
    Iopb: ParameterBlock
    IoStatus: IoStatusBlock = field(default_factory=IoStatusBlock)
    Flags: int = 0

    @classmethod
    def for_request(cls, request: IoRequest) -> CallbackData:
        return cls(request, ParameterBlock(request.major_function, request.file))

    @property
    def kernel(self) -> Kernel:
        return self.request.kernel

    @property
    def Thread(self) -> Thread | None:
        return self.request.thread

    @property
    def RequestorMode(self) -> KPROCESSOR_MODE:
        return self.request.requestor_mode

    # The Pythonic surface.

    @property
    def path(self) -> str:
        target = self.Iopb.TargetFileObject
        return target.path if target is not None else ""

    @property
    def major_function(self) -> IRP_MJ:
        return self.Iopb.MajorFunction

    @property
    def requestor_process(self) -> Process | None:
        """FltGetRequestorProcess: the process the requesting thread is currently attached to."""
        thread = self.request.thread
        return None if thread is None else thread.current_process

    @property
    def requestor_pid(self) -> Pid | None:
        process = self.requestor_process
        return None if process is None else process.pid

    @property
    def session_id(self) -> SessionId:
        """The requesting session; NO_SESSION if none; RequestorUnknown without a thread."""
        return self.request.session_id

    def complete(self, status: NTSTATUS) -> FLT_PREOP_CALLBACK_STATUS:
        """Complete the operation in a pre-operation callback: ``return data.complete(status)``."""
        self.IoStatus.Status = status
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_COMPLETE

    def deny(self) -> FLT_PREOP_CALLBACK_STATUS:
        """Complete with STATUS_ACCESS_DENIED: the requester sees the operation refused."""
        return self.complete(NTSTATUS.STATUS_ACCESS_DENIED)
