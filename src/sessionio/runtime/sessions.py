"""The live session table: audit sessions as /proc shows them, enriched by logind and utmp.

/proc is the authority on which sessions exist and which processes they hold: every process
carries its audit session id (``/proc/PID/sessionid``), so grouping the processes by it gives
every session that has a process, and one row (id -1) for the processes that have none
(daemons, kernel threads). logind, where it runs, adds what only it knows (remote flag and
host, type, class, state) and is joined by id: its session Id is the audit id when
pam_loginuid ran, and its ``Audit`` property names the audit session otherwise. utmp is the
last resort for a remote host and a tty.

Without logind the state is derived, and it is ``"online"`` for every session that has a
process: logind's word for "logged in". ``"active"`` (in the foreground of its seat) is never
derived, because only logind knows which session owns a seat's foreground.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sessionio.errors import AccessDenied, MalformedEventError, NoSuchProcess
from sessionio.linux.logind import LogindClient
from sessionio.linux.utmp import UTMP_PATH, user_processes
from sessionio.model.ids import NO_SESSION, SessionId, Tid
from sessionio.model.kernel import Kernel
from sessionio.model.process import Process
from sessionio.protocols.logind import LogindSession, audit_session_id
from sessionio.protocols.utmp import UtmpRecord
from sessionio.runtime.linux_kernel import LinuxKernel, user_name

__all__ = [
    "DERIVED_STATE",
    "LOGIND_TIMEOUT",
    "ProcessInfo",
    "SessionInfo",
    "build_sessions",
    "list_processes",
    "list_sessions",
]

LOGIND_TIMEOUT: Final = 0.5
"""Seconds to wait for the system bus and for each logind call before doing without.

