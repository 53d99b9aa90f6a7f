"""``sessionio ps``: every process with its login session, like tasklist's Session# column.

The rows come from the current kernel (the live one on Linux; tests activate one over a fake
/proc tree), one consistent snapshot per process: a process that exits while listed is left
out, never shown with a wrong session. A thread that wrote its own loginuid is in another
session than its process; such processes are marked ``*`` and their threads listed below the
table (``threads`` in the JSON).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.cli.output import Column, Output
from sessionio.model.kernel import current_kernel
from sessionio.runtime.linux_kernel import user_name
from sessionio.runtime.sessions import ProcessInfo, list_processes

__all__ = ["COMMAND", "COLUMNS", "THREAD_MARK", "process_row", "select"]

COLUMNS: tuple[Column, ...] = (
    Column("pid", "PID", right=True),
    Column("ppid", "PPID", right=True),
    Column("user", "USER"),
    Column("session_cell", "SESSION", right=True),
    Column("tty", "TTY"),
    Column("command", "COMMAND"),
)

THREAD_MARK = "*"
"""Appended to the SESSION cell of a process with a thread in another session."""


def process_row(info: ProcessInfo) -> dict[str, object]:
    """The ``--json`` object of one process.

    ``user`` / ``euid`` are the effective owner (ps's USER), ``uid`` the real one;
    ``login_uid`` / ``login_user`` the session's user. ``session`` is -1 for none.
    ``start_time`` is in seconds since the epoch; ``threads`` lists ``{tid, session}`` for
    the threads in another session than the process.
    """
    process = info.process
    euid = info.euid if info.euid is not None else process.uid
    return {
        "pid": int(process.pid),
        "ppid": None if process.ppid is None else int(process.ppid),
        "user": user_name(euid),
        "uid": process.uid,
        "euid": euid,
        "login_uid": process.login_uid,
        "login_user": user_name(process.login_uid),
        "session": int(process.session_id),
        "tty": process.tty,
        "comm": process.name,
        "exe": process.exe,
        "cmdline": list(process.cmdline),
        "start_time": process.start_time,
        "threads": [{"tid": int(tid), "session": int(sid)} for tid, sid in info.thread_sessions],
    }


def _human(row: dict[str, object], info: ProcessInfo, pad: str) -> dict[str, object]:
    """The table cells; ``pad`` keeps unmarked session numbers aligned with marked ones."""
    mark = THREAD_MARK if info.thread_sessions else pad
    command = " ".join(info.process.cmdline) or f"[{info.process.name}]"
    return {**row, "session_cell": f"{row['session']}{mark}", "command": command}


def _user_matches(info: ProcessInfo, users: Sequence[str]) -> bool:
    euid = info.euid if info.euid is not None else info.process.uid
    return euid is not None and (str(euid) in users or user_name(euid) in users)


def select(
    processes: Sequence[ProcessInfo],
    sessions: Sequence[int] | None = None,
    users: Sequence[str] | None = None,
) -> list[ProcessInfo]:
    """The processes ``--session`` and ``--user`` keep (each option: any of its values).

    A process is in session N when it or one of its threads is; a user is matched by name or
    by number against the effective uid.
    """
    kept = list(processes)
    if sessions:
        wanted = set(sessions)
        kept = [p for p in kept if not wanted.isdisjoint(p.session_ids)]
    if users:
        kept = [p for p in kept if _user_matches(p, users)]
    return kept


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--session",
        type=int,
        action="append",
        metavar="N",
        help="only processes of session N (-1: no session); may be repeated",
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME",
        help="only processes of this user (name or uid, effective); may be repeated",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per process")


def _run(args: argparse.Namespace) -> int:
    processes = select(list_processes(current_kernel()), args.session, args.user)
    output = Output(json_lines=args.json)
    rows = [process_row(info) for info in processes]
    if args.json:
        output.table(COLUMNS, rows)
        return ExitCode.OK
    marked = [info for info in processes if info.thread_sessions]
    pad = " " if marked else ""
    cells = [_human(row, info, pad) for row, info in zip(rows, processes, strict=True)]
    output.table(COLUMNS, cells)
    if marked:
        output.stream.write(f"{THREAD_MARK} threads in another session than their process:\n")
        for info in marked:
            threads = ", ".join(f"tid {tid} in {sid}" for tid, sid in info.thread_sessions)
            output.stream.write(f"  pid {info.process.pid}: {threads}\n")
        output.stream.flush()
    return ExitCode.OK


COMMAND = Command(
    name="ps",
    help="list processes with their login session",
    description=(
        "List every process with its audit login session (/proc/PID/sessionid; -1 when it has "
        "none), like the Session# column of tasklist. USER is the effective owner. A process "
        "with a thread in another session is marked * and its threads listed after the table. "
        "--json prints one object per process (pid, ppid, user, uid, euid, login_uid, "
        "login_user, session, tty, comm, exe, cmdline, start_time, threads)."
    ),
    configure=_configure,
    run=_run,
)
