"""Enumerations and constants of wdm.h, ntifs.h, fltkernel.h and wtsapi32.h used by the routines.

Each enum is named after its Windows type and its members after the Windows constants, so that
``IoSessionEvent.IoSessionEventLogoff == 6`` reads like the header; ``sessionio.nt`` also exposes
every member as a module attribute (``nt.IoSessionEventLogoff``).
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "FLTFL_CALLBACK_DATA_POST_OPERATION",
    "IO_SESSION_MAX_PAYLOAD_SIZE",
    "IO_TYPE_DEVICE",
    "IO_TYPE_DRIVER",
    "IO_TYPE_FILE",
    "IRP_HOLD_DEVICE_QUEUE",
    "NOTIFY_FOR_ALL_SESSIONS",
    "NOTIFY_FOR_THIS_SESSION",
    "WM_WTSSESSION_CHANGE",
    "WTS_CURRENT_SERVER_HANDLE",
    "WTS_CURRENT_SESSION",
    "FLT_POSTOP_CALLBACK_STATUS",
    "FLT_PREOP_CALLBACK_STATUS",
    "IO_CONTAINER_INFORMATION_CLASS",
    "IO_CONTAINER_NOTIFICATION_CLASS",
    "IO_SESSION_EVENT",
    "IO_SESSION_STATE",
    "IO_SESSION_STATE_EVENT_MASK",
    "IRP_MJ",
    "KAPC_ENVIRONMENT",
    "KIRQL",
    "KPROCESSOR_MODE",
    "WTS_CONNECTSTATE_CLASS",
    "WTS_SESSION_CHANGE",
    "WindowsVersion",
    "event_mask_bit",
]


class KIRQL(enum.IntEnum):
    """Interrupt request levels a routine may be called at (the ones the pages mention)."""

    PASSIVE_LEVEL = 0
    APC_LEVEL = 1
    DISPATCH_LEVEL = 2
    HIGH_LEVEL = 15


class WindowsVersion(enum.IntEnum):
    """Which documented semantics of IoGetRequestorProcess the simulated kernel follows."""

    WINDOWS_2000 = 0x0500
    """Before Windows XP: the process that created the thread."""
    WINDOWS_XP = 0x0501
    """Windows XP: the process the thread is attached to (undefined if it is not attached)."""
    WINDOWS_VISTA = 0x0600
    """Vista and later: attached process, issuing process for queued IRPs, else the creator."""


class KAPC_ENVIRONMENT(enum.IntEnum):
    """``Irp->ApcEnvironment``: captured from the thread's ApcStateIndex when the IRP is built."""

    OriginalApcEnvironment = 0
    AttachedApcEnvironment = 1
    CurrentApcEnvironment = 2
    InsertApcEnvironment = 3


class KPROCESSOR_MODE(enum.IntEnum):
    """``RequestorMode`` of FLT_CALLBACK_DATA."""

    KernelMode = 0
    UserMode = 1


IRP_HOLD_DEVICE_QUEUE: Final = 0x2000
"""IRP flag that real Windows uses to mark an IRP queued to a file object (issuing process kept)."""

IO_TYPE_DEVICE: Final = 3
IO_TYPE_DRIVER: Final = 4
IO_TYPE_FILE: Final = 5

FLTFL_CALLBACK_DATA_POST_OPERATION: Final = 0x00000002


class IRP_MJ(enum.IntEnum):
    """Major function codes (wdm.h) and the Filter Manager's negative pseudo-operations."""

    IRP_MJ_CREATE = 0x00
    IRP_MJ_CLOSE = 0x02
    IRP_MJ_READ = 0x03
    IRP_MJ_WRITE = 0x04
    IRP_MJ_QUERY_INFORMATION = 0x05
    IRP_MJ_SET_INFORMATION = 0x06
    IRP_MJ_DIRECTORY_CONTROL = 0x0C
    IRP_MJ_FILE_SYSTEM_CONTROL = 0x0D
    IRP_MJ_DEVICE_CONTROL = 0x0E
    IRP_MJ_CLEANUP = 0x12
    IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION = -1


class FLT_PREOP_CALLBACK_STATUS(enum.IntEnum):
    """What a pre-operation callback returns (fltkernel.h)."""

    FLT_PREOP_SUCCESS_WITH_CALLBACK = 0
    FLT_PREOP_SUCCESS_NO_CALLBACK = 1
    FLT_PREOP_PENDING = 2
    FLT_PREOP_DISALLOW_FASTIO = 3
    FLT_PREOP_COMPLETE = 4
    FLT_PREOP_SYNCHRONIZE = 5


