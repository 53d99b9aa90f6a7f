"""``sessionio enforce RULES``: the filter daemon, in the foreground.

The rule file becomes a :class:`~sessionio.rules.filter.RuleFilter` on the live kernel's filter
manager, and a :class:`~sessionio.runtime.file_monitor.FileMonitor` feeds it every open and
exec (and every read, when a rule names ``read``) as a pre-operation it may deny, and the
other operations as post-operations it can only audit. The monitor answers the kernel; the
decision log is written afterwards, by a subscriber on the monitor's dispatcher thread, so a
log file in the guarded tree (or a logger that is itself the blocked opener) cannot deadlock.

Threads: the main thread loads the rules, builds the monitor, then only waits for signals
(SIGHUP, SIGINT and SIGTERM are blocked in every thread and taken here with sigtimedwait), so a
reload that reads a file in the watched tree is answered by the reader like any other of our
own opens. A bad rule file never touches the kernel: it is refused (exit 1) before the monitor
is made, and on SIGHUP it leaves the old rules in force.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Final

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.errors import (
    AccessDenied,
    BrokenResourceError,
    NoSuchProcess,
    PrivilegeError,
    RuleError,
    SessionServiceError,
)
from sessionio.linux.logind import LogindClient
from sessionio.linux.procfs import ProcFS
from sessionio.rules.filter import RuleDecision, RuleFilter
from sessionio.rules.loader import load_rules
from sessionio.rules.schema import Operation, RuleSet
from sessionio.runtime.file_monitor import (
    DEFAULT_OPERATIONS,
    FileMonitor,
    FileOperation,
    Outcome,
)
from sessionio.runtime.linux_kernel import LinuxKernel, user_name

__all__ = [
    "ALTITUDE",
    "COMMAND",
    "DecisionLog",
    "LiveSessionFacts",
    "decision_event",
    "operations_for",
]

ALTITUDE: Final = 320000
"""Where the rule filter sits in the filter manager (it is the only filter enforce registers)."""

_SIGNALS: Final = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
_HEALTH_CHECK: Final = 1.0
"""Seconds between looks at the reader thread while waiting for a signal."""
_STOP_TIMEOUT: Final = 30.0
_LOGIND_TIMEOUT: Final = 0.1
"""Seconds a logind call may take: it runs while an opener waits for its decision."""
_FACTS_CAPACITY: Final = 4096


def operations_for(ruleset: RuleSet) -> tuple[str, ...]:
    """What the monitor watches: the default operations, and ``read`` when a rule names it.

    FAN_ACCESS_PERM fires on every read(), so reads are watched only when a rule asks for
    them by name; a rule without ``operations`` does not make every read a round trip.
    """
    wants_read = any(
        rule.operations is not None and Operation.READ in rule.operations for rule in ruleset.rules
    )
    return (*DEFAULT_OPERATIONS, "read") if wants_read else tuple(DEFAULT_OPERATIONS)


class LiveSessionFacts:
    """The user and remoteness of an audit session, cached per session id.

    The user is the name of the session's loginuid, read from a process of the session
    (every process of an audit session has the loginuid that made it; the newest pids are
    tried first, as the requester usually is one). Remoteness comes from systemd-logind when
    it runs (its session with that id, when its Audit property agrees), else it is unknown
    (None). Audit session ids are never reused before a reboot, so an answer stays true; it
    is only forgotten to bound the cache. Called from the monitor's decision workers, hence
    the lock.
    """

    def __init__(
        self,
        procfs: ProcFS,
        logind: LogindClient | None = None,
        *,
        capacity: int = _FACTS_CAPACITY,
    ) -> None:
        self._procfs = procfs
        self._logind = logind
        self._capacity = capacity
        self._cache: OrderedDict[int, tuple[str | None, bool | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, session_id: int) -> tuple[str | None, bool | None]:
        with self._lock:
            cached = self._cache.get(session_id)
            if cached is not None:
                self._cache.move_to_end(session_id)
                return cached
            facts = (user_name(self._login_uid(session_id)), self._remote(session_id))
            self._cache[session_id] = facts
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
            return facts

    def _login_uid(self, session_id: int) -> int | None:
        procfs = self._procfs
        for pid in reversed(procfs.pids()):
            try:
                if procfs.session_id(pid) == session_id:
                    return procfs.login_uid(pid)
            except (NoSuchProcess, AccessDenied):
                continue
        return None

    def _remote(self, session_id: int) -> bool | None:
        logind = self._logind
        if logind is None:
            return None
        try:
            session = logind.session(str(session_id))
        except BrokenResourceError:
            self._logind = None  # logind left the bus: remoteness is unknown from now on
            return None
        except SessionServiceError:
            return None
        if session is None or (session.audit is not None and session.audit != session_id):
            return None
        return session.remote

    def close(self) -> None:
        if self._logind is not None:
            self._logind.close()
            self._logind = None


def decision_event(op: FileOperation, decision: RuleDecision | None) -> str:
    """The ``event`` of a log record.

    ``deny`` (denied), ``would_deny`` (the rules say deny but it was not enforced: dry-run, or
    an operation reported after the fact), ``audit``, ``allow``, ``timeout`` and ``error``
    (the filter did not decide in time, or raised: the rules' on_timeout verdict was given),
    ``overflow`` (events were lost).
    """
    if op.outcome is Outcome.OVERFLOW:
        return "overflow"
    if op.outcome is Outcome.TIMEOUT:
        return "timeout"
    if op.outcome is Outcome.ERROR:
        return "error"
    if decision is None:
        return "allow"
    if decision.denied:
        return "deny"
    if decision.would_deny:
        return "would_deny"
    if decision.decision.audited:
        return "audit"
    return "allow"


def _now() -> str:
    return datetime.now().astimezone().isoformat("T", "microseconds")


class DecisionLog:
    """The JSON-lines log: one object per line, written whole and flushed, from any thread.

    Operation records carry the keys of ``sessionio watch --json`` (op, path, pid, session,
    verdict, outcome...) plus ``event``, the ``rule`` that decided and its ``rule_line``, the
    rule ``action`` (``null`` for the default), the session's ``remote`` flag, ``dry_run``
    and the rule ``file``. Other records (``reload``, ``reload_failed``, ``stats``) have
    ``event``, ``time`` and their own keys.
    """

    def __init__(
        self,
        rule_filter: RuleFilter,
        *,
        path: str | None,
        verbose: bool,
        stream: IO[str] | None = None,
    ) -> None:
        self._filter = rule_filter
        self._path = path
        self.verbose = verbose
        self._lock = threading.Lock()
        if path is not None:
            self._stream: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        else:
            self._stream = stream if stream is not None else sys.stdout

    def write(self, row: dict[str, object]) -> None:
        line = json.dumps(row, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def note(self, event: str, **fields: object) -> None:
        self.write({"event": event, "time": _now(), **fields})

    def operation(self, op: FileOperation) -> None:
        """The subscriber: log one operation, if it is worth a line."""
        decision = None if op.data is None else self._filter.take_decision(op.data)
        event = decision_event(op, decision)
        if event == "allow" and not self.verbose:
            return
        row: dict[str, object] = {"event": event, **op.as_row()}
        rule = None if decision is None else decision.decision.rule
        row["rule"] = None if rule is None else rule.name
        row["rule_line"] = None if rule is None else rule.line
        row["action"] = None if rule is None else str(rule.action)
        row["remote"] = None if decision is None else decision.facts.session_remote
        row["dry_run"] = self._filter.dry_run
        row["file"] = self._filter.ruleset.source
        self.write(row)

    def reopen(self) -> None:
        """Open the log file again (after logrotate moved it); keep the old one on failure."""
        if self._path is None:
            return
        try:
            stream = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            self.note("reopen_failed", log=self._path, error=str(err))
            return
        with self._lock:
            old, self._stream = self._stream, stream
        old.close()

    def close(self) -> None:
        if self._path is not None:
            with self._lock:
                self._stream.close()


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rules", metavar="RULES", help="the rule file (TOML)")
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="guard only these trees, recursively (default: every mounted filesystem)",
    )
    parser.add_argument(
        "--path",
        dest="extra_paths",
        action="append",
        default=[],
        metavar="PATH",
        help="a tree to guard (may be repeated; adds to PATH...)",
    )
    parser.add_argument(
        "--log", metavar="FILE", help="append the JSON-lines log to FILE (default: stdout)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log allowed operations too (by default: denies, audits, timeouts, errors)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="deny nothing; log what would be denied (event would_deny)",
    )
    parser.add_argument(
        "--stats-interval",
        type=float,
        metavar="SECONDS",
        help="also log the monitor's counters every SECONDS (they are always logged on exit)",
    )


def _ruleset_fields(ruleset: RuleSet) -> dict[str, object]:
    return {
        "file": ruleset.source,
        "rules": len(ruleset.rules),
        "default": str(ruleset.default),
        "decision_timeout_ms": ruleset.decision_timeout_ms,
        "on_timeout": str(ruleset.on_timeout),
    }


def _reload(rule_filter: RuleFilter, monitor: FileMonitor, log: DecisionLog) -> None:
    """SIGHUP: the rule file again, all or nothing; and the log file reopened."""
    log.reopen()
    old = rule_filter.ruleset
    try:
        new = rule_filter.reload()
    except RuleError as err:
        print(f"sessionio: reload refused, keeping the old rules: {err}", file=sys.stderr)
        log.note(
            "reload_failed",
            file=err.path,
            line=err.line,
            column=err.column,
            error=str(err),
        )
        return
    monitor.decision_timeout = new.decision_timeout_ms / 1000
    monitor.on_timeout = new.on_timeout
    fields = _ruleset_fields(new)
    if operations_for(new) != operations_for(old):
        fields["warning"] = "the watched operations changed: restart enforce to apply that"
    log.note("reload", **fields)
    print(f"sessionio: reloaded {new.source} ({len(new.rules)} rules)", file=sys.stderr)


def _stats(monitor: FileMonitor) -> dict[str, object]:
    return dataclasses.asdict(monitor.stats)


def _run(args: argparse.Namespace) -> int:
    ruleset = load_rules(args.rules)  # a bad file: RuleError, exit 1, nothing touched
    paths = [*args.paths, *args.extra_paths]
    for path in paths:
        if not os.path.exists(path):
            print(f"sessionio: {path}: no such file or directory", file=sys.stderr)
            return ExitCode.FAILURE
    if args.stats_interval is not None and args.stats_interval <= 0:
        print("sessionio: --stats-interval must be positive", file=sys.stderr)
        return ExitCode.USAGE

    kernel = LinuxKernel()
    facts = LiveSessionFacts(kernel.procfs, LogindClient.connect(timeout=_LOGIND_TIMEOUT))
    rule_filter = RuleFilter(ruleset, facts, dry_run=args.dry_run)
    kernel.filters.register_filter(rule_filter, ALTITUDE)
    try:
        log = DecisionLog(rule_filter, path=args.log, verbose=args.verbose)
    except OSError as err:
        facts.close()
        print(f"sessionio: cannot open the log {args.log}: {err.strerror}", file=sys.stderr)
        return ExitCode.FAILURE
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        return _serve(args, kernel, rule_filter, log, paths)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        log.close()
        facts.close()


def _serve(
    args: argparse.Namespace,
    kernel: LinuxKernel,
    rule_filter: RuleFilter,
    log: DecisionLog,
    paths: Sequence[str],
) -> int:
    ruleset = rule_filter.ruleset
    try:
        monitor = FileMonitor(
            kernel,
            paths,
            operations=operations_for(ruleset),
            permission=True,
            decision_timeout=ruleset.decision_timeout_ms / 1000,
            on_timeout=ruleset.on_timeout,
            cacheable=rule_filter.cacheable,
        )
    except PrivilegeError:
        raise
    except OSError as err:
        print(f"sessionio: cannot watch {err.filename or ''}: {err.strerror}", file=sys.stderr)
        return ExitCode.FAILURE
    stop = threading.Event()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            monitor.run(stop)
        except BaseException as err:
            failure.append(err)

    received: int | None = None
    with monitor:
        monitor.subscribe(log.operation)
        # Started with the signals blocked, so the reader, the decision workers and the
        # dispatcher inherit the mask: signals come to this thread only.
        reader = threading.Thread(target=read, name="sessionio-enforce-reader", daemon=True)
        reader.start()
        where = ", ".join(monitor.roots) if monitor.roots else "every filesystem"
        mode = " (dry run)" if rule_filter.dry_run else ""
        print(
            f"sessionio enforce: ready{mode}: {len(ruleset.rules)} rules from "
            f"{ruleset.source}, guarding {where}",
            file=sys.stderr,
            flush=True,
        )
        next_stats = None if args.stats_interval is None else time.monotonic() + args.stats_interval
        while reader.is_alive():
            wait = _HEALTH_CHECK
            if next_stats is not None:
                wait = max(0.0, min(wait, next_stats - time.monotonic()))
            info = signal.sigtimedwait(_SIGNALS, wait)
            if info is not None and info.si_signo == signal.SIGHUP:
                _reload(rule_filter, monitor, log)
            elif info is not None:
                received = info.si_signo
                break
            if next_stats is not None and time.monotonic() >= next_stats:
                log.note("stats", **_stats(monitor))
                next_stats = time.monotonic() + args.stats_interval
        stop.set()
        reader.join(_STOP_TIMEOUT)
    log.note("stats", final=True, **_stats(monitor))
    if failure or received is None:
        why = failure[0] if failure else "the reader thread ended"
        print(f"sessionio: enforce stopped: {why!r}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.INTERRUPTED if received == signal.SIGINT else ExitCode.OK


COMMAND = Command(
    name="enforce",
    help="allow or deny file operations by a rule file (the filter daemon, in the foreground)",
    description=(
        "Load RULES (a bad file exits 1 before anything is watched) and enforce them on every "
        "mounted filesystem, or only under PATH... / --path: opens and execs (and reads, when a "
        "rule names read) of a denied requester fail with EPERM; other operations are reported "
        "after the fact and can be audited, not stopped. A filter that does not decide within "
        "the rules' decision_timeout_ms gets their on_timeout verdict. Decisions are logged as "
        "JSON lines after the kernel is answered (stdout, or --log FILE, which may sit in the "
        "guarded tree): one per deny, would_deny (--dry-run), audit, timeout, error and "
        "overflow, and with --verbose per allow too; the monitor's counters (stats, including "
        "ignore_marks, the kernel-side cache of allows no rule can change) are logged on exit "
        "and every --stats-interval seconds. A line 'sessionio enforce: ready' on stderr says "
        "the marks are in place. SIGHUP reloads RULES atomically (a bad file keeps the old "
        "rules and logs reload_failed with FILE:LINE:COL) and reopens --log. SIGINT and "
        "SIGTERM stop it after answering what is queued: exit 130 after SIGINT (interrupted), "
        "0 after SIGTERM; 77 without CAP_SYS_ADMIN."
    ),
    configure=_configure,
    run=_run,
)
