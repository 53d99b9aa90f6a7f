"""``sessionio watch [PATH...]``: every file operation as it happens, with the process and the
login session that asked for it (fatrace, with sessions).

Without PATH every real filesystem is watched, like fatrace; a PATH restricts to that tree,
recursively (its filesystem is marked and events are kept by path, see
:mod:`sessionio.runtime.file_monitor`). Opens are held for the few microseconds it takes to
read the opener's session from /proc (a permission group that always allows), which is what
makes the session exact even for a process that exits right after its last write; opens are
held even when ``--op`` does not show them. ``--notify-only`` does not hold them, and then an
operation of a process that is gone before its event is read is reported with session -1
and attribution "unidentified".

The command's own operations are never reported (its own process is excluded whatever the
path), so ``--output`` may name a file in the watched tree. SIGINT and SIGTERM stop it: what
the kernel queued by then is still reported and the output flushed; SIGINT exits 130, SIGTERM 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType
from typing import IO, Final

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.cli.output import Output
from sessionio.rules.schema import Verdict
from sessionio.runtime.file_monitor import (
    DEFAULT_OPERATIONS,
    OPERATIONS,
    FileMonitor,
    FileOperation,
)
from sessionio.runtime.linux_kernel import LinuxKernel

__all__ = ["COMMAND", "HEADER", "RecordFilter", "human_line"]

HEADER: Final = (
    f"{'TIME':<15} {'OPERATION':<11} {'PID':>7} {'SESSION':>7} {'USER':<10} {'COMMAND':<15} PATH"
)


def human_line(op: FileOperation) -> str:
    """One aligned line: time, operation, pid, session, user, command, path.

    The session reads ``-1`` for a process without one and ``?`` when the requester could not
    be identified; a remembered requester (it had exited when its event was read) is marked
    ``~``. Lost events are one line saying so.
    """
    clock = datetime.fromtimestamp(op.time).strftime("%H:%M:%S.%f")
    if op.is_overflow:
        return f"{clock} {'overflow':<11} {op.detail}"
    session = {"unidentified": "?", "remembered": f"{op.session_id}~"}.get(
        str(op.attribution), str(op.session_id)
    )
    user = op.user or "-"
    comm = op.comm or "-"
    path = op.path
    if op.detail and op.operation == "rename":
        path = f"{path} ({op.detail})"
    elif op.verdict is Verdict.DENY:
        path = f"{path} (denied)"
    return f"{clock} {op.operation:<11} {op.pid:>7} {session:>7} {user:<10} {comm:<15} {path}"


class RecordFilter:
    """What ``--session``, ``--user``, ``--pid`` and ``--op`` keep: each option any of its
    values, all options together. Reports of lost events are always kept."""

    def __init__(
        self,
        sessions: list[int] | None = None,
        users: list[str] | None = None,
        pids: list[int] | None = None,
        operations: list[str] | None = None,
    ) -> None:
        self.sessions = frozenset(sessions or ())
        self.users = frozenset(users or ())
        self.pids = frozenset(pids or ())
        self.operations = frozenset(operations or ())

    def __call__(self, op: FileOperation) -> bool:
        if op.is_overflow:
            return True
        if self.sessions and op.session_id not in self.sessions:
            return False
        if self.users and op.user not in self.users and str(op.euid) not in self.users:
            return False
        if self.pids and op.pid not in self.pids and op.tid not in self.pids:
            return False
        return not self.operations or op.operation in self.operations


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="watch only this tree, recursively (may be repeated; default: every filesystem)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per operation")
    parser.add_argument(
        "--session",
        type=int,
        action="append",
        metavar="N",
        help="only operations of session N (-1: none or unidentified); may be repeated",
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME",
        help="only operations of this user (name or uid, effective, as ps); may be repeated",
    )
    parser.add_argument(
        "--pid", type=int, action="append", metavar="PID", help="only this process; repeatable"
    )
    parser.add_argument(
        "--op",
        action="append",
        choices=OPERATIONS,
        metavar="OP",
        help=(
            f"only this operation, one of {', '.join(OPERATIONS)} (default: all but read, "
            "which fires on every read); may be repeated"
        ),
    )
    parser.add_argument(
        "--output", metavar="FILE", help="append to FILE instead of standard output"
    )
    parser.add_argument(
        "--notify-only",
        action="store_true",
        help=(
            "never hold an open: cheaper, but a process that exits before its events are "
            "read is reported as unidentified (session -1)"
        ),
    )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGINT and SIGTERM set ``stop``; yields the list of signals received."""
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _printer(
    output: Output, keep: Callable[[FileOperation], bool], stop: threading.Event
) -> Callable[[FileOperation], None]:
    def show(op: FileOperation) -> None:
        if not keep(op):
            return
        try:
            # Only what is printed is built: the dispatcher keeps pace with the reader.
            if output.json_lines:
                output.record(op.as_row())
            else:
                output.record({}, human_line(op))
        except BrokenPipeError:
            stop.set()  # nobody reads any more: stop as if interrupted

    return show


def _open_output(path: str | None) -> IO[str]:
    if path is None:
        return sys.stdout
    return open(path, "a", encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not os.path.exists(path):
            print(f"sessionio watch: {path}: no such file or directory", file=sys.stderr)
            return ExitCode.FAILURE
    operations = list(dict.fromkeys(args.op)) if args.op else list(DEFAULT_OPERATIONS)
    stream = _open_output(args.output)
    stop = threading.Event()
    try:
        watched = list(operations)
        if not args.notify_only and "open" not in watched:
            watched.append("open")  # held, not shown: how a short-lived writer is known
        monitor = FileMonitor(
            LinuxKernel(), args.paths, operations=watched, permission=not args.notify_only
        )
        with _stop_on_signals(stop) as received, monitor:
            output = Output(json_lines=args.json, stream=stream)
            keep = RecordFilter(args.session, args.user, args.pid, operations)
            monitor.subscribe(_printer(output, keep, stop))
            where = ", ".join(monitor.roots or monitor.marked)
            print(
                f"sessionio watch: watching {'trees' if args.paths else 'filesystems'} "
                f"{where}; Ctrl-C stops",
                file=sys.stderr,
                flush=True,
            )
            if not args.json:
                output.record({}, HEADER)
            monitor.start()
            while not stop.wait(1.0):
                pass
        stream.flush()
    finally:
        if stream is not sys.stdout:
            stream.close()
    return ExitCode.INTERRUPTED if signal.SIGINT in received else ExitCode.OK


COMMAND = Command(
    name="watch",
    help="show file operations live, with process and login session",
    description=(
        "Show every file operation as it happens, with the process and the login session "
        "(audit session id; -1 for none) that asked for it. Without PATH every mounted "
        "filesystem is watched, like fatrace; a PATH restricts to that tree, recursively. "
        "Lines give time, operation, pid, session, user, command and path; --json prints one "
        "object per operation (op, path, pid, tid, session, comm, exe, uid, user, login_uid, "
        "login_user, time, attribution, verdict, outcome, detail). Needs CAP_SYS_ADMIN. "
        "SIGINT or SIGTERM stops it after reporting what was queued."
    ),
    configure=_configure,
    run=_run,
)
