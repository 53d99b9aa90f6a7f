"""The Windows contract, by its Windows names: the routines of the reference pages, their
constants and structures, and pywin32's ``error``.

Routines return what the documentation says (NTSTATUS values, ``(status, session_id)`` tuples for
the out-parameter ones, None for NULL); ProcessIdToSessionId raises :class:`error` as pywin32
does. Every constant is a module attribute under its Windows name (``nt.IoSessionEventLogoff``).
"""

from sessionio.nt.constants import *  # noqa: F403 - the Windows names, listed in constants.py
from sessionio.nt.error import error as error
from sessionio.nt.routines import (
    IO_SESSION_NOTIFICATION_FUNCTION as IO_SESSION_NOTIFICATION_FUNCTION,
)
from sessionio.nt.routines import ContainerNotificationHandle as ContainerNotificationHandle
from sessionio.nt.routines import FltGetRequestorProcess as FltGetRequestorProcess
from sessionio.nt.routines import FltGetRequestorProcessId as FltGetRequestorProcessId
from sessionio.nt.routines import FltGetRequestorProcessIdEx as FltGetRequestorProcessIdEx
from sessionio.nt.routines import FltGetRequestorSessionId as FltGetRequestorSessionId
from sessionio.nt.routines import IoGetContainerInformation as IoGetContainerInformation
from sessionio.nt.routines import IoGetRequestorProcess as IoGetRequestorProcess
from sessionio.nt.routines import IoGetRequestorProcessId as IoGetRequestorProcessId
from sessionio.nt.routines import IoGetRequestorSessionId as IoGetRequestorSessionId
from sessionio.nt.routines import (
    IoRegisterContainerNotification as IoRegisterContainerNotification,
)
from sessionio.nt.routines import (
    IoUnregisterContainerNotification as IoUnregisterContainerNotification,
)
from sessionio.nt.routines import ProcessIdToSessionId as ProcessIdToSessionId
from sessionio.ntdef.status import NTSTATUS as NTSTATUS
from sessionio.ntdef.status import WinError as WinError
from sessionio.ntdef.status import nt_success as nt_success
from sessionio.ntdef.structures import IO_SESSION_CONNECT_INFO as IO_SESSION_CONNECT_INFO
from sessionio.ntdef.structures import (
    IO_SESSION_STATE_INFORMATION as IO_SESSION_STATE_INFORMATION,
)
from sessionio.ntdef.structures import (
    IO_SESSION_STATE_NOTIFICATION as IO_SESSION_STATE_NOTIFICATION,
)
from sessionio.ntdef.values import FLT_POSTOP_CALLBACK_STATUS as FLT_POSTOP_CALLBACK_STATUS
from sessionio.ntdef.values import FLT_PREOP_CALLBACK_STATUS as FLT_PREOP_CALLBACK_STATUS
from sessionio.ntdef.values import IO_CONTAINER_INFORMATION_CLASS as IO_CONTAINER_INFORMATION_CLASS
from sessionio.ntdef.values import (
    IO_CONTAINER_NOTIFICATION_CLASS as IO_CONTAINER_NOTIFICATION_CLASS,
)
from sessionio.ntdef.values import IO_SESSION_EVENT as IO_SESSION_EVENT
from sessionio.ntdef.values import IO_SESSION_MAX_PAYLOAD_SIZE as IO_SESSION_MAX_PAYLOAD_SIZE
from sessionio.ntdef.values import IO_SESSION_STATE as IO_SESSION_STATE
from sessionio.ntdef.values import IO_SESSION_STATE_EVENT_MASK as IO_SESSION_STATE_EVENT_MASK
from sessionio.ntdef.values import IO_TYPE_DEVICE as IO_TYPE_DEVICE
from sessionio.ntdef.values import IO_TYPE_DRIVER as IO_TYPE_DRIVER
from sessionio.ntdef.values import IO_TYPE_FILE as IO_TYPE_FILE
from sessionio.ntdef.values import IRP_HOLD_DEVICE_QUEUE as IRP_HOLD_DEVICE_QUEUE
from sessionio.ntdef.values import IRP_MJ as IRP_MJ
from sessionio.ntdef.values import KAPC_ENVIRONMENT as KAPC_ENVIRONMENT
from sessionio.ntdef.values import KIRQL as KIRQL
from sessionio.ntdef.values import KPROCESSOR_MODE as KPROCESSOR_MODE
from sessionio.ntdef.values import NOTIFY_FOR_ALL_SESSIONS as NOTIFY_FOR_ALL_SESSIONS
from sessionio.ntdef.values import NOTIFY_FOR_THIS_SESSION as NOTIFY_FOR_THIS_SESSION
from sessionio.ntdef.values import WM_WTSSESSION_CHANGE as WM_WTSSESSION_CHANGE
from sessionio.ntdef.values import WTS_CONNECTSTATE_CLASS as WTS_CONNECTSTATE_CLASS
from sessionio.ntdef.values import WTS_CURRENT_SERVER_HANDLE as WTS_CURRENT_SERVER_HANDLE
from sessionio.ntdef.values import WTS_CURRENT_SESSION as WTS_CURRENT_SESSION
from sessionio.ntdef.values import WTS_SESSION_CHANGE as WTS_SESSION_CHANGE
from sessionio.ntdef.values import WindowsVersion as WindowsVersion
