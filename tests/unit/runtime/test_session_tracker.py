"""SessionTracker: the merge rules of the live sources, on a simulated kernel (no root, no I/O)."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionio import nt
from sessionio.model.session import SessionEvent
from sessionio.ntdef.state_table import INITIAL_STATE, TRANSITIONS, next_state
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S
from sessionio.protocols.audit import AUDIT_ID_UNSET, AuditLogin, AuditStamp
from sessionio.runtime.session_tracker import CLOSING_EVENTS, ProcessLogin, SessionTracker
from sessionio.sim import SimKernel

OPENING = [E.IoSessionEventCreated, E.IoSessionEventConnected, E.IoSessionEventLogon]
CLOSING = [E.IoSessionEventLogoff, E.IoSessionEventDisconnected, E.IoSessionEventTerminated]


def make_tracker() -> tuple[SimKernel, SessionTracker, list[SessionEvent]]:
    kernel = SimKernel()
    heard: list[SessionEvent] = []
    kernel.on_session_event(heard.append)
    tracker = SessionTracker(kernel, user_name=lambda uid: None if uid is None else f"u{uid}")
    return kernel, tracker, heard


def login(pid: int, ses: int | None, old_ses: int | None = None, res: int = 1) -> AuditLogin:
    return AuditLogin(
        stamp=AuditStamp(1700000000, 5, 42),
        pid=pid,  # type: ignore[arg-type]
        uid=0,
        old_auid=AUDIT_ID_UNSET,
        auid=1000 if ses is not None else AUDIT_ID_UNSET,
        tty=None,
        old_ses=AUDIT_ID_UNSET if old_ses is None else old_ses,
        ses=AUDIT_ID_UNSET if ses is None else ses,
        res=res,
    )


def kinds(events: list[SessionEvent]) -> list[tuple[int, E, bool]]:
    return [(int(e.session_id), e.event, e.synthesized) for e in events]


# -- creation -----------------------------------------------------------------------------------


def test_first_process_of_a_new_session_creates_connects_and_logs_it_on() -> None:
    kernel, tracker, heard = make_tracker()
    events = tracker.process_seen(100, 7, 1000, note="exec")
    assert kinds(events) == [
        (7, E.IoSessionEventCreated, False),
        (7, E.IoSessionEventConnected, True),  # Linux observes no connection
        (7, E.IoSessionEventLogon, False),  # the loginuid write is the logon
    ]
    assert heard == events
    assert all(e.detail == "source=proc pid=100 uid=1000 exec" for e in events)
    assert events[1].local is True
    session = kernel.session(7)
    assert (session.state, session.user) == (S.IoSessionStateLoggedOn, "u1000")
    assert tracker.session_of(100) == 7 and tracker.processes_of(7) == {100}


def test_more_processes_and_repeated_sightings_deliver_nothing() -> None:
    _, tracker, heard = make_tracker()
    tracker.process_seen(100, 7, 1000)
    assert tracker.process_seen(101, 7, 1000) == []
    assert tracker.process_seen(100, 7, 1000) == []
    assert tracker.audit_login(login(101, 7)) == []
    assert len(heard) == 3
    assert tracker.processes_of(7) == {100, 101}


def test_a_process_without_a_session_is_not_counted() -> None:
    _, tracker, heard = make_tracker()
    assert tracker.process_seen(100, None, None) == []
    assert tracker.process_exited(100) == []
    assert heard == [] and tracker.session_of(100) is None


def test_audit_login_creates_the_session_with_its_ids_and_a_later_sighting_adds_nothing() -> None:
    _, tracker, heard = make_tracker()
    events = tracker.audit_login(login(300, 12))
    assert kinds(events)[0] == (12, E.IoSessionEventCreated, False)
    assert events[0].detail == "source=audit pid=300 uid=1000 old-ses=unset ses=12"
    assert tracker.process_seen(300, 12, 1000) == []
    assert tracker.process_seen(301, 12, 1000, note="fork") == []
    assert [e.event for e in heard] == OPENING


def test_a_refused_audit_login_changes_nothing() -> None:
    _, tracker, heard = make_tracker()
    assert tracker.audit_login(login(300, 12, res=0)) == []
    assert heard == [] and tracker.session_of(300) is None


# -- termination --------------------------------------------------------------------------------


def test_last_process_exit_synthesizes_logoff_and_disconnect_before_terminated() -> None:
    kernel, tracker, heard = make_tracker()
    tracker.process_seen(100, 7, 1000)
    tracker.process_seen(101, 7, 1000)
    assert tracker.process_exited(100) == []
    events = tracker.process_exited(101)
    assert kinds(events) == [
        (7, E.IoSessionEventLogoff, True),
        (7, E.IoSessionEventDisconnected, True),
        (7, E.IoSessionEventTerminated, False),
    ]
    assert all(e.detail == "source=proc pid=101 exited" for e in events)
    assert kernel.sessions() == [] and tracker.is_terminated(7)
    assert [e.event for e in heard] == OPENING + CLOSING


def test_a_terminated_session_is_never_created_again() -> None:
    _, tracker, heard = make_tracker()
    tracker.process_seen(100, 7, 1000)
    tracker.process_exited(100)
    assert tracker.process_seen(102, 7, 1000) == []
    assert tracker.audit_login(login(103, 7)) == []
    assert tracker.logind_new(7, active=True) == []
    assert tracker.rescan({104: ProcessLogin(7, 1000)}) == []
    assert Counter(e.event for e in heard)[E.IoSessionEventCreated] == 1
    assert tracker.session_of(102) is None


def test_forgotten_terminated_ids_may_start_again() -> None:
    kernel = SimKernel()
    tracker = SessionTracker(kernel, forget_after=1)
    for sid in (1, 2):
        tracker.process_seen(sid * 10, sid, 1000)
        tracker.process_exited(sid * 10)
    assert not tracker.is_terminated(1) and tracker.is_terminated(2)
    assert [e.event for e in tracker.process_seen(11, 1, 1000)] == OPENING


def test_a_process_that_changes_its_loginuid_leaves_its_session_for_the_new_one() -> None:
    _, tracker, _ = make_tracker()
    tracker.process_seen(100, 7, 1000)
    events = tracker.audit_login(login(100, 8, old_ses=7))
    assert [(int(e.session_id), e.event) for e in events] == [
        *((7, event) for event in CLOSING),
        *((8, event) for event in OPENING),
    ]
    assert tracker.session_of(100) == 8


def test_a_process_whose_session_is_reset_to_unset_leaves_it() -> None:
    _, tracker, _ = make_tracker()
    tracker.process_seen(100, 7, 1000)
    tracker.process_seen(101, 7, 1000)
    assert tracker.process_seen(100, None, None) == []
    assert tracker.session_of(100) is None and tracker.processes_of(7) == {101}


# -- the reconciling scan -----------------------------------------------------------------------


def test_rescan_finds_a_session_whose_process_never_forked_or_execed() -> None:
    _, tracker, _ = make_tracker()
    events = tracker.rescan({1: ProcessLogin(None, None), 500: ProcessLogin(9, 1000)})
    assert [e.event for e in events] == OPENING
    assert events[0].detail == "source=scan pid=500 uid=1000"


def test_rescan_ends_a_session_whose_exit_was_lost() -> None:
    _, tracker, _ = make_tracker()
    tracker.process_seen(500, 9, 1000)
    events = tracker.rescan({1: ProcessLogin(None, None)})
    assert [e.event for e in events] == CLOSING
    assert events[-1].detail == "source=scan pid=500 exited"


def test_rescan_applies_sightings_before_departures() -> None:
    # 500 exited and its child 501 was forked while events were lost: the session goes on.
    _, tracker, _ = make_tracker()
    tracker.process_seen(500, 9, 1000)
    assert tracker.rescan({501: ProcessLogin(9, 1000)}) == []
    assert tracker.processes_of(9) == {501}


def test_rescan_of_an_unchanged_machine_delivers_nothing() -> None:
    _, tracker, _ = make_tracker()
    snapshot = {500: ProcessLogin(9, 1000), 501: ProcessLogin(9, 1000), 2: ProcessLogin(None, None)}
    tracker.rescan(snapshot)
    assert tracker.rescan(snapshot) == []


# -- logind -------------------------------------------------------------------------------------


def test_logind_session_new_creates_with_observed_connect_and_its_locality() -> None:
    kernel, tracker, _ = make_tracker()
    events = tracker.logind_new(
        4, active=True, local=False, user="alice", remote_host="198.51.100.7", logind_id="4"
    )
    assert kinds(events) == [
        (4, E.IoSessionEventCreated, False),
        (4, E.IoSessionEventConnected, False),  # logind's Active is an observation
        (4, E.IoSessionEventLogon, False),
    ]
    assert events[1].local is False and events[0].detail == "source=logind id=4"
    session = kernel.session(4)
    assert (session.user, session.remote_host) == ("alice", "198.51.100.7")
    with kernel.activate():
        _, info = nt.IoGetContainerInformation(nt.IoSessionStateInformation, session)
    assert info == nt.IO_SESSION_STATE_INFORMATION(4, nt.IoSessionStateLoggedOn, False)


def test_logind_session_new_for_a_known_session_adds_no_creation_and_updates_it() -> None:
    kernel, tracker, heard = make_tracker()
    tracker.process_seen(100, 7, 1000)
    events = tracker.logind_new(7, active=False, local=False, user="alice")
    assert kinds(events) == [(7, E.IoSessionEventDisconnected, False)]
    assert Counter(e.event for e in heard)[E.IoSessionEventCreated] == 1
    assert (kernel.session(7).local, kernel.session(7).user) == (False, "alice")


def test_an_inactive_logind_session_starts_disconnected_and_cannot_reconnect_logged_on() -> None:
    kernel, tracker, _ = make_tracker()
    events = tracker.logind_new(4, active=False)
    assert [e.event for e in events] == [
        E.IoSessionEventCreated,
        E.IoSessionEventDisconnected,
        E.IoSessionEventLogon,
    ]
    assert kernel.session(4).state == S.IoSessionStateDisconnectedLoggedOn
    # The documented table has no DisconnectedLoggedOn -> LoggedOn: dropped, not forced.
    assert tracker.logind_changed(4, active=True) == []
    assert tracker.dropped == 1
    assert kernel.session(4).state == S.IoSessionStateDisconnectedLoggedOn


def test_active_and_closing_follow_logind() -> None:
    kernel, tracker, _ = make_tracker()
    tracker.logind_new(4, active=True)
    assert kinds(tracker.logind_changed(4, state="closing")) == [(4, E.IoSessionEventLogoff, False)]
    assert kinds(tracker.logind_changed(4, active=False)) == [
        (4, E.IoSessionEventDisconnected, False)
    ]
    assert tracker.logind_changed(4, active=False) == []  # no duplicate
    assert kinds(tracker.logind_changed(4, active=True)) == [(4, E.IoSessionEventConnected, False)]
    assert tracker.logind_changed(4, active=True, state="closing") == []
    assert kernel.session(4).state == S.IoSessionStateConnected


def test_closing_and_inactive_in_one_signal_log_off_first() -> None:
    kernel, tracker, _ = make_tracker()
    tracker.logind_new(4, active=True)
    events = tracker.logind_changed(4, active=False, state="closing")
    assert [e.event for e in events] == [E.IoSessionEventLogoff, E.IoSessionEventDisconnected]
    assert kernel.session(4).state == S.IoSessionStateDisconnected


def test_changes_of_an_unknown_session_create_nothing() -> None:
    _, tracker, heard = make_tracker()
    assert tracker.logind_changed(4, active=True, state="closing") == []
    assert tracker.logind_removed(4) == []
    assert heard == []


def test_session_removed_ends_the_session_and_its_processes_are_forgotten() -> None:
    kernel, tracker, _ = make_tracker()
    tracker.process_seen(100, 7, 1000)
    tracker.logind_new(7, active=True)
    tracker.logind_changed(7, state="closing")
    events = tracker.logind_removed(7, logind_id="7")
    assert kinds(events) == [
        (7, E.IoSessionEventDisconnected, True),
        (7, E.IoSessionEventTerminated, False),
    ]
    assert events[-1].detail == "source=logind id=7 removed"
    assert tracker.process_exited(100) == [] and kernel.sessions() == []


# -- robustness ---------------------------------------------------------------------------------


def test_closing_paths_are_legal_walks_to_terminated() -> None:
    reachable = {state for (state, _event) in TRANSITIONS} - {S.IoSessionStateInitialized}
    assert set(CLOSING_EVENTS) == reachable
    for state, path in CLOSING_EVENTS.items():
        current: S | None = state
        for event in (*path, E.IoSessionEventTerminated):
            assert current is not None
            current = next_state(current, event)
        assert current == S.IoSessionStateTerminated


def test_a_subscriber_that_raises_does_not_stop_the_tracker() -> None:
    kernel = SimKernel()

    def explode(event: SessionEvent) -> None:
        raise RuntimeError("subscriber bug")

    kernel.on_session_event(explode)
    tracker = SessionTracker(kernel)
    tracker.process_seen(100, 7, 1000)
    assert kernel.session(7).state == S.IoSessionStateLoggedOn
    tracker.process_exited(100)
    assert kernel.sessions() == []
    assert [e.event for e in kernel.history] == OPENING + CLOSING


def test_a_subscriber_may_end_a_session_while_it_is_being_created() -> None:
    kernel = SimKernel()
    tracker = SessionTracker(kernel)

    def end_at_once(event: SessionEvent) -> None:
        if event.event == E.IoSessionEventCreated:
            kernel.terminate_session(event.session_id)

    kernel.on_session_event(end_at_once)
    tracker.process_seen(100, 7, 1000)
    assert [e.event for e in kernel.history] == [
        E.IoSessionEventCreated,
        E.IoSessionEventTerminated,
    ]


# -- any order of observations ------------------------------------------------------------------

PIDS = st.integers(1, 5)
SIDS = st.integers(1, 3)
MAYBE_SID = st.none() | SIDS
observations = st.one_of(
    st.tuples(st.just("seen"), PIDS, MAYBE_SID),
    st.tuples(st.just("exit"), PIDS),
    st.tuples(st.just("audit"), PIDS, MAYBE_SID, MAYBE_SID, st.integers(0, 1)),
    st.tuples(
        st.just("new"),
        SIDS,
        st.booleans(),
        st.booleans(),
        st.sampled_from(["", "online", "active", "closing"]),
    ),
    st.tuples(
        st.just("changed"),
        SIDS,
        st.none() | st.booleans(),
        st.none() | st.sampled_from(["online", "active", "closing"]),
    ),
    st.tuples(st.just("removed"), SIDS),
    st.tuples(st.just("rescan"), st.dictionaries(PIDS, MAYBE_SID, max_size=5)),
)


def observe(tracker: SessionTracker, observation: tuple[object, ...]) -> list[SessionEvent]:
    match observation:
        case ("seen", int(pid), sid):
            return tracker.process_seen(pid, sid, None if sid is None else 1000)  # type: ignore[arg-type]
        case ("exit", int(pid)):
            return tracker.process_exited(pid)
        case ("audit", int(pid), old, new, int(res)):
            return tracker.audit_login(login(pid, new, old, res))  # type: ignore[arg-type]
        case ("new", int(sid), bool(active), bool(local), str(state)):
            return tracker.logind_new(sid, active=active, local=local, state=state)
        case ("changed", int(sid), active, state):
            return tracker.logind_changed(sid, active=active, state=state)  # type: ignore[arg-type]
        case ("removed", int(sid)):
            return tracker.logind_removed(sid)
        case ("rescan", dict(table)):
            return tracker.rescan(
                {
                    pid: ProcessLogin(sid, None if sid is None else 1000)
                    for pid, sid in table.items()
                }
            )
    raise AssertionError(observation)


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _check_counts(kernel: SimKernel, tracker: SessionTracker) -> None:
    """Whatever it counts, the tracker counts each process once, in a live session."""
    live = {s.id for s in kernel.sessions()}
    for sid in live:
        for pid in tracker.processes_of(sid):
            assert tracker.session_of(pid) == sid
    for pid in range(1, 6):
        counted = tracker.session_of(pid)
        assert counted is None or counted in live


@settings(max_examples=400, deadline=None)
@given(st.lists(observations, max_size=40))
def test_any_observation_order_gives_legal_walks_without_duplicates(
    sequence: list[tuple[object, ...]],
) -> None:
    kernel, tracker, heard = make_tracker()
    returned: list[SessionEvent] = []
    warnings = _Collect(logging.WARNING)
    logging.getLogger("sessionio.runtime.session_tracker").addHandler(warnings)
    try:
        for observation in sequence:
            returned += observe(tracker, observation)
            _check_counts(kernel, tracker)
    finally:
        logging.getLogger("sessionio.runtime.session_tracker").removeHandler(warnings)
    # The tracker never even tries a transition the table forbids (its own guard would warn).
    assert warnings.records == []
    assert returned == heard
    assert [e.sequence for e in heard] == sorted(e.sequence for e in heard)
    per_session: dict[int, list[SessionEvent]] = defaultdict(list)
    for event in heard:
        per_session[int(event.session_id)].append(event)
    for session_id, events in per_session.items():
        state: S | None = INITIAL_STATE
        for event in events:
            assert state is not None
            state = next_state(state, event.event)
            assert state == event.state, (session_id, [e.event.name for e in events])
        created = [e for e in events if e.event == E.IoSessionEventCreated]
        terminated = [e for e in events if e.event == E.IoSessionEventTerminated]
        assert len(created) == 1 and len(terminated) <= 1
        assert events[0].event == E.IoSessionEventCreated
        assert not terminated or terminated[0] is events[-1]
        assert not created[0].synthesized and not any(e.synthesized for e in terminated)
        if terminated:
            assert tracker.is_terminated(session_id)
        else:
            assert kernel.session(session_id).state == events[-1].state


@pytest.mark.parametrize("state", sorted(CLOSING_EVENTS))
def test_termination_from_every_state_marks_only_the_skipped_events_synthesized(
    state: S,
) -> None:
    kernel, tracker, _ = make_tracker()
    path = _path_to(state)
    for event in path:
        kernel.deliver_session_event(9, event)
    tracker.process_seen(100, 9, 1000)  # counted in the session the kernel already has
    events = tracker.process_exited(100)
    assert [e.event for e in events] == [*CLOSING_EVENTS[state], E.IoSessionEventTerminated]
    assert [e.synthesized for e in events] == [True] * len(CLOSING_EVENTS[state]) + [False]


def _path_to(target: S) -> list[E]:
    """The shortest walk of the table from Initialized to ``target``."""
    frontier: list[tuple[S, list[E]]] = [(INITIAL_STATE, [])]
    seen = {INITIAL_STATE}
    while frontier:
        state, path = frontier.pop(0)
        if state == target:
            return path
        for (source, event), destination in TRANSITIONS.items():
            if source == state and destination not in seen:
                seen.add(destination)
                frontier.append((destination, [*path, event]))
    raise AssertionError(target)
