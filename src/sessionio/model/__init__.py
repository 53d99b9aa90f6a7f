"""The object model: sessions, processes, threads, requests, the filter manager, notifications.

Both kernels (``sessionio.sim`` and the live ``sessionio.runtime``) build these objects, and the
routines of ``sessionio.nt`` and the Pythonic surface read them; nothing here does I/O.
"""

from sessionio.model.filter_manager import FilterManager as FilterManager
from sessionio.model.filter_manager import FilterRegistration as FilterRegistration
from sessionio.model.ids import NO_SESSION as NO_SESSION
from sessionio.model.ids import Pid as Pid
from sessionio.model.ids import SessionId as SessionId
from sessionio.model.ids import Tid as Tid
from sessionio.model.io_objects import DeviceObject as DeviceObject
from sessionio.model.io_objects import DriverObject as DriverObject
from sessionio.model.io_objects import FileObject as FileObject
from sessionio.model.kernel import Kernel as Kernel
from sessionio.model.kernel import Subscription as Subscription
from sessionio.model.kernel import current_kernel as current_kernel
from sessionio.model.notifications import NotificationRegistry as NotificationRegistry
from sessionio.model.process import Process as Process
from sessionio.model.process import Thread as Thread
from sessionio.model.request import CallbackData as CallbackData
from sessionio.model.request import IoRequest as IoRequest
from sessionio.model.session import Session as Session
from sessionio.model.session import SessionEvent as SessionEvent
