"""The benchmark run: build, measure in interleaved repeats, write the result file, print the table.

Each repeat runs every selected probe once, in a fixed order, so that slow drift of the machine
touches all of them alike; the figures are then summarised over the repeats (bench/results.py).
The whole run happens in a private mount namespace entered at the start, so the benchmark's
tmpfs trees are invisible to the rest of the machine and vanish with the run.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import enforce_rss, open_throughput, session_lookup, watch_events
from bench.errors import BenchError, Unavailable
from bench.mounts import enter_private_mount_namespace
from bench.probe import Probe
from bench.programs import build_programs
from bench.results import FIGURES, build_result, render_table, validate_result
from bench.settings import Settings
from bench.workspace import workspace

__all__ = ["PROBES", "RESULTS_DIR", "Selection", "machine", "run", "select_probes"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"

PROBES: tuple[Probe, ...] = (
    *open_throughput.PROBES,
    *session_lookup.PROBES,
    *watch_events.PROBES,
    *enforce_rss.PROBES,
)
"""Every probe, in the order each repeat runs them."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What a run measures: the probes, the raw figures wanted of them, the headline figures."""

    probes: tuple[Probe, ...]
    keys: frozenset[str]
    figures: tuple[str, ...] | None


def select_probes(only: Sequence[str] | None) -> Selection:
    """What ``--only`` (figure or probe names; None: everything) asks for.

    ValueError for a name that is neither a figure nor a probe.
    """
    every_key = frozenset(key for probe in PROBES for key in probe.produces)
    if not only:
        return Selection(PROBES, every_key, None)
    figures = {spec.name: spec for spec in FIGURES}
    probes = {probe.name: probe for probe in PROBES}
    keys: set[str] = set()
    named: list[str] = []
    for name in only:
        if name in figures:
            named.append(name)
            keys.update(figures[name].needs)
        elif name in probes:
            keys.update(probes[name].produces)
        else:
            choices = ", ".join([*figures, *probes])
            raise ValueError(f"unknown figure or probe {name!r}; choose from {choices}")
    named += [spec.name for spec in FIGURES if set(spec.needs) <= keys and spec.name not in named]
    chosen = tuple(probe for probe in PROBES if keys & set(probe.produces))
    ordered = tuple(spec.name for spec in FIGURES if spec.name in named)
    return Selection(chosen, frozenset(keys), ordered)


def machine() -> dict[str, object]:
    """What the figures were taken on."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu_model": model,
        "python": platform.python_version(),
        "memory_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
    }


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _summary(values: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:,.2f}" for key, value in values.items())


def run(
    settings: Settings,
    *,
    only: Sequence[str] | None = None,
    output: Path = RESULTS_DIR / "latest.json",
    chart: bool = False,
) -> int:
    """Run the benchmark; 0 when every selected probe ran (targets met or not), 1 otherwise."""
    selection = select_probes(only)
    if os.geteuid() != 0:
        _log("bench: fanotify permission listeners, mounts and loginuid need root")
        return 77
    enter_private_mount_namespace()
    programs = build_programs()
    raw: dict[str, list[float]] = {}
    problems: dict[str, str] = {}
    notes: dict[str, list[dict[str, object]]] = {}
    failed = False
    started = datetime.datetime.now(datetime.UTC)
    with workspace(programs, settings.rss_files) as space:
        broken: set[str] = set()
        for repeat in range(1, settings.repeats + 1):
            for probe in selection.probes:
                keys = frozenset(selection.keys & set(probe.produces)) - broken
                if not keys or (probe.once and repeat > 1):
                    continue
                prefix = f"[{repeat}/{settings.repeats}] {probe.name}"
                try:
                    sample = probe.run(settings, space, keys)
                except BenchError as err:
                    failed = failed or not isinstance(err, Unavailable)
                    kind = "unavailable" if isinstance(err, Unavailable) else "failed"
                    _log(f"{prefix}: {kind}: {err}")
                    reasons = {key: f"{kind}: {err}" for key in keys}
                else:
                    _log(f"{prefix}: {_summary(sample.values)}")
                    for key, reason in sample.problems.items():
                        _log(f"{prefix}: {key} unavailable: {reason}")
                    reasons = {
                        key: f"unavailable: {sample.problems.get(key, 'not reported')}"
                        for key in keys
                        if key not in sample.values
                    }
                    for key in keys - set(reasons):
                        raw.setdefault(key, []).append(sample.values[key])
                    notes.setdefault(probe.name, []).append(sample.notes)
                for key, reason in reasons.items():
                    # A figure missing from one repeat is dropped from all: ratios need pairs.
                    broken.add(key)
                    problems[key] = f"{probe.name} {reason}"
                    raw.pop(key, None)
    units = {key: unit for probe in selection.probes for key, unit in probe.produces.items()}
    header: dict[str, object] = {
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if settings.quick else "full",
        "machine": machine(),
        "settings": settings.to_json(),
        "pinning": (
            f"opener and permission listener pinned together on CPU {settings.open_cpu} "
            "(cross-CPU wakeups cost 40-70 us on this VM, linux-mechanisms.md section 6); "
            f"notification listener on CPU {settings.listener_cpu}, writers on CPU "
            f"{settings.writer_cpu}"
        ),
        "enforce_rss_decisions": settings.rss_decisions,
        "enforce_rss_decisions_note": (
            "quick run: fewer decisions than the full run's one million"
            if settings.quick
            else "one million decisions"
        ),
        "only": list(only) if only else None,
    }
    document = build_result(
        raw,
        units=units,
        problems=problems,
        header=header,
        notes=notes,
        wanted=selection.figures,
    )
    validate_result(document)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(render_table(document))
    print(f"\nwritten: {output}")
    if chart:
        from bench.chart import draw_chart

        picture = output.with_suffix(".png")
        draw_chart(document, picture)
        print(f"written: {picture}")
    return 1 if failed else 0
