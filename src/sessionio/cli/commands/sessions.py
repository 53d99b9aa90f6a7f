"""``sessionio sessions``: the login sessions of this machine, like ``loginctl list-sessions``.

Sessions are the kernel's audit sessions, found by grouping the processes by session id;
logind, where it answers on the system bus, adds remote host, type, class and state, and utmp
fills in a remote host or tty where logind does not. Without a system bus or logind the
command answers from /proc alone, at once. Processes with no session are one row, id -1.
"""

from __future__ import annotations

import argparse
import sys
import time

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.cli.output import Column, Output
from sessionio.errors import BrokenResourceError, MalformedEventError, SessionServiceError
from sessionio.linux.logind import LogindClient
from sessionio.linux.utmp import UTMP_PATH
from sessionio.model.kernel import current_kernel
from sessionio.runtime.sessions import LOGIND_TIMEOUT, SessionInfo, list_sessions

__all__ = ["COLUMNS", "COMMAND", "session_row"]

COLUMNS: tuple[Column, ...] = (
    Column("id", "SESSION", right=True),
    Column("user", "USER"),
    Column("leader", "LEADER", right=True),
    Column("where", "TTY/HOST"),
    Column("state", "STATE"),
    Column("started_at", "STARTED"),
    Column("processes", "PROCESSES", right=True),
)


def session_row(session: SessionInfo) -> dict[str, object]:
    """The ``--json`` object of one session; ``started`` is in seconds since the epoch."""
    return {
        "id": int(session.id),
        "user": session.user,
        "uid": session.uid,
        "leader": session.leader,
        "tty": session.tty,
        "remote": session.remote,
        "remote_host": session.remote_host,
        "type": session.type,
        "class": session.session_class,
        "state": session.state,
        "started": session.started,
        "processes": session.processes,
        "logind": session.logind,
        "utmp": session.utmp,
    }


def _human(row: dict[str, object], session: SessionInfo) -> dict[str, object]:
    started = None
    if session.started is not None:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(session.started))
    return {**row, "where": session.remote_host or session.tty, "started_at": started}


def _sessions(utmp_path: str) -> list[SessionInfo]:
    """The table, with logind if it is on the system bus; without it if it fails to answer."""
    kernel = current_kernel()
    logind = LogindClient.connect(timeout=LOGIND_TIMEOUT)
    if logind is None:
        return list_sessions(kernel, None, utmp_path)
    with logind:
        try:
            return list_sessions(kernel, logind, utmp_path)
        except (SessionServiceError, BrokenResourceError, MalformedEventError) as err:
            print(f"sessionio: logind did not answer ({err}); listing without it", file=sys.stderr)
    return list_sessions(kernel, None, utmp_path)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--utmp",
        default=UTMP_PATH,
        metavar="FILE",
        help=f"the utmp file to read logins from, as who(1) takes one (default {UTMP_PATH})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per session")


def _run(args: argparse.Namespace) -> int:
    sessions = _sessions(args.utmp)
    rows = [session_row(session) for session in sessions]
    output = Output(json_lines=args.json)
    if args.json:
        output.table(COLUMNS, rows)
    else:
        output.table(COLUMNS, [_human(r, s) for r, s in zip(rows, sessions, strict=True)])
    return ExitCode.OK


COMMAND = Command(
    name="sessions",
    help="list login sessions and their processes",
    description=(
        "List the audit login sessions that have processes (and those logind knows), with "
        "user, leader, tty or remote host, state, start and process count; processes with no "
        "session are the row with id -1. logind on the system bus ($DBUS_SYSTEM_BUS_ADDRESS) "
        "supplies remote host, type, class and state; without it the state is 'online'. "
        "--json prints one object per session (id, user, uid, leader, tty, remote, "
        "remote_host, type, class, state, started, processes, logind, utmp)."
    ),
    configure=_configure,
    run=_run,
)
