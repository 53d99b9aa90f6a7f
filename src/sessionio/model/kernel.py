"""The kernel: what a simulated NT kernel and the live Linux kernel have in common.

Both hold a filter manager, a notification registry and a session table, look up processes, and
run at an IRQL. The routines of ``sessionio.nt`` and the Pythonic surface only ever talk to this
interface, which is why a filter written against the simulated kernel runs live unchanged.

Routines that take no object (ProcessIdToSessionId, IoRegisterContainerNotification) use the
*current* kernel: the one activated with :meth:`Kernel.activate`, else the default the runtime
installs (the live kernel on Linux).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sessionio.errors import IrqlNotLessOrEqual, NoSuchSession, UnsupportedPlatformError
from sessionio.model.filter_manager import FilterManager
from sessionio.model.ids import Pid, SessionId
from sessionio.model.notifications import NotificationRegistry, Registration
from sessionio.model.process import Process
from sessionio.model.session import Session, SessionEvent
from sessionio.ntdef.values import (
    IO_SESSION_EVENT,
    IO_SESSION_STATE_EVENT_MASK,
    KIRQL,
    WindowsVersion,
    event_mask_bit,
)

__all__ = [
    "Kernel",
    "SessionEventCallback",
    "Subscription",
    "current_kernel",
    "set_default_kernel_factory",
]

SessionEventCallback = Callable[[SessionEvent], object]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What :meth:`Kernel.on_session_event` returns; ``cancel()`` ends it (idempotent)."""

    registry: NotificationRegistry
    registration: Registration

    def cancel(self) -> None:
        self.registry.unregister(self.registration)


class Kernel(ABC):
    """Common state and behaviour of every kernel."""

    def __init__(self, version: WindowsVersion = WindowsVersion.WINDOWS_VISTA) -> None:
        self.version = version
        self.filters = FilterManager()
        self.notifications = NotificationRegistry()
        self._sessions: dict[SessionId, Session] = {}
        self._sequence = itertools.count(1)

    # IRQL

    @property
    def irql(self) -> KIRQL:
        """Live code always runs at PASSIVE_LEVEL; the simulated kernel can raise it."""
        return KIRQL.PASSIVE_LEVEL

    def check_irql(self, routine: str, maximum: KIRQL) -> None:
        """Raise what Driver Verifier would catch when ``routine`` runs above ``maximum``."""
        current = self.irql
        if current > maximum:
            raise IrqlNotLessOrEqual(routine, maximum.name, current.name)

    # Processes

    @abstractmethod
    def process(self, pid: int) -> Process:
        """The process with this pid; NoSuchProcess or AccessDenied otherwise."""

    def process_session_id(self, pid: int) -> SessionId:
        """The session of one process: what ProcessIdToSessionId asks, cheaper than process()."""
        return self.process(pid).session_id

    @abstractmethod
    def processes(self) -> list[Process]:
        """Every process the kernel can see now."""

    # Sessions

    def session(self, session_id: int) -> Session:
        try:
            return self._sessions[SessionId(session_id)]
        except KeyError:
            raise NoSuchSession(session_id) from None

    def sessions(self) -> list[Session]:
        """Sessions that have been created and not yet terminated, by id."""
        return [self._sessions[k] for k in sorted(self._sessions)]

    def deliver_session_event(
        self,
        session_id: int,
        event: IO_SESSION_EVENT,
        *,
        local: bool | None = None,
        synthesized: bool = False,
        detail: str = "",
    ) -> SessionEvent:
        """Move a session along the state table and notify the registrations that select it.

        An illegal transition raises IllegalTransitionError and notifies nobody. The state is set
        before dispatch, as NtNotifyChangeSession does, so a callback's IoGetContainerInformation
        sees the new state. Created makes the session; Terminated removes it from the table.
        """
        sid = SessionId(session_id)
        session = self._sessions.get(sid) or Session(sid)
        state = session.advance(event)  # raises before anything is stored or delivered
        self._sessions[sid] = session
        if local is not None:
            session.local = local
        delivered = SessionEvent(
            next(self._sequence), sid, event, state, session.local, synthesized, detail
        )
        if event == IO_SESSION_EVENT.IoSessionEventTerminated:
            del self._sessions[sid]
        self._dispatch(session, delivered)
        return delivered

    def _dispatch(self, session: Session, event: SessionEvent) -> None:
        """Callbacks run with this kernel current, so the routines they call reach it."""
        token = _current.set(self)
        try:
            self.notifications.dispatch(session, event)
        finally:
            _current.reset(token)

    def on_session_event(
        self,
        callback: SessionEventCallback,
        *,
        session: int | None = None,
        events: Iterable[IO_SESSION_EVENT] | None = None,
    ) -> Subscription:
        """Call ``callback(SessionEvent)`` for each transition (of one session, or all)."""
        mask = (
            int(IO_SESSION_STATE_EVENT_MASK.IO_SESSION_STATE_ALL_EVENTS)
            if events is None
            else sum({event_mask_bit(e) for e in events})
        )
        registration = self.notifications.register(
            lambda _session, event: callback(event), event_mask=mask, scope=session, io_object=None
        )
        return Subscription(self.notifications, registration)

    # The current kernel

    @contextlib.contextmanager
    def activate(self) -> Iterator[Kernel]:
        """Make this the kernel that object-less routines (ProcessIdToSessionId...) talk to."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def own_pid(self) -> Pid | None:
        """The pid of the calling process as this kernel knows it (None if it does not)."""
        return None


_current: contextvars.ContextVar[Kernel | None] = contextvars.ContextVar(
    "sessionio_current_kernel", default=None
)
_default_factory: list[Callable[[], Kernel]] = []
_default_kernel: list[Kernel] = []


def set_default_kernel_factory(factory: Callable[[], Kernel]) -> None:
    """Install the kernel used when none is active (the runtime installs the live one)."""
    _default_factory[:] = [factory]
    _default_kernel.clear()


def current_kernel() -> Kernel:
    kernel = _current.get()
    if kernel is not None:
        return kernel
    if not _default_kernel:
        if not _default_factory:
            raise UnsupportedPlatformError(
                "no kernel is active: activate a SimKernel, or import sessionio on Linux",
                feature="kernel",
            )
        _default_kernel.append(_default_factory[0]())
    return _default_kernel[0]
