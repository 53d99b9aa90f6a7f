"""The documented session state-transition table (wdm ``sessionstate.png``), as data.

Only what the table shows is legal. In particular there is no DisconnectedLoggedOn -> LoggedOn
(reconnect of a logged-on session) and Terminated is reachable from every state but Initialized:
we reproduce the table exactly rather than guess what Windows does beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S

__all__ = ["INITIAL_STATE", "TRANSITIONS", "next_state"]

INITIAL_STATE = S.IoSessionStateInitialized

TRANSITIONS: Mapping[tuple[S, E], S] = MappingProxyType(
    {
        (S.IoSessionStateInitialized, E.IoSessionEventCreated): S.IoSessionStateCreated,
        (S.IoSessionStateCreated, E.IoSessionEventConnected): S.IoSessionStateConnected,
        (S.IoSessionStateCreated, E.IoSessionEventDisconnected): S.IoSessionStateDisconnected,
        (S.IoSessionStateCreated, E.IoSessionEventTerminated): S.IoSessionStateTerminated,
        (S.IoSessionStateConnected, E.IoSessionEventLogon): S.IoSessionStateLoggedOn,
        (S.IoSessionStateConnected, E.IoSessionEventDisconnected): S.IoSessionStateDisconnected,
        (S.IoSessionStateConnected, E.IoSessionEventTerminated): S.IoSessionStateTerminated,
        (S.IoSessionStateDisconnected, E.IoSessionEventConnected): S.IoSessionStateConnected,
        (S.IoSessionStateDisconnected, E.IoSessionEventLogon): S.IoSessionStateDisconnectedLoggedOn,
        (S.IoSessionStateDisconnected, E.IoSessionEventTerminated): S.IoSessionStateTerminated,
        (S.IoSessionStateDisconnectedLoggedOn, E.IoSessionEventLogoff): (
            S.IoSessionStateDisconnected
        ),
        (S.IoSessionStateDisconnectedLoggedOn, E.IoSessionEventTerminated): (
            S.IoSessionStateTerminated
        ),
        (S.IoSessionStateLoggedOn, E.IoSessionEventDisconnected): (
            S.IoSessionStateDisconnectedLoggedOn
        ),
        (S.IoSessionStateLoggedOn, E.IoSessionEventLogoff): S.IoSessionStateLoggedOff,
        (S.IoSessionStateLoggedOn, E.IoSessionEventTerminated): S.IoSessionStateTerminated,
        (S.IoSessionStateLoggedOff, E.IoSessionEventDisconnected): S.IoSessionStateDisconnected,
        (S.IoSessionStateLoggedOff, E.IoSessionEventTerminated): S.IoSessionStateTerminated,
    }
)


def next_state(state: S, event: E) -> S | None:
    """The state ``event`` leads to from ``state``, or None when the table does not allow it."""
    return TRANSITIONS.get((state, event))
