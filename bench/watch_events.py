"""Notification events: ``sessionio watch --json`` against fatrace on the same paced workload.

Several C writers (bench/c/writer.c) each create, write and close distinct files
``w<writer>/f<number>`` on a fresh tmpfs for ``Settings.watch_seconds``, paced to
``Settings.files_per_s`` in all. Because every file is new and written once, what was generated
is known exactly from the writers' counts: per file one create, one open, one modify and one
close_write (:data:`GENERATED`).

A listener's **reported operations** are the distinct (file, operation) pairs it printed for
generated files. fatrace merges operations into one line ("CWO") when the kernel merged their
events, and sessionio prints one record per operation, so lines are not comparable but (file,
operation) pairs are. The events-per-second ratio counts the operations both tools name for a
written file (:data:`COMPARED`), divided by the time from the writers' start to the listener's
last record (by the listener's own timestamps: a listener that lags behind the writers is
charged for the time it takes to catch up). A generated operation a listener never reported is
**lost**; for fatrace, only what it can name counts (:data:`FATRACE_NAMES`).

The listener has a CPU of its own (``Settings.listener_cpu``); the writers share another. The
writers cannot go faster than a listener that holds their opens (sessionio watch does, to read
the opener's session while it waits; ``--notify-only`` does not), so the workload is the same
only up to the pace the listener allows, which is part of what the ratio shows. The listener's
CPU time per reported operation shows the headroom the paced workload hides.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, Unavailable
from bench.fdinfo import any_mark_on
from bench.probe import Probe, Sample
from bench.processes import Daemon, cpu_seconds, pinned
from bench.programs import WriterResult, parse_writer_output
from bench.sessionio_cli import require_subcommand, sessionio_script
from bench.settings import Settings
from bench.workspace import Workspace, scratch_tmpfs

__all__ = [
    "COMPARED",
    "FATRACE_KINDS",
    "FATRACE_NAMES",
    "GENERATED",
    "PROBES",
    "Generated",
    "Record",
    "Report",
    "generated_file",
    "parse_fatrace_line",
    "parse_watch_line",
    "tally",
]

GENERATED = ("create", "open", "modify", "close_write")
"""What the writers generate for each file, in the vocabulary of sessionio's rule operations."""

FATRACE_NAMES = ("open", "modify", "close_write")
"""What fatrace can name of it: it reports a creation on the directory, without the file."""

COMPARED = ("modify", "close_write")
"""The operations counted for the events-per-second ratio: what both tools report for a file
written (fatrace, which marks opens too, reports them merged with the writes more often than
not, and sessionio may be told not to report opens)."""

FATRACE_KINDS = {"R": "read", "W": "modify", "C": "close_write", "O": "open", "+": "create"}
"""fatrace's letters; "C" is any close, which for a file just written is close_write."""

_FATRACE_LINE = re.compile(
    r"^(?P<time>\d+\.\d+) (?P<comm>.*)\((?P<pid>\d+)\): (?P<kinds>\S+) +(?P<path>.*)$"
)
_GENERATED_NAME = re.compile(r"^w(\d+)/f(\d{8})$")


@dataclass(frozen=True, slots=True)
class Record:
    """One output record: when the listener stamped it (epoch seconds), operations, path."""

    time: float
    operations: tuple[str, ...]
    path: str


@dataclass(frozen=True, slots=True)
class Generated:
    """What the writers made: ``files[w]`` files ``w<w>/f00000000`` ... in the tree."""

    files: tuple[int, ...]

    @property
    def total_files(self) -> int:
        return sum(self.files)

    def operations(self, kinds: Iterable[str]) -> int:
        return self.total_files * len(set(kinds))


@dataclass(frozen=True, slots=True)
class Report:
    """The generated (writer, file number, operation) triples a listener reported, and when its
    last record about a generated file was stamped (None if there was none)."""

    seen: frozenset[tuple[int, int, str]]
    last_time: float | None

    def count(self, kinds: Iterable[str]) -> int:
        wanted = set(kinds)
        return sum(1 for _, _, kind in self.seen if kind in wanted)

    def lost(self, generated: Generated, kinds: Iterable[str]) -> int:
        return generated.operations(kinds) - self.count(kinds)


def generated_file(path: str, tree: str, generated: Generated) -> tuple[int, int] | None:
    """``(writer, number)`` if ``path`` is a file the writers generated, else None."""
    if path.endswith(" (deleted)"):
        path = path[: -len(" (deleted)")]
    prefix = tree.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    match = _GENERATED_NAME.match(path[len(prefix) :])
    if match is None:
        return None
    writer, number = int(match.group(1)), int(match.group(2))
    if writer >= len(generated.files) or number >= generated.files[writer]:
        return None
    return writer, number


def parse_fatrace_line(line: str) -> Record | None:
    """One line of ``fatrace -t -t``; None for a line of another shape."""
    match = _FATRACE_LINE.match(line.rstrip("\n"))
    if match is None:
        return None
    kinds = tuple(FATRACE_KINDS[char] for char in match.group("kinds") if char in FATRACE_KINDS)
    return Record(float(match.group("time")), kinds, match.group("path"))


