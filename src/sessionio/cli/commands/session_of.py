"""``sessionio session-of PID...``: the login session of each process, and its user.

What ``ProcessIdToSessionId`` answers, for several pids at once and for a shell: the audit
session (-1 when the process has none) and the session's user (its loginuid). A pid no
process has, or one the kernel refuses to show, is named on stderr and makes the command exit
1, after the others are printed; something that is not a pid is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import sys

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.cli.output import Column, Output
from sessionio.errors import AccessDenied, NoSuchProcess
from sessionio.model.kernel import current_kernel
from sessionio.model.process import Process
from sessionio.runtime.linux_kernel import user_name

__all__ = ["COLUMNS", "COMMAND", "parse_pid", "pid_row"]

COLUMNS: tuple[Column, ...] = (
    Column("pid", "PID", right=True),
    Column("session", "SESSION", right=True),
    Column("user", "USER"),
)


def parse_pid(text: str) -> int:
    """A pid argument: decimal digits, at least 1 (0 is no process: the Idle process of NT)."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a process id")
    pid = int(text)
    if pid == 0:
        raise argparse.ArgumentTypeError("0 is not a process id (pids start at 1)")
    return pid


def pid_row(process: Process) -> dict[str, object]:
    """The ``--json`` object of one pid: its session (-1 for none) and the session's user."""
    return {
        "pid": int(process.pid),
        "session": int(process.session_id),
        "user": user_name(process.login_uid),
        "login_uid": process.login_uid,
    }


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pids", nargs="+", type=parse_pid, metavar="PID", help="process ids")
    parser.add_argument("--json", action="store_true", help="one JSON object per pid")


def _run(args: argparse.Namespace) -> int:
    kernel = current_kernel()
    rows = []
    failed = False
    for pid in args.pids:
        try:
            rows.append(pid_row(kernel.process(pid)))
        except NoSuchProcess:
            print(f"sessionio: no process has pid {pid}", file=sys.stderr)
            failed = True
        except AccessDenied:
            print(f"sessionio: pid {pid}: access denied", file=sys.stderr)
            failed = True
    if rows:
        Output(json_lines=args.json).table(COLUMNS, rows)
    return ExitCode.FAILURE if failed else ExitCode.OK


COMMAND = Command(
    name="session_of",
    help="the login session of processes",
    description=(
        "Print the audit login session of each PID (-1 when it has none) and the session's "
        "user. --json prints one object per pid (pid, session, user, login_uid). A pid no "
        "process has is reported on stderr and the command exits 1, after printing the others."
    ),
    configure=_configure,
    run=_run,
)
