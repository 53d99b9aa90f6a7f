"""The session tracker: Linux observations in, documented session transitions out.

No single Linux event marks a session's creation or end (linux-mechanisms.md §3, §4, §7). The
live sources each see a part: the proc connector sees processes fork, exec and exit, a /proc
scan sees which process is in which audit session now, AUDIT_LOGIN records see a loginuid being
set, and systemd-logind sees sessions appear, change Active and State, and go. This module merges
those observations into the one state machine of the model, through
:meth:`Kernel.deliver_session_event <sessionio.model.kernel.Kernel.deliver_session_event>`.

It is a pure state machine: observations are method calls, nothing here reads /proc, a socket or
the clock (``sessionio.runtime.session_service`` does the I/O and calls it from one thread), so
every merge rule is unit-tested and fuzzed without root. The kernel's own session table is the
state: the tracker keeps only what the table cannot hold (which processes are in which session,
and which sessions are over).

The mapping (DESIGN.md, "Linux mapping"):

- **Created**: the first sighting of a new audit session, whoever sees it first: a process of it
  (proc connector fork or exec, or a /proc scan), an AUDIT_LOGIN record, or logind SessionNew.
  It is followed at once by **Connected** (or **Disconnected** when logind says the session is
  not active) and **Logon**: an audit session exists only because a loginuid was set, which is
  the logon. Linux observes no connection, so Connected is synthesized unless logind reported
  Active; it is local unless logind says Remote.
- **Connected / Disconnected** follow logind's Active. The documented table has no way back from
  DisconnectedLoggedOn to LoggedOn, so an Active=true for a session in that state cannot be
  delivered: it is dropped (counted in :attr:`SessionTracker.dropped`), never forced through.
- **Logoff**: logind State "closing".
- **Terminated**: the last known process of the session exited (or moved to another session),
  or logind sent SessionRemoved, whichever comes first. The events the session skipped are
  synthesized first, in the documented order: a LoggedOn session gets Logoff, Disconnected,
  then Terminated. A terminated id is remembered, so that a late sighting never creates it twice.

Every event carries ``detail``, ``key=value`` words that start with the source that saw it
(``source=proc``, ``scan``, ``audit`` or ``logind``); ``synthesized`` marks what Linux did not
observe. A transition the table forbids is never attempted, and an exception raised by a
subscriber's callback is logged, never propagated to the observation's caller.

Logind sessions map to audit sessions by the audit id logind reports (its ``Audit`` property,
equal to its ``Id`` when pam_loginuid ran); logind-only sessions ("c1": no audit session) have
no session id here, and the service does not feed them (nothing on Linux attributes a file
operation to them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from sessionio.errors import IllegalTransitionError, NoSuchSession
from sessionio.model.ids import SessionId
from sessionio.model.kernel import Kernel
from sessionio.model.session import Session, SessionEvent
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S
from sessionio.protocols.audit import AuditLogin

__all__ = ["CLOSING_EVENTS", "ProcessLogin", "SessionTracker"]

_log = logging.getLogger(__name__)

CLOSING_EVENTS: Final[Mapping[S, tuple[E, ...]]] = MappingProxyType(
    {
        S.IoSessionStateCreated: (),
        S.IoSessionStateConnected: (E.IoSessionEventDisconnected,),
        S.IoSessionStateDisconnected: (),
        S.IoSessionStateLoggedOn: (E.IoSessionEventLogoff, E.IoSessionEventDisconnected),
        S.IoSessionStateDisconnectedLoggedOn: (E.IoSessionEventLogoff,),
        S.IoSessionStateLoggedOff: (E.IoSessionEventDisconnected,),
    }
)
"""The events synthesized before Terminated, by the state the session is in: an orderly end
(logged off, then disconnected) rather than the table's shortcut from every state."""

_FORGET_AFTER: Final = 65536
"""Terminated session ids remembered: ids grow through a boot, so only recent ones recur."""


@dataclass(frozen=True, slots=True)
class ProcessLogin:
    """What /proc says of one process: its audit session and loginuid, ``None`` when unset."""

    session_id: int | None
    login_uid: int | None


def _id_text(value: int | None) -> str:
    return "unset" if value is None else str(value)


