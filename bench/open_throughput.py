"""open() throughput under each permission listener, side by side in one probe.

Figures 1 to 3 of the benchmark come from here. All listeners are up at once, each marking only
its own tmpfs (bench/workspace.py): the C allow-all responder, ``sessionio enforce`` with the
session-aware rules, and fapolicyd in its private namespace. The opener then runs in
``Settings.rounds`` rounds, and in each round once against every side, in a rotating order:

- ``no_listener``: a file on the unmarked tree, the ceiling;
- ``c_responder``: the responder's file, the least a user-space decision costs;
- ``c_responder_cached``: the responder's cold file, in its ignore mark: the least a cached
  allow costs (what the kernel itself charges, the floor for ``enforce_cached``);
- ``enforce``: a hot file of sessionio's tree, every open a decision;
- ``enforce_cached``: the cold file of sessionio's tree, no rule concerns it (ignore-mark cache);
- ``fapolicyd``: fapolicyd's file, opened from inside its namespace.

A side's figure is its opens divided by the time they took, summed over the rounds, so that a
burst of load from elsewhere on the machine lands on every side about equally. Each opener run
is a new process that first starts an audit session of its own, and runs on
``Settings.open_cpu``, where the listeners are pinned too.

What the kernel and the anchors say is checked, so that a figure cannot come from a setup that
did not do what it claims: the responder and fapolicyd must count every open, and sessionio's
marks must show that the hot file was never put in an ignore mark (and whether the cold one was).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, Unavailable
from bench.fapolicyd import RunningFapolicyd, running_fapolicyd
from bench.fdinfo import FAN_OPEN_PERM, MarkKind, fanotify_marks, open_perm_mark_on
from bench.probe import Probe, Sample
from bench.processes import Daemon, pinned
from bench.programs import parse_key_values, run_opener
from bench.sessionio_cli import enforce_stats, start_enforce
from bench.settings import Settings
from bench.workspace import Workspace

__all__ = ["PROBES", "ignored_inodes"]

NO_LISTENER = "no_listener_opens_per_s"
C_RESPONDER = "c_responder_opens_per_s"
C_CACHED = "c_responder_cached_opens_per_s"
ENFORCE = "enforce_opens_per_s"
ENFORCE_CACHED = "enforce_cached_opens_per_s"
FAPOLICYD = "fapolicyd_opens_per_s"
_NO_LIMIT = 2**62


@dataclass(slots=True)
class _Side:
    """One thing the opener measures: its files, its namespace, and the running totals."""

    key: str
    paths: tuple[Path, ...]
    mount_namespace: str | None = None
    opens: int = 0
    nanoseconds: float = 0.0
    attempted: int = 0

    @property
    def opens_per_s(self) -> float:
        return self.opens * 1e9 / self.nanoseconds


def ignored_inodes(pid: int, sdev: int) -> set[int]:
    """Inodes on filesystem ``sdev`` that process ``pid`` holds an OPEN_PERM ignore mark for."""
    return {
        mark.inode
        for mark in fanotify_marks(pid)
        if mark.kind is MarkKind.INODE
        and mark.sdev == sdev
        and mark.inode is not None
        and mark.ignored_mask & FAN_OPEN_PERM
    }


def _run_rounds(settings: Settings, workspace: Workspace, sides: list[_Side]) -> None:
    per_round = settings.open_seconds / settings.rounds
    for index in range(settings.rounds):
        shift = index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            result = run_opener(
                workspace.programs.opener,
                side.paths,
                count=_NO_LIMIT,
                seconds=per_round,
                warmup=settings.warmup,
                cpu=settings.open_cpu,
                loginuid=settings.loginuid,
                mount_namespace=side.mount_namespace,
            )
            side.opens += result.opens
            side.nanoseconds += result.ns_per_open * result.opens
            side.attempted += result.opens + settings.warmup


def open_throughput(settings: Settings, workspace: Workspace, wanted: frozenset[str]) -> Sample:
    sides: list[_Side] = []
    notes: dict[str, object] = {}
    problems: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if NO_LISTENER in wanted:
            sides.append(_Side(NO_LISTENER, (workspace.plain_file,)))
        responder: Daemon | None = None
        if wanted & {C_RESPONDER, C_CACHED}:
            argv = [
                str(workspace.programs.allow_responder),
                "-i",
                str(workspace.responder_cold_file),
            ]
            argv.append(str(workspace.responder.path))
            responder = stack.enter_context(
                Daemon("allow_responder", pinned(argv, settings.open_cpu), workspace.scratch)
            )
            responder.wait_for_line("ready")
            if C_RESPONDER in wanted:
                sides.append(_Side(C_RESPONDER, (workspace.responder_file,)))
            if C_CACHED in wanted:
                sides.append(_Side(C_CACHED, (workspace.responder_cold_file,)))
        enforce: Daemon | None = None
        if wanted & {ENFORCE, ENFORCE_CACHED}:
            try:
                enforce = stack.enter_context(
                    start_enforce(workspace, "enforce", settings.open_cpu)
                )
            except Unavailable as err:
                problems.update({ENFORCE: str(err), ENFORCE_CACHED: str(err)})
            else:
                enforce.wait_for_mark(open_perm_mark_on(workspace.enforce.identity))
                sides.append(_Side(ENFORCE, workspace.hot_files[:1]))
                sides.append(_Side(ENFORCE_CACHED, (workspace.cold_file,)))
        fapolicyd: RunningFapolicyd | None = None
        if FAPOLICYD in wanted:
            try:
                fapolicyd = stack.enter_context(
                    running_fapolicyd(workspace.scratch, settings.open_cpu)
                )
            except Unavailable as err:
                problems[FAPOLICYD] = str(err)
            else:
                sides.append(_Side(FAPOLICYD, (fapolicyd.file,), fapolicyd.mount_namespace))
        if not sides:
            return Sample({}, notes, problems)
        _run_rounds(settings, workspace, sides)
        if enforce is not None:
            cached = ignored_inodes(enforce.pid, workspace.enforce.identity.sdev)
            if not enforce.alive():
                raise BenchError(f"sessionio enforce exited ({enforce.process.returncode})")
            if os.stat(workspace.hot_files[0]).st_ino in cached:
                raise BenchError("sessionio enforce cached the session-dependent hot file")
            notes["cold_file_in_ignore_mark"] = os.stat(workspace.cold_file).st_ino in cached
            enforce.stop()
        if responder is not None:
            responder.stop()
    attempted = {side.key: side.attempted for side in sides}
    if enforce is not None:
        stats = enforce_stats(enforce)
        decided = stats.get("permission_events")
        _check_count(
            "sessionio enforce", decided if isinstance(decided, int) else None, attempted[ENFORCE]
        )
        notes["enforce_stats"] = stats
    if responder is not None:
        answered = _responder_events(responder)
        _check_count("the C responder", answered, attempted.get(C_RESPONDER, 0))
        notes["c_responder_events"] = answered
    if fapolicyd is not None:
        _check_count("fapolicyd", fapolicyd.allowed, attempted[FAPOLICYD])
        notes["fapolicyd_allowed"] = fapolicyd.allowed
        notes["fapolicyd_config_unchanged"] = True
    return Sample({side.key: side.opens_per_s for side in sides}, notes, problems)


def _responder_events(responder: Daemon) -> int | None:
    lines = [line for line in responder.stdout().splitlines() if line.startswith("events=")]
    return int(parse_key_values(lines[-1])["events"]) if lines else None


def _check_count(who: str, counted: int | None, attempted: int) -> None:
    if counted is None:
        raise BenchError(f"{who} did not report how many opens it answered")
    if counted < attempted:
        raise BenchError(f"{who} answered {counted} opens of the {attempted} the opener made")


PROBES = (
    Probe(
        "open_throughput",
        open_throughput,
        {
            NO_LISTENER: "opens/s",
            C_RESPONDER: "opens/s",
            C_CACHED: "opens/s",
            ENFORCE: "opens/s",
            ENFORCE_CACHED: "opens/s",
            FAPOLICYD: "opens/s",
        },
    ),
)
