"""The session service with logind: python-dbusmock's template on a private system bus.

Connected, Disconnected and Logoff follow logind's Active and State; SessionNew creates a
session the other sources have not seen, and SessionRemoved ends it.

How logind sessions map to ids (``sessionio.runtime.session_tracker``): a logind session is the
audit session its ``Audit`` property names, else the one its numeric ``Id`` names (logind names
sessions after their audit id). Two cases are tested:

- a *logind-only* session: a numeric id no process of this machine is in (4000000000, an audit
  id no boot reaches). logind alone drives it, from SessionNew to SessionRemoved;
- the real audit session of a test child: the proc connector creates it and its last exit ends
  it, logind's signals in between add what only logind knows (remote, Active, closing), and a
  SessionNew or SessionRemoved of a session that exists, or is over, adds no second event.

Sessions logind names "c1" (no audit session) are not reported: nothing on Linux attributes a
file operation to them. Every wait is bounded (``Recorder.wait_for``). Each logind change waits
for the event of the previous one, because the service reads a new session's properties when
its SessionNew arrives, and a later change could already be visible then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sessionio.model.session import SessionEvent
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S
from sessionio.runtime.linux_kernel import LinuxKernel
from sessionio.runtime.session_service import SessionService
from sessionio.testing.logind import LogindMock
from tests.live.test_procfs_live import Children
from tests.live.test_session_events_live import (
    NEVER,
    Recorder,
    command,
    end,
    start_session,
)

LOGIND_ONLY = 4_000_000_000


@pytest.fixture
def logind() -> Iterator[LogindMock]:
    with LogindMock() as mock:
        yield mock


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


@contextmanager
def service_on(logind: LogindMock) -> Iterator[tuple[LinuxKernel, SessionService, Recorder]]:
    kernel = LinuxKernel()
    recorder = Recorder()
    kernel.on_session_event(recorder)
    with SessionService(
        kernel, audit=False, logind_address=logind.address, rescan_interval=NEVER
    ) as service:
        yield kernel, service, recorder


def steps(events: list[SessionEvent]) -> list[tuple[E, bool, str]]:
    return [(e.event, e.synthesized, e.detail) for e in events]


def test_a_logind_only_session_follows_logind_from_new_to_removed(logind: LogindMock) -> None:
    sid = LOGIND_ONLY
    name = str(sid)
    at = f"source=logind id={name}"
    with service_on(logind) as (kernel, service, recorder):
        assert "logind" in service.sources
        logind.add_session(name, uid=1000, user="alice", active=True)
        logind.set_session_properties(name, Remote=True, RemoteHost="198.51.100.7")
        logind.emit_session_new(name)
        recorder.wait_for(sid, E.IoSessionEventLogon)
        session = kernel.session(sid)
        assert (session.user, session.remote_host, session.local) == (
            "alice",
            "198.51.100.7",
            False,
        )

        logind.set_session_properties(name, Active=False)
        recorder.wait_for(sid, E.IoSessionEventDisconnected)
        logind.set_session_properties(name, State="closing")
        recorder.wait_for(sid, E.IoSessionEventLogoff)
        assert kernel.session(sid).state == S.IoSessionStateDisconnected
        logind.set_session_properties(name, Active=True)
        recorder.wait_for(sid, E.IoSessionEventConnected)  # the second one
        logind.remove_session(name)
        events = recorder.wait_for(sid, E.IoSessionEventTerminated)
    assert steps(events) == [
        (E.IoSessionEventCreated, False, at),
        (E.IoSessionEventConnected, False, at),
        (E.IoSessionEventLogon, False, at),
        (E.IoSessionEventDisconnected, False, f"{at} active=no"),
        (E.IoSessionEventLogoff, False, f"{at} state=closing"),
        (E.IoSessionEventConnected, False, f"{at} active=yes"),
        (E.IoSessionEventDisconnected, True, f"{at} removed"),
        (E.IoSessionEventTerminated, False, f"{at} removed"),
    ]
    assert events[1].local is False and events[5].local is False


def test_reconnecting_a_disconnected_logged_on_session_is_not_delivered(
    logind: LogindMock,
) -> None:
    sid = LOGIND_ONLY + 1
    name = str(sid)
    with service_on(logind) as (kernel, service, recorder):
        logind.add_session(name, active=True)
        logind.emit_session_new(name)
        recorder.wait_for(sid, E.IoSessionEventLogon)
        logind.set_session_properties(name, Active=False)
        recorder.wait_for(sid, E.IoSessionEventDisconnected)
        logind.set_session_properties(name, Active=True)  # no such edge in the table
        logind.set_session_properties(name, State="closing")
        events = recorder.wait_for(sid, E.IoSessionEventLogoff)
        assert service.tracker.dropped == 1
        assert kernel.session(sid).state == S.IoSessionStateDisconnected
    assert [e.event for e in events] == [
        E.IoSessionEventCreated,
        E.IoSessionEventConnected,
        E.IoSessionEventLogon,
        E.IoSessionEventDisconnected,
        E.IoSessionEventLogoff,
    ]


def test_logind_signals_refine_a_real_audit_session_the_proc_connector_found(
    logind: LogindMock, children: Children
) -> None:
    marker = LOGIND_ONLY + 2
    with service_on(logind) as (kernel, service, recorder):
        child, sid = start_session(children, service)
        name = str(sid)
        command(child, "fork")
        recorder.wait_for(sid, E.IoSessionEventLogon)

        logind.add_session(name, uid=1000, user="alice", active=True)
        logind.set_session_properties(name, Remote=True, RemoteHost="198.51.100.7")
        logind.emit_session_new(name)  # already created: it only adds what logind knows
        logind.set_session_properties(name, Active=False)
        recorder.wait_for(sid, E.IoSessionEventDisconnected)
        session = kernel.session(sid)
        assert (session.local, session.remote_host, session.user) == (
            False,
            "198.51.100.7",
            "alice",
        )
        logind.set_session_properties(name, State="closing")
        recorder.wait_for(sid, E.IoSessionEventLogoff)

        end(child)  # its last process: the session ends now, logind or not
        recorder.wait_for(sid, E.IoSessionEventTerminated)
        logind.remove_session(name)
        # Signals arrive in order: once a later session is announced, the removal was handled.
        logind.add_session(str(marker))
        logind.emit_session_new(str(marker))
        recorder.wait_for(marker, E.IoSessionEventCreated)
        events = recorder.of(sid)
    assert [(e.event, e.synthesized, e.detail.split()[0]) for e in events] == [
        (E.IoSessionEventCreated, False, "source=proc"),
        (E.IoSessionEventConnected, True, "source=proc"),
        (E.IoSessionEventLogon, False, "source=proc"),
        (E.IoSessionEventDisconnected, False, "source=logind"),
        (E.IoSessionEventLogoff, False, "source=logind"),
        (E.IoSessionEventTerminated, False, "source=proc"),
    ]


def test_sessions_logind_has_at_start_are_reported_and_c_sessions_are_not(
    logind: LogindMock,
) -> None:
    sid = LOGIND_ONLY + 3
    logind.add_session(str(sid), user="bob", active=False)
    logind.add_session("c1", user="carol", active=True)
    recorder = Recorder()
    kernel = LinuxKernel()
    kernel.on_session_event(recorder)
    with SessionService(kernel, audit=False, logind_address=logind.address, rescan_interval=NEVER):
        # start() returns once what exists is in the kernel's table.
        session = kernel.session(sid)
        assert (session.state, session.user) == (S.IoSessionStateDisconnectedLoggedOn, "bob")
        assert [e.event for e in recorder.of(sid)] == [
            E.IoSessionEventCreated,
            E.IoSessionEventDisconnected,
            E.IoSessionEventLogon,
        ]
    assert all(e.detail.startswith("source=") for e in recorder.events)
    assert not any("id=c1" in e.detail for e in recorder.events)


def test_without_logind_on_the_bus_the_service_runs_on_its_other_sources(
    logind: LogindMock,
) -> None:
    logind.close()  # the bus is gone
    with SessionService(
        LinuxKernel(), audit=False, logind_address=logind.address, rescan_interval=NEVER
    ) as service:
        assert service.sources == ("proc-connector", "scan")
        assert service.running