class SessionTracker:
    """Merges observations of the live sources into one legal walk of the table per session.

    Not thread-safe: call it from one thread (the service's). Each observation returns the
    events it delivered, in order. ``user_name`` turns a loginuid into the name put in the
    session's ``user``; it is injected because the real one reads the passwd database (the
    service passes :func:`sessionio.runtime.linux_kernel.user_name`), and defaults to the uid
    as text.
    """

    def __init__(
        self,
        kernel: Kernel,
        *,
        user_name: Callable[[int | None], str | None] | None = None,
        forget_after: int = _FORGET_AFTER,
    ) -> None:
        self._kernel = kernel
        self._user_name = user_name if user_name is not None else _numeric_user
        self._forget_after = forget_after
        self._session_of: dict[int, SessionId] = {}
        self._processes: dict[SessionId, set[int]] = {}
        self._terminated: dict[SessionId, None] = {}
        self.dropped = 0
        """Observations the documented table could not take: a reconnect of a session that is
        disconnected and logged on (logged at INFO). Any other would be a bug (a WARNING)."""

    @property
    def kernel(self) -> Kernel:
        return self._kernel

    # -- what the tracker knows ---------------------------------------------------------------

    def session_of(self, pid: int) -> int | None:
        """The session the tracker counts ``pid`` in, ``None`` if it counts it in none."""
        return self._session_of.get(pid)

    def processes_of(self, session_id: int) -> frozenset[int]:
        """The processes the tracker counts in a session (its end comes with the last one)."""
        return frozenset(self._processes.get(SessionId(session_id), ()))

    def is_terminated(self, session_id: int) -> bool:
        """True for a session this tracker ended (it will not be created again)."""
        return SessionId(session_id) in self._terminated

    # -- observations -------------------------------------------------------------------------

    def process_seen(
        self,
        pid: int,
        session_id: int | None,
        login_uid: int | None = None,
        *,
        source: str = "proc",
        note: str = "",
    ) -> list[SessionEvent]:
        """``pid`` is in audit session ``session_id`` now (``None``: in none).

        A new session is created (Created, Connected, Logon); a process that moved leaves its
        previous session, which ends if it was its last process.
        """
        words = [f"source={source}", f"pid={pid}"]
        if session_id is not None:
            words.append(f"uid={_id_text(login_uid)}")
        if note:
            words.append(note)
        return self._seen(pid, session_id, login_uid, " ".join(words))

    def process_exited(self, pid: int, *, source: str = "proc") -> list[SessionEvent]:
        """``pid`` exited; its session ends if it was the last process counted in it."""
        session_id = self._session_of.pop(pid, None)
        if session_id is None:
            return []
        return self._leave(pid, session_id, f"source={source} pid={pid} exited")

    def audit_login(self, login: AuditLogin) -> list[SessionEvent]:
        """An AUDIT_LOGIN record: ``login.pid`` moved from ``old_ses`` to the new ``ses``."""
        if not login.success:
            return []
        detail = (
            f"source=audit pid={login.pid} uid={_id_text(login.login_uid)} "
            f"old-ses={_id_text(login.old_session_id)} ses={_id_text(login.session_id)}"
        )
        return self._seen(login.pid, login.session_id, login.login_uid, detail)

    def logind_new(
        self,
        session_id: int,
        *,
        active: bool,
        local: bool = True,
        state: str = "",
        user: str | None = None,
        remote_host: str | None = None,
        logind_id: str | None = None,
    ) -> list[SessionEvent]:
        """logind has the session (SessionNew, or a listing): create it, or update it.

        ``active`` is its Active property (Connected if true, Disconnected if not), ``local``
        is ``not Remote``, ``state`` its State ("closing" logs it off).
        """
        sid = SessionId(session_id)
        if sid in self._terminated:
            return []
        detail = f"source=logind id={logind_id if logind_id is not None else sid}"
        events: list[SessionEvent] = []
        if self._session(sid) is None:
            events += self._create(
                sid, detail, login_uid=None, connected=active, observed=True, local=local
            )
        session = self._session(sid)
        if session is not None:
            session.local = local
            if user:
                session.user = user
            if remote_host:
                session.remote_host = remote_host
        events += self.logind_changed(session_id, active=active, state=state, logind_id=logind_id)
        return events

    def logind_changed(
        self,
        session_id: int,
        *,
        active: bool | None = None,
        state: str | None = None,
        logind_id: str | None = None,
    ) -> list[SessionEvent]:
        """PropertiesChanged of a session: State "closing" (Logoff), then Active (Connected or
        Disconnected). A session the kernel does not have (yet, or any more) is left alone."""
        sid = SessionId(session_id)
        session = self._session(sid)
        if session is None:
            return []
        detail = f"source=logind id={logind_id if logind_id is not None else sid}"
        events: list[SessionEvent] = []
        if state == "closing" and session.allows(E.IoSessionEventLogoff):
            events += self._deliver(sid, E.IoSessionEventLogoff, f"{detail} state=closing")
        if active is True and not session.is_connected:
            if session.allows(E.IoSessionEventConnected):
                events += self._deliver(
                    sid, E.IoSessionEventConnected, f"{detail} active=yes", local=session.local
                )
            else:
                self.dropped += 1
                _log.info(
                    "session %d became active again in state %s: the documented state table "
                    "has no reconnect from there, so no Connected is delivered",
                    sid,
                    session.state.name,
                )
        elif active is False and session.is_connected:
            events += self._deliver(sid, E.IoSessionEventDisconnected, f"{detail} active=no")
        return events

    def logind_removed(
        self, session_id: int, *, logind_id: str | None = None
    ) -> list[SessionEvent]:
        """SessionRemoved: the session ends now, whatever processes are still counted in it."""
        sid = SessionId(session_id)
        detail = f"source=logind id={logind_id if logind_id is not None else sid} removed"
        return self._terminate(sid, detail)

    def rescan(self, snapshot: Mapping[int, ProcessLogin]) -> list[SessionEvent]:
        """Reconcile with a /proc scan: ``{pid: ProcessLogin}`` of every process now.

        Sightings are applied first, departures second: a session whose known process is gone
        but which has another, unseen one (a fork lost with ENOBUFS) must not end.
        """
        events: list[SessionEvent] = []
        for pid in sorted(snapshot):
            seen = snapshot[pid]
            if self._session_of.get(pid) != seen.session_id:
                events += self.process_seen(pid, seen.session_id, seen.login_uid, source="scan")
        for pid in sorted(set(self._session_of) - set(snapshot)):
            events += self.process_exited(pid, source="scan")
        return events

    # -- the rules ------------------------------------------------------------------------------

    def _session(self, session_id: SessionId) -> Session | None:
        try:
            return self._kernel.session(session_id)
        except NoSuchSession:
            return None

    def _seen(
        self, pid: int, session_id: int | None, login_uid: int | None, detail: str
    ) -> list[SessionEvent]:
        new = None if session_id is None else SessionId(session_id)
        old = self._session_of.get(pid)
        if old == new:
            return []
        events: list[SessionEvent] = []
        if old is not None:
            del self._session_of[pid]
            events += self._leave(pid, old, f"{detail} left={old}")
        if new is None or new in self._terminated:
            return events
        self._session_of[pid] = new
        self._processes.setdefault(new, set()).add(pid)
        if self._session(new) is None:
            events += self._create(new, detail, login_uid=login_uid)
        return events

    def _leave(self, pid: int, session_id: SessionId, detail: str) -> list[SessionEvent]:
        remaining = self._processes.get(session_id)
        if remaining is not None:
            remaining.discard(pid)
            if remaining:
                return []
        return self._terminate(session_id, detail)

    def _create(
        self,
        session_id: SessionId,
        detail: str,
        *,
        login_uid: int | None,
        connected: bool = True,
        observed: bool = False,
        local: bool | None = None,
    ) -> list[SessionEvent]:
        """Created, then Connected (or Disconnected) and Logon: the audit session is a logon."""
        events = self._deliver(session_id, E.IoSessionEventCreated, detail)
        session = self._session(session_id)
        if session is None:  # a subscriber ended it meanwhile: nothing more to say
            return events
        if login_uid is not None:
            session.user = self._user_name(login_uid)
        link = E.IoSessionEventConnected if connected else E.IoSessionEventDisconnected
        events += self._deliver(
            session_id, link, detail, synthesized=not observed, local=local if connected else None
        )
        events += self._deliver(session_id, E.IoSessionEventLogon, detail)
        return events

    def _terminate(self, session_id: SessionId, detail: str) -> list[SessionEvent]:
        """Close the session in the documented order, then forget its processes."""
        for pid in self._processes.pop(session_id, ()):
            self._session_of.pop(pid, None)
        session = self._session(session_id)
        if session is None:
            return []
        events: list[SessionEvent] = []
        for event in CLOSING_EVENTS.get(session.state, ()):
            events += self._deliver(session_id, event, detail, synthesized=True)
        events += self._deliver(session_id, E.IoSessionEventTerminated, detail)
        self._terminated[session_id] = None
        while len(self._terminated) > self._forget_after:
            del self._terminated[next(iter(self._terminated))]
        return events

    def _deliver(
        self,
        session_id: SessionId,
        event: E,
        detail: str,
        *,
        synthesized: bool = False,
        local: bool | None = None,
    ) -> list[SessionEvent]:
        """One transition, only if the table allows it; subscribers' exceptions are logged.

        The kernel sets the state before it dispatches, so a transition stands even when a
        subscriber raised (and the subscribers after it in registration order missed it).
        """
        session = self._session(session_id)
        if session is not None and not session.allows(event):
            self.dropped += 1
            _log.warning(
                "not delivering %s to session %d in %s", event.name, session_id, session.state.name
            )
            return []
        try:
            delivered = self._kernel.deliver_session_event(
                session_id, event, local=local, synthesized=synthesized, detail=detail
            )
        except IllegalTransitionError:
            # Only possible if someone else moved the session meanwhile (not from this thread).
            self.dropped += 1
            _log.warning("session %d moved under the tracker; %s dropped", session_id, event.name)
            return []
        except Exception:
            _log.exception(
                "a subscriber raised on %s of session %d; the session moved on",
                event.name,
                session_id,
            )
            return []
        return [delivered]


def _numeric_user(uid: int | None) -> str | None:
    return None if uid is None else str(uid)
