"""Sessions and their state machine.

A :class:`Session` is the SessionObject of the notification callbacks: an object whose state
moves only along the documented transition table. :class:`SessionEvent` is the value a
subscriber receives for each transition, in the order the transitions happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sessionio.errors import IllegalTransitionError
from sessionio.model.ids import SessionId
from sessionio.ntdef.state_table import INITIAL_STATE, next_state
from sessionio.ntdef.values import IO_SESSION_EVENT, IO_SESSION_STATE

__all__ = ["EVENT_NAMES", "Session", "SessionEvent"]

EVENT_NAMES: dict[IO_SESSION_EVENT, str] = {
    IO_SESSION_EVENT.IoSessionEventCreated: "created",
    IO_SESSION_EVENT.IoSessionEventTerminated: "terminated",
    IO_SESSION_EVENT.IoSessionEventConnected: "connected",
    IO_SESSION_EVENT.IoSessionEventDisconnected: "disconnected",
    IO_SESSION_EVENT.IoSessionEventLogon: "logon",
    IO_SESSION_EVENT.IoSessionEventLogoff: "logoff",
}
"""The everyday names of the events (``sessionio events --json`` uses them)."""


@dataclass(eq=False, slots=True)
class Session:
    """A session and where it stands in the documented lifecycle.

    ``local`` is IO_SESSION_CONNECT_INFO.LocalSession: True for the console / a local user, False
    for a remote one. ``user`` and ``remote_host`` are filled where the kernel knows them.
    """

    id: SessionId
    state: IO_SESSION_STATE = INITIAL_STATE
    local: bool = True
    user: str | None = None
    remote_host: str | None = None

    def advance(self, event: IO_SESSION_EVENT) -> IO_SESSION_STATE:
        """Move along the table, or raise IllegalTransitionError and stay where it was."""
        new_state = next_state(self.state, event)
        if new_state is None:
            raise IllegalTransitionError(self.id, self.state.name, event.name)
        self.state = new_state
        return new_state

    def allows(self, event: IO_SESSION_EVENT) -> bool:
        return next_state(self.state, event) is not None

    @property
    def is_connected(self) -> bool:
        """LocalSession is only valid in these states (IO_SESSION_STATE_INFORMATION)."""
        return self.state in (
            IO_SESSION_STATE.IoSessionStateConnected,
            IO_SESSION_STATE.IoSessionStateLoggedOn,
            IO_SESSION_STATE.IoSessionStateLoggedOff,
        )


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One delivered transition.

    ``sequence`` orders every event of a kernel (the ChangeSequenceNumber of NtNotifyChangeSession);
    ``synthesized`` is True when the kernel did not observe the event directly but inferred it to
    keep the documented order (Linux has no generic connect/disconnect, for instance).
    """

    sequence: int
    session_id: SessionId
    event: IO_SESSION_EVENT
    state: IO_SESSION_STATE
    local: bool
    synthesized: bool = False
    detail: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return EVENT_NAMES[self.event]