def parse_watch_line(line: str) -> Record | None:
    """One ``sessionio watch --json`` record (``time``, ``op``, ``path``); None if it is not."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    path, operation, stamp = record.get("path"), record.get("op"), record.get("time")
    if not (isinstance(path, str) and isinstance(operation, str) and isinstance(stamp, str)):
        return None
    try:
        when = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return Record(when.timestamp(), (operation,), path)


def tally(
    lines: Iterable[str],
    parse: Callable[[str], Record | None],
    tree: str,
    generated: Generated,
) -> Report:
    """Collect the generated (writer, number, operation) triples a listener's output names."""
    seen: set[tuple[int, int, str]] = set()
    last: float | None = None
    for line in lines:
        record = parse(line)
        if record is None:
            continue
        file = generated_file(record.path, tree, generated)
        if file is None:
            continue
        last = record.time if last is None else max(last, record.time)
        for kind in record.operations:
            if kind in GENERATED:
                seen.add((file[0], file[1], kind))
    return Report(frozenset(seen), last)


def _run_writers(settings: Settings, workspace: Workspace, tree: Path) -> list[WriterResult]:
    rate = max(settings.files_per_s // settings.writers, 1)
    duration_ms = int(settings.watch_seconds * 1000)
    processes = []
    for index in range(settings.writers):
        directory = tree / f"w{index}"
        directory.mkdir()
        argv = [str(workspace.programs.writer), "-s", str(duration_ms), "-r", str(rate)]
        argv += ["-c", str(settings.writer_cpu), str(directory)]
        processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for process in processes:
        out, err = process.communicate(timeout=settings.watch_seconds + 120)
        if process.returncode != 0:
            raise BenchError(f"a writer failed: {err.decode(errors='replace').strip()}")
        results.append(parse_writer_output(out.decode()))
    return results


def _wait_drained(daemon: Daemon, settings: Settings) -> bool:
    """Wait until the listener's output stops growing; False if it still grew at the timeout."""
    size = daemon.stdout_path.stat().st_size
    last_growth = time.monotonic()
    deadline = last_growth + settings.drain_timeout_s
    while time.monotonic() - last_growth < settings.drain_quiet_s:
        if time.monotonic() > deadline:
            return False
        if not daemon.alive():
            raise BenchError(f"{daemon.name} exited during the workload: {daemon.stderr()[-300:]}")
        time.sleep(0.01)
        now_size = daemon.stdout_path.stat().st_size
        if now_size != size:
            size, last_growth = now_size, time.monotonic()
    return True


def _measure(
    name: str,
    argv: list[str],
    parse: Callable[[str], Record | None],
    names: tuple[str, ...],
    settings: Settings,
    workspace: Workspace,
) -> Sample:
    tree = workspace.scratch / f"{name}-tree"
    with scratch_tmpfs(tree) as identity:
        pinned_argv = pinned(argv, settings.listener_cpu)
        with Daemon(name, pinned_argv, workspace.scratch, cwd=tree) as daemon:
            daemon.wait_for_mark(any_mark_on(identity))
            cpu_before = cpu_seconds(daemon.pid)
            started = time.time()
            writers = _run_writers(settings, workspace, tree)
            drained = _wait_drained(daemon, settings)
            cpu_used = cpu_seconds(daemon.pid) - cpu_before
            daemon.stop()
        generated = Generated(tuple(result.files for result in writers))
        with open(daemon.stdout_path, encoding="utf-8", errors="replace") as stream:
            report = tally(stream, parse, str(tree), generated)
        daemon.stdout_path.unlink()
    writing = max(result.elapsed_ns for result in writers) / 1e9
    window = max(writing, 0.0 if report.last_time is None else report.last_time - started)
    reported = report.count(COMPARED)
    return Sample(
        {
            f"{name}_ops_per_s": reported / window,
            f"{name}_lost": float(report.lost(generated, names)),
            f"{name}_cpu_us_per_op": cpu_used * 1e6 / max(reported, 1),
        },
        {
            f"{name}_generated_files": generated.total_files,
            f"{name}_lost_writes": report.lost(generated, COMPARED),
            f"{name}_drained": drained,
            f"{name}_window_s": round(window, 3),
        },
    )


def fatrace(settings: Settings, workspace: Workspace, wanted: frozenset[str]) -> Sample:
    binary = shutil.which("fatrace")
    if binary is None:
        raise Unavailable("fatrace is not installed (apt-get install -y fatrace)")
    # -c: only the filesystem of the working directory, the fresh tmpfs; -t -t: epoch stamps.
    argv = [binary, "-c", "-t", "-t"]
    return _measure("fatrace", argv, parse_fatrace_line, FATRACE_NAMES, settings, workspace)


def watch(settings: Settings, workspace: Workspace, wanted: frozenset[str]) -> Sample:
    require_subcommand("watch")
    tree = workspace.scratch / "watch-tree"
    argv = [str(sessionio_script()), "watch", "--json", str(tree)]
    return _measure("watch", argv, parse_watch_line, GENERATED, settings, workspace)


def watch_notify_only(settings: Settings, workspace: Workspace, wanted: frozenset[str]) -> Sample:
    """``watch --json --notify-only``: no open is held, as with fatrace; for comparison."""
    require_subcommand("watch")
    tree = workspace.scratch / "watch_notify_only-tree"
    argv = [str(sessionio_script()), "watch", "--json", "--notify-only", str(tree)]
    return _measure("watch_notify_only", argv, parse_watch_line, GENERATED, settings, workspace)


def _produces(name: str) -> dict[str, str]:
    return {
        f"{name}_ops_per_s": "operations/s",
        f"{name}_lost": "operations",
        f"{name}_cpu_us_per_op": "us",
    }


PROBES = (
    Probe("fatrace", fatrace, _produces("fatrace")),
    Probe("watch", watch, _produces("watch")),
    Probe("watch_notify_only", watch_notify_only, _produces("watch_notify_only")),
)
