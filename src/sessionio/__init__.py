"""sessionio: which process, from which login session, asked for each file operation.

The Pythonic surface: snake_case, properties, exceptions instead of status tuples, and
``NO_SESSION`` (-1) for a process that belongs to no session. The Windows names are in
``sessionio.nt``; both read the same model. Everything not re-exported here is private.

>>> import sessionio
>>> sessionio.session_id_of(1)          # doctest: +SKIP
-1
"""

from __future__ import annotations

from collections.abc import Iterable

from sessionio.errors import AccessDenied as AccessDenied
from sessionio.errors import BugCheck as BugCheck
from sessionio.errors import IllegalTransitionError as IllegalTransitionError
from sessionio.errors import IrqlNotLessOrEqual as IrqlNotLessOrEqual
from sessionio.errors import NoSuchProcess as NoSuchProcess
from sessionio.errors import NoSuchSession as NoSuchSession
from sessionio.errors import PrivilegeError as PrivilegeError
from sessionio.errors import RegistrationError as RegistrationError
from sessionio.errors import RequestorUnknown as RequestorUnknown
from sessionio.errors import RuleError as RuleError
from sessionio.errors import SessionioError as SessionioError
from sessionio.errors import UnsupportedPlatformError as UnsupportedPlatformError
from sessionio.model import NO_SESSION as NO_SESSION
from sessionio.model import CallbackData as CallbackData
from sessionio.model import DeviceObject as DeviceObject
from sessionio.model import DriverObject as DriverObject
from sessionio.model import FileObject as FileObject
from sessionio.model import IoRequest as IoRequest
from sessionio.model import Kernel as Kernel
from sessionio.model import Process as Process
from sessionio.model import Session as Session
from sessionio.model import SessionEvent as SessionEvent
from sessionio.model import Subscription as Subscription
from sessionio.model import Thread as Thread
from sessionio.model import current_kernel as current_kernel
from sessionio.model.kernel import SessionEventCallback
from sessionio.ntdef.values import IO_SESSION_EVENT
from sessionio.runtime import LinuxKernel as LinuxKernel
from sessionio.runtime.session_service import SessionService as SessionService
from sessionio.runtime.session_service import watch_sessions as watch_sessions
from sessionio.sim import SimKernel as SimKernel

__version__ = "0.1.0"


def session_id_of(pid: int) -> int:
    """The session of ``pid`` on the current kernel; NO_SESSION when it has none.

    Raises NoSuchProcess for a pid no process has, AccessDenied when the kernel refuses.
    """
    if pid <= 0:
        raise NoSuchProcess(pid, msg="no process has this pid")
    return int(current_kernel().process_session_id(pid))


def process(pid: int) -> Process:
    """The process ``pid`` on the current kernel (NoSuchProcess, AccessDenied)."""
    return current_kernel().process(pid)


def processes() -> list[Process]:
    """Every process the current kernel can see."""
    return current_kernel().processes()


def on_session_event(
    callback: SessionEventCallback,
    *,
    session: int | None = None,
    events: Iterable[IO_SESSION_EVENT] | None = None,
) -> Subscription:
    """Call ``callback(SessionEvent)`` for each session change on the current kernel."""
    return current_kernel().on_session_event(callback, session=session, events=events)