class FLT_POSTOP_CALLBACK_STATUS(enum.IntEnum):
    """What a post-operation callback returns (fltkernel.h)."""

    FLT_POSTOP_FINISHED_PROCESSING = 0
    FLT_POSTOP_MORE_PROCESSING_REQUIRED = 1


class IO_SESSION_EVENT(enum.IntEnum):
    """``IO_SESSION_EVENT`` (wdm.h): the event passed to IO_SESSION_NOTIFICATION_FUNCTION."""

    IoSessionEventIgnore = 0
    IoSessionEventCreated = 1
    IoSessionEventTerminated = 2
    IoSessionEventConnected = 3
    IoSessionEventDisconnected = 4
    IoSessionEventLogon = 5
    IoSessionEventLogoff = 6
    IoSessionEventMax = 7


class IO_SESSION_STATE(enum.IntEnum):
    """``IO_SESSION_STATE`` (wdm.h). A new session starts Initialized (2), not Created (1)."""

    IoSessionStateCreated = 1
    IoSessionStateInitialized = 2
    IoSessionStateConnected = 3
    IoSessionStateDisconnected = 4
    IoSessionStateDisconnectedLoggedOn = 5
    IoSessionStateLoggedOn = 6
    IoSessionStateLoggedOff = 7
    IoSessionStateTerminated = 8
    IoSessionStateMax = 9


class IO_SESSION_STATE_EVENT_MASK(enum.IntFlag):
    """The ``IO_SESSION_STATE_*_EVENT`` bits of IO_SESSION_STATE_NOTIFICATION.EventMask."""

    IO_SESSION_STATE_CREATION_EVENT = 0x00000001
    IO_SESSION_STATE_TERMINATION_EVENT = 0x00000002
    IO_SESSION_STATE_CONNECT_EVENT = 0x00000004
    IO_SESSION_STATE_DISCONNECT_EVENT = 0x00000008
    IO_SESSION_STATE_LOGON_EVENT = 0x00000010
    IO_SESSION_STATE_LOGOFF_EVENT = 0x00000020
    IO_SESSION_STATE_VALID_EVENT_MASK = 0x0000003F
    IO_SESSION_STATE_ALL_EVENTS = 0xFFFFFFFF


IO_SESSION_MAX_PAYLOAD_SIZE: Final = 256


def event_mask_bit(event: IO_SESSION_EVENT) -> int:
    """The EventMask bit that selects ``event``: ``1 << (event - 1)`` for Created..Logoff."""
    if not IO_SESSION_EVENT.IoSessionEventCreated <= event <= IO_SESSION_EVENT.IoSessionEventLogoff:
        return 0
    return 1 << (event - 1)


class IO_CONTAINER_NOTIFICATION_CLASS(enum.IntEnum):
    IoSessionStateNotification = 0
    IoMaxContainerNotificationClass = 1


class IO_CONTAINER_INFORMATION_CLASS(enum.IntEnum):
    IoSessionStateInformation = 0
    IoMaxContainerInformationClass = 1


class WTS_CONNECTSTATE_CLASS(enum.IntEnum):
    """``WTS_CONNECTSTATE_CLASS`` (wtsapi32.h): the State of WTSEnumerateSessions rows."""

    WTSActive = 0
    WTSConnected = 1
    WTSConnectQuery = 2
    WTSShadow = 3
    WTSDisconnected = 4
    WTSIdle = 5
    WTSListen = 6
    WTSReset = 7
    WTSDown = 8
    WTSInit = 9


class WTS_SESSION_CHANGE(enum.IntEnum):
    """``wParam`` codes of WM_WTSSESSION_CHANGE (winuser.h)."""

    WTS_CONSOLE_CONNECT = 0x1
    WTS_CONSOLE_DISCONNECT = 0x2
    WTS_REMOTE_CONNECT = 0x3
    WTS_REMOTE_DISCONNECT = 0x4
    WTS_SESSION_LOGON = 0x5
    WTS_SESSION_LOGOFF = 0x6
    WTS_SESSION_LOCK = 0x7
    WTS_SESSION_UNLOCK = 0x8
    WTS_SESSION_REMOTE_CONTROL = 0x9
    WTS_SESSION_CREATE = 0xA
    WTS_SESSION_TERMINATE = 0xB


WM_WTSSESSION_CHANGE: Final = 0x02B1
WTS_CURRENT_SERVER_HANDLE: Final = 0
WTS_CURRENT_SESSION: Final = 0xFFFFFFFF
NOTIFY_FOR_THIS_SESSION: Final = 0
NOTIFY_FOR_ALL_SESSIONS: Final = 1