A missing bus socket is refused at once (no wait at all); this bounds only a bus that accepts
and then does not answer, so that a hung logind costs a listing half a second, not a hang.
"""

DERIVED_STATE: Final = "online"
"""The state of a session that logind does not describe (see the module docstring)."""

_LOCAL_HOSTS: Final = frozenset({"", "localhost", "localhost.localdomain"})


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A process as listings show it: the model's value, plus what only /proc tells.

    ``euid`` is the effective uid (``None`` where the kernel does not say);
    ``thread_sessions`` lists ``(tid, session)`` for the threads whose audit session differs
    from the process's (a thread that wrote its own loginuid), sorted by tid.
    """

    process: Process
    euid: int | None = None
    thread_sessions: tuple[tuple[Tid, SessionId], ...] = ()

    @property
    def session_ids(self) -> frozenset[SessionId]:
        """Every session the process acts for: its own and its threads'."""
        return frozenset({self.process.session_id, *(s for _, s in self.thread_sessions)})


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One row of the session table.

    ``id`` is the audit session id, NO_SESSION (-1) for the row of processes without one (that
    row has no user, leader, tty or state). ``uid`` is the session's loginuid and ``user`` its
    name. ``leader`` is logind's Leader when /proc shows that pid in the session, else the
    oldest process of the session. ``started`` is the earliest start time of its processes
    (seconds since the epoch; logind's Timestamp for a session with none left). ``remote`` is
    ``None`` when no source says. ``logind`` / ``utmp`` tell which sources described it.
    """

    id: SessionId
    user: str | None = None
    uid: int | None = None
    leader: int | None = None
    tty: str | None = None
    remote: bool | None = None
    remote_host: str | None = None
    type: str | None = None
    session_class: str | None = None
    state: str | None = None
    started: float | None = None
    processes: int = 0
    logind: bool = False
    utmp: bool = False


def _session(value: int | None) -> SessionId:
    return NO_SESSION if value is None else SessionId(value)


def list_processes(kernel: Kernel) -> list[ProcessInfo]:
    """Every process the kernel shows, by pid.

    On the live kernel each comes from one consistent /proc snapshot (its threads' sessions
    included); a process that exits or is replaced while read is left out, never reported with
    another's session, and so is one the kernel refuses to show (``hidepid``), as procps does.
    Another kernel (the simulated one) gives its processes without thread detail.
    """
    if not isinstance(kernel, LinuxKernel):
        return [ProcessInfo(process) for process in kernel.processes()]
    procfs = kernel.procfs
    found = []
    for pid in procfs.pids():
        try:
            snapshot = procfs.process(pid)
        except (NoSuchProcess, AccessDenied):
            continue
        threads = tuple((Tid(tid), _session(sid)) for tid, sid in snapshot.thread_session_ids)
        found.append(ProcessInfo(kernel.process_from_snapshot(snapshot), snapshot.euid, threads))
    return found


def _index_logind(sessions: Iterable[LogindSession]) -> dict[SessionId, LogindSession]:
    """Logind sessions by audit id. When two claim one (logind gave the second a "cN" id
    because the audit id was taken), the one whose Id is the audit id wins."""
    indexed: dict[SessionId, LogindSession] = {}
    for session in sessions:
        found = audit_session_id(session.id, session.audit)
        if found is None:
            continue
        audit_id = SessionId(found)
        if audit_id not in indexed or session.id == str(audit_id):
            indexed[audit_id] = session
    return indexed


def _utmp_record(
    records: Sequence[UtmpRecord], pids: set[int], tty: str | None
) -> UtmpRecord | None:
    """The login record of a session: one written by its process, else one for its tty."""
    for record in records:
        if record.pid in pids:
            return record
    if tty is not None:
        for record in records:
            if record.line == tty:
                return record
    return None


def _utmp_remote(record: UtmpRecord) -> bool:
    """Remote when ut_host names another machine (pam_systemd's rule for PAM_RHOST).

    Local X logins record the display (":0") there, and local logins nothing or localhost.
    """
    host = record.host
    if host.startswith(":") or host in _LOCAL_HOSTS:
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name


def _oldest_first(processes: Iterable[Process]) -> list[Process]:
    return sorted(processes, key=lambda p: (p.start_time, p.pid))


def _session_row(
    session_id: SessionId,
    members: list[Process],
    logind: LogindSession | None,
    records: Sequence[UtmpRecord],
) -> SessionInfo:
    pids = {int(p.pid) for p in members}
    if logind is not None and logind.leader is not None and (logind.leader in pids or not pids):
        leader: int | None = logind.leader
    else:
        leader = int(members[0].pid) if members else None
    # The leader's own fields first, then the oldest process that has them.
    ordered = sorted(members, key=lambda p: p.pid != leader)
    login_uid = next((p.login_uid for p in ordered if p.login_uid is not None), None)
    if login_uid is None and logind is not None:
        login_uid = logind.uid
    logind_tty = logind.tty if logind is not None else ""
    tty = logind_tty or next((p.tty for p in ordered if p.tty), None)
    record = _utmp_record(records, pids if leader is None else pids | {leader}, tty)

    remote: bool | None = None
    remote_host = None
    if logind is not None:
        remote, remote_host = logind.remote, logind.remote_host or None
    if record is not None:
        tty = tty or record.line or None
        remote_host = remote_host or record.host or None
        remote = _utmp_remote(record) if remote is None else remote
    if logind is not None and logind.state:
        state: str | None = logind.state
    elif logind is not None:
        state = "active" if logind.active else DERIVED_STATE
    else:
        state = DERIVED_STATE if members else None

    user = user_name(login_uid) if login_uid is not None else None
    if user is None and logind is not None:
        user = logind.user or None
    return SessionInfo(
        id=session_id,
        user=user,
        uid=login_uid,
        leader=leader,
        tty=tty,
        remote=remote,
        remote_host=remote_host,
        type=(logind.type or None) if logind is not None else None,
        session_class=(logind.session_class or None) if logind is not None else None,
        state=state,
        started=members[0].start_time if members else (logind.timestamp if logind else None),
        processes=len(members),
        logind=logind is not None,
        utmp=record is not None,
    )


def build_sessions(
    processes: Iterable[ProcessInfo],
    logind_sessions: Iterable[LogindSession] = (),
    utmp_records: Iterable[UtmpRecord] = (),
) -> list[SessionInfo]:
    """The session table from a process listing and the sessions logind and utmp describe.

    Pure: it reads nothing. ``utmp_records`` are the current logins (USER_PROCESS records).
    One row per audit session that has a process or that logind knows by an audit id, by id;
    a logind session without an audit session ("c1" with Audit 0, on a machine without audit)
    has no row, since its processes are listed under the audit session /proc gives them.
    Processes are counted by their process's session, not their threads'.
    """
    groups: dict[SessionId, list[Process]] = {}
    for info in processes:
        groups.setdefault(info.process.session_id, []).append(info.process)
    by_audit_id = _index_logind(logind_sessions)
    records = list(utmp_records)
    rows = []
    for session_id in sorted(groups.keys() | by_audit_id.keys()):
        members = _oldest_first(groups.get(session_id, ()))
        if session_id == NO_SESSION:
            started = members[0].start_time if members else None
            rows.append(SessionInfo(NO_SESSION, started=started, processes=len(members)))
            continue
        rows.append(_session_row(session_id, members, by_audit_id.get(session_id), records))
    return rows


def list_sessions(
    kernel: Kernel,
    logind: LogindClient | None = None,
    utmp_path: str | os.PathLike[str] | None = UTMP_PATH,
) -> list[SessionInfo]:
    """The session table of ``kernel`` now (see ``build_sessions``).

    ``logind`` is asked first, so that when it fails (``SessionServiceError``,
    ``BrokenResourceError``, ``MalformedEventError`` propagate) no /proc walk was wasted and
    the caller may list again without it. A utmp file that cannot be read or parsed counts as
    no utmp: it is only a fallback. ``utmp_path=None`` skips utmp.
    """
    logind_sessions = logind.list_sessions() if logind is not None else []
    records: list[UtmpRecord] = []
    if utmp_path is not None:
        try:
            records = user_processes(utmp_path)
        except (OSError, MalformedEventError):
            records = []
    return build_sessions(list_processes(kernel), logind_sessions, records)
