"""The documented state table: every legal transition delivered, every illegal one refused."""

from __future__ import annotations

import itertools

import pytest

from sessionio.errors import IllegalTransitionError
from sessionio.model import SessionEvent
from sessionio.ntdef.state_table import INITIAL_STATE, TRANSITIONS
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S
from sessionio.sim import SimKernel

EVENTS = [e for e in E if E.IoSessionEventCreated <= e <= E.IoSessionEventLogoff]
STATES = [s for s in S if s not in (S.IoSessionStateMax,)]

# The table, transcribed independently of the implementation from the documentation's picture.
DOCUMENTED = {
    "Initialized": {"Created": "Created"},
    "Created": {
        "Connected": "Connected",
        "Disconnected": "Disconnected",
        "Terminated": "Terminated",
    },
    "Connected": {"Logon": "LoggedOn", "Disconnected": "Disconnected", "Terminated": "Terminated"},
    "Disconnected": {
        "Connected": "Connected",
        "Logon": "DisconnectedLoggedOn",
        "Terminated": "Terminated",
    },
    "DisconnectedLoggedOn": {"Logoff": "Disconnected", "Terminated": "Terminated"},
    "LoggedOn": {
        "Disconnected": "DisconnectedLoggedOn",
        "Logoff": "LoggedOff",
        "Terminated": "Terminated",
    },
    "LoggedOff": {"Disconnected": "Disconnected", "Terminated": "Terminated"},
}


def _path_to(state: S) -> list[E]:
    """Events that lead a new session to ``state`` (breadth-first over the table)."""
    frontier: list[tuple[S, list[E]]] = [(INITIAL_STATE, [])]
    seen = {INITIAL_STATE}
    while frontier:
        current, path = frontier.pop(0)
        if current == state:
            return path
        for (source, event), target in TRANSITIONS.items():
            if source == current and target not in seen:
                seen.add(target)
                frontier.append((target, [*path, event]))
    raise AssertionError(f"{state.name} is unreachable")


def test_the_table_is_the_documented_one() -> None:
    as_names = {
        (s.name.removeprefix("IoSessionState"), e.name.removeprefix("IoSessionEvent")): t.name[14:]
        for (s, e), t in TRANSITIONS.items()
    }
    expected = {(s, e): t for s, row in DOCUMENTED.items() for e, t in row.items()}
    assert as_names == expected


def test_a_new_session_starts_initialized_not_created() -> None:
    assert INITIAL_STATE == S.IoSessionStateInitialized == 2


def test_canonical_console_lifecycle_is_legal_and_ordered() -> None:
    kernel = SimKernel()
    seen: list[SessionEvent] = []
    kernel.on_session_event(seen.append)
    kernel.create_session(1)
    kernel.connect(1)
    kernel.logon(1)
    kernel.logoff(1)
    kernel.disconnect(1)
    kernel.terminate_session(1)
    assert [e.name for e in seen] == [
        "created", "connected", "logon", "logoff", "disconnected", "terminated",
    ]  # fmt: skip
    assert [e.sequence for e in seen] == sorted(e.sequence for e in seen)


LEGAL = sorted(TRANSITIONS.items(), key=lambda kv: (kv[0][0], kv[0][1]))


@pytest.mark.parametrize(
    ("source", "event", "target"),
    [(s, e, t) for (s, e), t in LEGAL],
    ids=[f"{s.name[14:]}-{e.name[14:]}" for (s, e), _ in LEGAL],
)
def test_legal_transition_is_delivered_once_in_order_to_the_right_registrations(
    source: S, event: E, target: S
) -> None:
    kernel = SimKernel()
    path = _path_to(source)
    everything: list[SessionEvent] = []
    only_this: list[SessionEvent] = []
    other_session: list[SessionEvent] = []
    other_events: list[SessionEvent] = []
    kernel.on_session_event(everything.append)
    kernel.on_session_event(only_this.append, session=7, events=[event])
    kernel.on_session_event(other_session.append, session=8)
    kernel.on_session_event(other_events.append, events=[e for e in EVENTS if e != event])
    for step in path:
        kernel.deliver_session_event(7, step)
    delivered = kernel.deliver_session_event(7, event)
    assert delivered.state == target
    assert [e.event for e in everything] == [*path, event]
    assert only_this == [delivered]  # once, and only the selected event
    assert other_session == []
    assert delivered not in other_events
    if event != E.IoSessionEventTerminated:
        assert kernel.session(7).state == target


# A terminated session is gone: Created with its id makes a new session (ids are reused).
ILLEGAL = [
    (s, e)
    for s, e in itertools.product(STATES, EVENTS)
    if (s, e) not in TRANSITIONS and (s, e) != (S.IoSessionStateTerminated, E.IoSessionEventCreated)
]


@pytest.mark.parametrize(
    ("source", "event"), ILLEGAL, ids=[f"{s.name[14:]}-{e.name[14:]}" for s, e in ILLEGAL]
)
def test_illegal_transition_is_refused_and_never_delivered(source: S, event: E) -> None:
    kernel = SimKernel()
    if source == S.IoSessionStateTerminated:
        kernel.create_session(7)
        kernel.terminate_session(7)
        path: list[E] = []
    else:
        path = _path_to(source)
        for step in path:
            kernel.deliver_session_event(7, step)
    seen: list[SessionEvent] = []
    kernel.on_session_event(seen.append)
    with pytest.raises(IllegalTransitionError) as caught:
        kernel.deliver_session_event(7, event)
    assert seen == []
    assert caught.value.event == event.name
    if source not in (S.IoSessionStateInitialized, S.IoSessionStateTerminated):
        assert kernel.session(7).state == source


def test_reconnect_of_a_disconnected_logged_on_session_is_not_in_the_table() -> None:
    kernel = SimKernel()
    kernel.create_session(1)
    kernel.connect(1)
    kernel.logon(1)
    kernel.disconnect(1)
    assert kernel.session(1).state == S.IoSessionStateDisconnectedLoggedOn
    with pytest.raises(IllegalTransitionError):
        kernel.connect(1)


def test_an_illegal_first_event_creates_no_session() -> None:
    kernel = SimKernel()
    with pytest.raises(IllegalTransitionError):
        kernel.logon(3)
    assert kernel.sessions() == []


def test_a_terminated_sessions_id_is_reused_by_a_new_session() -> None:
    kernel = SimKernel()
    first = kernel.create_session(7)
    kernel.terminate_session(7)
    second = kernel.create_session(7)
    assert second is not first
    assert second.state == S.IoSessionStateCreated
    assert first.state == S.IoSessionStateTerminated
