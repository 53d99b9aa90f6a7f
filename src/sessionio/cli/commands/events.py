"""``sessionio events``: session notifications as they happen.

Each line is one transition of one session, as the live session service delivers it: human
lines by default, ``--json`` for one JSON object per line with ``event`` (created, terminated,
connected, disconnected, logon, logoff), ``session``, ``synthesized``, ``state``, ``local``,
``sequence``, ``time`` and ``detail`` (which source saw it: ``source=proc``, ``scan``, ``audit``
or ``logind``). Sessions that exist at start are not reported unless ``--existing`` is given.

SIGINT and SIGTERM stop it cleanly: they are blocked in every thread and taken by the main
thread with ``sigtimedwait``, so that no handler runs in the middle of a line. The exit code is
130 after SIGINT (interrupted, as shells report it) and 0 after SIGTERM (asked to stop).
"""

from __future__ import annotations

import argparse
import datetime
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.cli.output import Output
from sessionio.model.kernel import Subscription
from sessionio.model.session import EVENT_NAMES, SessionEvent
from sessionio.ntdef.values import IO_SESSION_EVENT, IO_SESSION_STATE
from sessionio.runtime.linux_kernel import LinuxKernel
from sessionio.runtime.session_service import DEFAULT_RESCAN_INTERVAL, SessionService

__all__ = ["COMMAND", "event_row", "human_line", "parse_event_names", "state_name"]

_EVENTS_BY_NAME = {name: event for event, name in EVENT_NAMES.items()}
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HEALTH_CHECK = 0.5
"""Seconds between looks at the service thread while waiting for a signal."""


def state_name(state: IO_SESSION_STATE) -> str:
    """``IoSessionStateDisconnectedLoggedOn`` as ``disconnected_logged_on``."""
    words = re.findall(r"[A-Z][a-z]*", state.name.removeprefix("IoSessionState"))
    return "_".join(word.lower() for word in words)


def parse_event_names(text: str) -> frozenset[IO_SESSION_EVENT]:
    """``--events created,logon`` as events; an unknown name is an argparse error."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _EVENTS_BY_NAME]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown event {', '.join(unknown) or text!r}: choose among "
            + ",".join(EVENT_NAMES.values())
        )
    return frozenset(_EVENTS_BY_NAME[name] for name in names)


def event_row(event: SessionEvent, when: datetime.datetime) -> dict[str, object]:
    """The ``--json`` object of one event."""
    return {
        "time": when.isoformat(timespec="microseconds"),
        "sequence": event.sequence,
        "session": int(event.session_id),
        "event": event.name,
        "state": state_name(event.state),
        "synthesized": event.synthesized,
        "local": event.local,
        "detail": event.detail,
    }


def human_line(row: dict[str, object]) -> str:
    """``12:00:01.250  session 7     logoff        logged_off  synthesized  source=proc ...``"""
    when = datetime.datetime.fromisoformat(str(row["time"])).astimezone()
    marker = "synthesized" if row["synthesized"] else "observed"
    return (
        f"{when.strftime('%H:%M:%S.%f')[:-3]}  session {row['session']!s:<5} "
        f"{row['event']!s:<13} {row['state']!s:<22} {marker:<11}  {row['detail']}"
    ).rstrip()


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--session",
        metavar="N",
        type=int,
        action="append",
        help="only this session (repeatable)",
    )
    parser.add_argument(
        "--events",
        metavar="LIST",
        type=parse_event_names,
        help="only these events, comma-separated: " + ",".join(EVENT_NAMES.values()),
    )
    parser.add_argument(
        "--existing",
        action="store_true",
        help="also report the sessions that exist at start (as found by the first scan)",
    )
    parser.add_argument(
        "--rescan-interval",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_RESCAN_INTERVAL,
        help=f"seconds between reconciling /proc scans (default {DEFAULT_RESCAN_INTERVAL:g})",
    )
    parser.add_argument("--no-audit", action="store_true", help="do not read AUDIT_LOGIN records")
    parser.add_argument("--no-logind", action="store_true", help="do not listen to logind")


def _subscribe(
    service: SessionService, args: argparse.Namespace, callback: Callable[[SessionEvent], None]
) -> list[Subscription]:
    scopes: Sequence[int | None] = sorted(set(args.session)) if args.session else [None]
    return [
        service.kernel.on_session_event(callback, session=scope, events=args.events)
        for scope in scopes
    ]


def _run(args: argparse.Namespace) -> int:
    if args.rescan_interval <= 0:
        print("sessionio: --rescan-interval must be positive", file=sys.stderr)
        return ExitCode.USAGE
    output = Output(json_lines=args.json)
    broken = threading.Event()
    service = SessionService(
        LinuxKernel(),
        audit=not args.no_audit,
        logind=not args.no_logind,
        rescan_interval=args.rescan_interval,
    )

    def report(event: SessionEvent) -> None:
        # Runs on the service thread; ``ready`` is set on that thread after the first scan.
        if broken.is_set() or not (args.existing or service.ready):
            return
        row = event_row(event, datetime.datetime.now(datetime.UTC))
        try:
            output.record(row, human_line(row))
        except (BrokenPipeError, ValueError):  # the reader went away (ValueError: closed)
            broken.set()

    subscriptions = _subscribe(service, args, report)
    received: int | None = None
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        service.start()  # its threads inherit the mask: the signals come to this thread
        print(f"sessionio: following sessions ({', '.join(service.sources)})", file=sys.stderr)
        sys.stderr.flush()
        while received is None and not broken.is_set():
            info = signal.sigtimedwait(_STOP_SIGNALS, _HEALTH_CHECK)
            if info is not None:
                received = info.si_signo
            elif not service.running:
                break
    finally:
        service.stop()
        for subscription in subscriptions:
            subscription.cancel()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    if broken.is_set():
        return ExitCode.FAILURE
    if service.error is not None:
        print(f"sessionio: the session service stopped: {service.error}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.INTERRUPTED if received == signal.SIGINT else ExitCode.OK


COMMAND = Command(
    name="events",
    help="follow session notifications as they happen",
    description=(
        "Print each session transition (created, connected, logon, logoff, disconnected, "
        "terminated) as the live sources report it: the proc connector and /proc scans, "
        "AUDIT_LOGIN records when audit is enabled, and systemd-logind where it runs. Events "
        "Linux does not observe are synthesized in the documented order and marked so. "
        "SIGINT or SIGTERM stops it."
    ),
    configure=_configure,
    run=_run,
)
