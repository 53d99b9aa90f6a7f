"""The live session service: the proc connector, audit, logind and /proc scans feeding the tracker.

One thread owns the sockets and the :class:`~sessionio.runtime.session_tracker.SessionTracker`,
so every notification of a kernel is delivered from that thread, in order. It polls the proc
connector, the audit multicast socket and a wake-up pipe:

- proc connector FORK / EXEC: the audit session and loginuid of the process are read from /proc
  (a process that writes its loginuid joins a new session without any event, so the parent of a
  fork is read again too); EXIT of a process: it leaves its session, which ends with its last;
- a /proc scan at start, after every ENOBUFS (events were lost), and every ``rescan_interval``
  seconds: the reconciling scan that finds a session whose only process never forks or execs,
  and the end of one whose exit was lost;
- AUDIT_LOGIN records, where this process may join the audit multicast group (CAP_AUDIT_READ).
  Records arrive only while ``audit_enabled`` is on; sessionio never turns it on;
- systemd-logind where a system bus with login1 exists: a second thread blocks on the D-Bus
  subscription and hands what it receives to the first through a queue and the wake-up pipe.

What cannot be seen: a session whose every process has exited before the service reads its
first fork or exec (the proc connector carries no session id, and /proc no longer has the
processes) is reported only by AUDIT_LOGIN or logind, or not at all without them. Sessions of
threads that wrote their own loginuid are not followed (sessions are counted per process).

Subscribers register on the kernel (``kernel.on_session_event``, or
``nt.IoRegisterContainerNotification`` with the kernel active or default); an exception raised
by a callback is logged and the service goes on. ``watch_sessions`` does both in one ``with``::

    with watch_sessions(print):
        time.sleep(60)
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Final, Self

from sessionio.errors import (
    AccessDenied,
    BrokenResourceError,
    ClosedResourceError,
    MalformedEventError,
    NoSuchProcess,
    PrivilegeError,
    SessionServiceError,
    UnsupportedPlatformError,
)
from sessionio.linux.audit import AuditMulticast
from sessionio.linux.logind import LogindClient, LogindSubscription
from sessionio.linux.proc_connector import ProcConnector
from sessionio.linux.procfs import ProcFS
from sessionio.model.kernel import Kernel, SessionEventCallback, current_kernel
from sessionio.ntdef.values import IO_SESSION_EVENT
from sessionio.protocols.logind import (
    LogindEvent,
    LogindSession,
    LogindSessionChanged,
    LogindSessionNew,
    LogindSessionRemoved,
    audit_session_id,
)
from sessionio.protocols.proc_connector import ProcessExec, ProcessExit, ProcessFork
from sessionio.runtime.linux_kernel import user_name
from sessionio.runtime.session_tracker import ProcessLogin, SessionTracker

__all__ = ["DEFAULT_RESCAN_INTERVAL", "SessionService", "watch_sessions"]

_log = logging.getLogger(__name__)

DEFAULT_RESCAN_INTERVAL: Final = 5.0
"""Seconds between reconciling /proc scans (a scan reads two small files per process)."""

_READS_PER_ROUND: Final = 8
"""Proc connector reads (of up to 4096 events each) before the other sources get a turn."""

_LOGIND_POLL: Final = 0.25
"""How long the logind thread blocks before it looks whether the service is stopping."""

Observation = Callable[[], object]


class SessionService:
    """Feeds ``kernel``'s session notifications from the live sources; ``start()`` / ``stop()``.

    ``kernel`` defaults to the current kernel (the default LinuxKernel on Linux), so that
    ``sessionio.on_session_event`` and ``nt.IoRegisterContainerNotification`` hear it.
    ``proc_connector`` is required when asked for (``start`` raises what ProcConnector raises);
    an open :class:`ProcConnector` may be given instead (a smaller queue, say), and the service
    then owns it. ``audit`` and ``logind`` are used where this machine offers them
    (:attr:`sources` tells). ``procfs``, ``clock`` and ``logind_address`` are injectable.
    """

    def __init__(
        self,
        kernel: Kernel | None = None,
        *,
        proc_connector: bool | ProcConnector = True,
        audit: bool = True,
        logind: bool = True,
        rescan_interval: float = DEFAULT_RESCAN_INTERVAL,
        logind_address: str | None = None,
        procfs: ProcFS | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rescan_interval <= 0:
            raise ValueError(f"rescan_interval must be positive, not {rescan_interval}")
        self._kernel = current_kernel() if kernel is None else kernel
        self._want_proc = proc_connector
        self._want_audit = audit
        self._want_logind = logind
        self._rescan_interval = rescan_interval
        self._logind_address = logind_address
        self._procfs = procfs if procfs is not None else ProcFS()
        self._clock = clock
        self.tracker = SessionTracker(self._kernel, user_name=user_name)
        self._proc: ProcConnector | None = None
        self._audit: AuditMulticast | None = None
        self._logind: tuple[LogindClient, LogindSubscription] | None = None
        self._observations: queue.SimpleQueue[Observation] = queue.SimpleQueue()
        self._logind_ids: dict[str, int] = {}
        self._wake_lock = threading.Lock()
        self._wake_fds: tuple[int, int] | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._logind_thread: threading.Thread | None = None
        self._sources: tuple[str, ...] = ()
        self.error: BaseException | None = None
        """What ended the service thread, if something did; ``None`` while it runs well."""

    @property
    def kernel(self) -> Kernel:
        return self._kernel

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources in use once started: "proc-connector", "audit", "logind", "scan"."""
        return self._sources

    @property
    def ready(self) -> bool:
        """True once the first scan is delivered. Set on the service thread, so a callback
        that reads it tells the sessions found at start from the changes after it."""
        return self._ready.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Open the sources, deliver what the first scan finds, and start following changes.

        Returns once the sessions that exist now are in the kernel's table. Raises what opening
        the proc connector raises (PrivilegeError, UnsupportedPlatformError), and what the first
        scan raised (UnsupportedPlatformError without audit session support).
        """
        if self._thread is not None:
            raise RuntimeError("a SessionService starts once")
        try:
            self._open_sources()
        except BaseException:
            self._close_sources()
            if self._logind is not None:
                for part in self._logind:
                    part.close()
            raise
        if self._logind is not None:
            self._logind_thread = threading.Thread(
                target=self._run_logind, args=self._logind, name="sessionio-logind", daemon=True
            )
            self._logind_thread.start()
        self._thread = threading.Thread(target=self._run, name="sessionio-sessions", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise BrokenResourceError(f"the first session scan did not finish in {timeout} s")
        if self.error is not None:
            self.stop()
            raise self.error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following and close the sources; idempotent, callable from a callback."""
        self._stopping.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                _log.warning("the session service thread did not stop within %s s", timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the service thread to end (``stop``, or an error); True if it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def sync(self, timeout: float | None = None) -> bool:
        """Wait until the service has handled every proc connector event queued before this
        call (and every observation posted before it); False if ``timeout`` ran out first or
        the service is not running.

        AUDIT_LOGIN records are not covered: the kernel sends them from its kauditd thread,
        some time after the loginuid write. Not callable from a session-event callback.
        """
        if not self.running:
            return False
        done = threading.Event()

        def handled() -> None:
            self._drain_proc_connector()
            done.set()

        self._post(handled)
        return done.wait(timeout)

    def request_rescan(self) -> None:
        """Ask for a reconciling /proc scan now (from any thread)."""
        self._post(self._rescan)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- opening and closing ------------------------------------------------------------------

    def _open_sources(self) -> None:
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fds = (read_fd, write_fd)
        sources = []
        if isinstance(self._want_proc, ProcConnector):
            self._proc = self._want_proc
        elif self._want_proc:
            self._proc = ProcConnector()  # before the first scan: no fork falls in between
        if self._proc is not None:
            sources.append("proc-connector")
        if self._want_audit:
            try:
                self._audit = AuditMulticast()
                sources.append("audit")
            except (PrivilegeError, UnsupportedPlatformError) as err:
                _log.info("AUDIT_LOGIN records are not available: %s", err)
        if self._want_logind:
            self._logind = self._open_logind()
            if self._logind is not None:
                sources.append("logind")
        self._sources = (*sources, "scan")

    def _open_logind(self) -> tuple[LogindClient, LogindSubscription] | None:
        """Subscribe, then list (so no session is created unseen between the two)."""
        client = LogindClient.connect(self._logind_address)
        if client is None:
            return None
        try:
            subscription = client.subscribe()
        except (SessionServiceError, BrokenResourceError) as err:
            _log.info("logind signals are not available: %s", err)
            client.close()
            return None
        try:
            existing = client.list_sessions()
        except (SessionServiceError, BrokenResourceError, MalformedEventError) as err:
            _log.warning("could not list logind sessions: %s", err)
            existing = []
        for session in existing:
            self._observations.put(_bind(self._logind_session, session))
        return client, subscription

    def _close_sources(self) -> None:
        for source in (self._proc, self._audit):
            if source is not None:
                source.close()
        self._proc = self._audit = None
        with self._wake_lock:
            fds, self._wake_fds = self._wake_fds, None
        for fd in fds or ():
            os.close(fd)

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_fds is not None:
                with contextlib.suppress(BlockingIOError):
                    os.write(self._wake_fds[1], b"\0")

    def _post(self, observation: Observation) -> None:
        self._observations.put(observation)
        self._wake()

    # -- the service thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._rescan()
            self._drain_observations()
            self._ready.set()
            self._loop()
        except BaseException as err:
            self.error = err
            _log.exception("the session service stopped on an error")
        finally:
            self._stopping.set()
            self._ready.set()
            if self._logind_thread is not None:
                self._logind_thread.join()
            self._close_sources()

    def _loop(self) -> None:
        poller = select.poll()
        for source in (self._proc, self._audit):
            if source is not None:
                poller.register(source.fileno(), select.POLLIN)
        assert self._wake_fds is not None
        wake_fd = self._wake_fds[0]
        poller.register(wake_fd, select.POLLIN)
        next_scan = self._clock() + self._rescan_interval
        while not self._stopping.is_set():
            self._drain_proc_connector()
            self._drain_audit()
            self._drain_observations()
            if self._clock() >= next_scan:
                self._rescan()
                next_scan = self._clock() + self._rescan_interval
            if self._stopping.is_set():
                break
            poller.poll(max(next_scan - self._clock(), 0.0) * 1000)
            with contextlib.suppress(BlockingIOError):
                os.read(wake_fd, 4096)

    def _drain_proc_connector(self) -> None:
        if self._proc is None:
            return
        for _ in range(_READS_PER_ROUND):
            try:
                events = self._proc.read(0)
            except BrokenResourceError:
                _log.info("proc connector events were lost: scanning /proc")
                self._rescan()
                continue
            except MalformedEventError as err:
                _log.warning("skipping a proc connector datagram: %s", err)
                continue
            if not events:
                return
            for event in events:
                match event:
                    case ProcessFork() if int(event.child_pid) == int(event.child_tgid):
                        self._look(event.parent_tgid, "fork-parent")
                        self._look(event.child_tgid, "fork")
                    case ProcessExec():
                        self._look(event.tgid, "exec")
                    case ProcessExit() if int(event.pid) == int(event.tgid):
                        self.tracker.process_exited(event.tgid)

    def _drain_audit(self) -> None:
        if self._audit is None:
            return
        while True:
            try:
                logins = self._audit.read_logins(0)
            except BrokenResourceError:
                _log.info("audit records were lost: scanning /proc")
                self._rescan()
                continue
            except MalformedEventError as err:
                _log.warning("skipping an audit record: %s", err)
                continue
            if not logins:
                return
            for login in logins:
                self.tracker.audit_login(login)
                if login.success and login.session_id is not None and not self._alive(login.pid):
                    # Its exit was read before its login record: nothing else would end it.
                    self.tracker.process_exited(login.pid, source="audit")

    def _drain_observations(self) -> None:
        while True:
            try:
                observation = self._observations.get_nowait()
            except queue.Empty:
                return
            observation()

    def _look(self, pid: int, note: str) -> None:
        """Read one process's session and loginuid now; a process already gone is skipped."""
        try:
            session_id = self._procfs.session_id(pid)
            login_uid = None if session_id is None else self._procfs.login_uid(pid)
        except (NoSuchProcess, AccessDenied):
            return
        self.tracker.process_seen(pid, session_id, login_uid, note=note)

    def _alive(self, pid: int) -> bool:
        try:
            self._procfs.session_id(pid)
        except NoSuchProcess:
            return False
        except AccessDenied:
            return True
        return True

    def _rescan(self) -> None:
        snapshot: dict[int, ProcessLogin] = {}
        for pid in self._procfs.pids():
            try:
                session_id = self._procfs.session_id(pid)
                login_uid = None if session_id is None else self._procfs.login_uid(pid)
            except (NoSuchProcess, AccessDenied):
                continue
            snapshot[pid] = ProcessLogin(session_id, login_uid)
        self.tracker.rescan(snapshot)

    # -- logind -------------------------------------------------------------------------------

    def _run_logind(self, client: LogindClient, subscription: LogindSubscription) -> None:
        """The logind thread: receive, query what a signal lacks, post to the service thread."""
        try:
            while not self._stopping.is_set():
                try:
                    event = subscription.recv(_LOGIND_POLL)
                except MalformedEventError as err:
                    _log.warning("skipping a logind signal: %s", err)
                    continue
                except (BrokenResourceError, ClosedResourceError) as err:
                    _log.warning("logind signals stopped: %s", err)
                    return
                if event is not None:
                    observation = self._logind_observation(client, event)
                    if observation is not None:
                        self._post(observation)
        except Exception:
            _log.exception("the logind thread stopped on an error")
        finally:
            subscription.close()
            client.close()

    def _logind_observation(self, client: LogindClient, event: LogindEvent) -> Observation | None:
        match event:
            case LogindSessionNew():
                try:
                    session = client.session_by_path(event.path)
                except (SessionServiceError, BrokenResourceError, MalformedEventError) as err:
                    _log.warning("could not read logind session %s: %s", event.id, err)
                    return None
                return None if session is None else _bind(self._logind_session, session)
            case LogindSessionChanged():
                active = event.changed.get("Active")
                state = event.changed.get("State")
                return _bind(
                    self._logind_changed,
                    event.id,
                    active if isinstance(active, bool) else None,
                    state if isinstance(state, str) else None,
                )
            case LogindSessionRemoved():
                return _bind(self._logind_removed, event.id)
        return None

    def _audit_id(self, logind_id: str, audit: int | None = None) -> int | None:
        """The audit session of a logind session: its Audit property, else its Id when that is
        a number (logind names sessions after their audit id); ``None`` for "c1" and the like."""
        if audit is not None:
            self._logind_ids[logind_id] = audit
            return audit
        known = self._logind_ids.get(logind_id)
        if known is not None:
            return known
        return audit_session_id(logind_id, None)

    def _logind_session(self, session: LogindSession) -> None:
        session_id = self._audit_id(session.id, session.audit)
        if session_id is None:
            return
        self.tracker.logind_new(
            session_id,
            active=session.active,
            local=not session.remote,
            state=session.state,
            user=session.user or None,
            remote_host=session.remote_host or None,
            logind_id=session.id,
        )

    def _logind_changed(self, logind_id: str, active: bool | None, state: str | None) -> None:
        session_id = self._audit_id(logind_id)
        if session_id is not None:
            self.tracker.logind_changed(session_id, active=active, state=state, logind_id=logind_id)

    def _logind_removed(self, logind_id: str) -> None:
        session_id = self._audit_id(logind_id)
        self._logind_ids.pop(logind_id, None)
        if session_id is not None:
            self.tracker.logind_removed(session_id, logind_id=logind_id)


def _bind(function: Callable[..., object], *args: object) -> Observation:
    return lambda: function(*args)


@contextlib.contextmanager
def watch_sessions(
    callback: SessionEventCallback,
    *,
    session: int | None = None,
    events: Iterable[IO_SESSION_EVENT] | None = None,
    kernel: Kernel | None = None,
    audit: bool = True,
    logind: bool = True,
    rescan_interval: float = DEFAULT_RESCAN_INTERVAL,
) -> Iterator[SessionService]:
    """Call ``callback(SessionEvent)`` for live session changes while the ``with`` lasts.

    The subscription is made on ``kernel`` (the current one by default) before the service
    starts, so the sessions that exist already are reported first, as Created (``source=scan``)
    and the events that follow it.
    """
    service = SessionService(kernel, audit=audit, logind=logind, rescan_interval=rescan_interval)
    subscription = service.kernel.on_session_event(callback, session=session, events=events)
    try:
        with service:
            yield service
    finally:
        subscription.cancel()
