"""The figures the benchmark reports, the result file they are written to, and the table.

Every headline figure is computed per repeat from raw figures taken in that same repeat (a ratio
from two runs side by side, see bench/stats.py), then summarised over the repeats. Ratios are
"higher is better". The result document is plain JSON (``bench/results/latest.json``); the
table and the chart are drawn from the document alone, so an old file can be re-rendered.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bench.stats import Figure, paired_ratios

__all__ = [
    "FIGURES",
    "SCHEMA",
    "FigureSpec",
    "Target",
    "build_result",
    "figure_names",
    "format_value",
    "render_table",
    "validate_result",
]

SCHEMA = "sessionio-bench/1"

Raw = Mapping[str, Sequence[float]]


@dataclass(frozen=True, slots=True)
class Target:
    """``statistic op value``, e.g. the median >= 0.9, or the worst repeat == 0."""

    op: Literal[">=", "<=", "=="]
    value: float
    statistic: Literal["median", "min", "max"] = "median"

    def met(self, figure: Figure) -> bool:
        observed = {"median": figure.median, "min": figure.minimum, "max": figure.maximum}
        compare: Callable[[float, float], bool] = {
            ">=": operator.ge,
            "<=": operator.le,
            "==": operator.eq,
        }[self.op]
        return compare(observed[self.statistic], self.value)

    def text(self) -> str:
        scope = "" if self.statistic == "median" else f" ({self.statistic} of repeats)"
        return f"{self.op} {self.value:g}{scope}"


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """A headline figure: how its per-repeat values come from the raw figures, and its target."""

    name: str
    description: str
    unit: str
    needs: tuple[str, ...]
    compute: Callable[[Raw], tuple[float, ...]]
    target: Target | None = None


def _ratio(numerator: str, denominator: str) -> Callable[[Raw], tuple[float, ...]]:
    return lambda raw: paired_ratios(raw[numerator], raw[denominator])


def _same(key: str) -> Callable[[Raw], tuple[float, ...]]:
    return lambda raw: tuple(raw[key])


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "enforce_vs_c_responder",
        "opens/s under sessionio enforce (session-aware rules, every open decided) / under the "
        "C allow-all responder",
        "ratio",
        ("enforce_opens_per_s", "c_responder_opens_per_s"),
        _ratio("enforce_opens_per_s", "c_responder_opens_per_s"),
        Target(">=", 0.9),
    ),
    FigureSpec(
        "cached_vs_no_listener",
        "opens/s of files no rule concerns under sessionio enforce / with no listener",
        "ratio",
        ("enforce_cached_opens_per_s", "no_listener_opens_per_s"),
        _ratio("enforce_cached_opens_per_s", "no_listener_opens_per_s"),
        Target(">=", 0.8),
    ),
    FigureSpec(
        "c_cached_vs_no_listener",
        "opens/s of a file in the C responder's ignore mark / with no listener: the kernel's own "
        "cost of a cached allow, the floor for cached_vs_no_listener",
        "ratio",
        ("c_responder_cached_opens_per_s", "no_listener_opens_per_s"),
        _ratio("c_responder_cached_opens_per_s", "no_listener_opens_per_s"),
    ),
    FigureSpec(
        "fapolicyd_vs_c_responder",
        "opens/s under fapolicyd (allow perm=any all : all) / under the C allow-all responder",
        "ratio",
        ("fapolicyd_opens_per_s", "c_responder_opens_per_s"),
        _ratio("fapolicyd_opens_per_s", "c_responder_opens_per_s"),
    ),
    FigureSpec(
        "enforce_vs_fapolicyd",
        "opens/s under sessionio enforce / under fapolicyd: as fast as the C daemon users know?",
        "ratio",
        ("enforce_opens_per_s", "fapolicyd_opens_per_s"),
        _ratio("enforce_opens_per_s", "fapolicyd_opens_per_s"),
        Target(">=", 1.0),
    ),
    FigureSpec(
        "watch_vs_fatrace",
        "reported write operations/s of sessionio watch --json / of fatrace, same paced workload",
        "ratio",
        ("watch_ops_per_s", "fatrace_ops_per_s"),
        _ratio("watch_ops_per_s", "fatrace_ops_per_s"),
        Target(">=", 0.95),
    ),
    FigureSpec(
        "watch_loss",
        "generated operations (open, modify, close_write of each file) sessionio watch never "
        "reported",
        "operations",
        ("watch_lost",),
        _same("watch_lost"),
        Target("==", 0, "max"),
    ),
    FigureSpec(
        "watch_notify_only_vs_fatrace",
        "the same as watch_vs_fatrace for sessionio watch --json --notify-only (opens not held)",
        "ratio",
        ("watch_notify_only_ops_per_s", "fatrace_ops_per_s"),
        _ratio("watch_notify_only_ops_per_s", "fatrace_ops_per_s"),
    ),
    FigureSpec(
        "watch_notify_only_loss",
        "the same as watch_loss for sessionio watch --json --notify-only",
        "operations",
        ("watch_notify_only_lost",),
        _same("watch_notify_only_lost"),
    ),
    FigureSpec(
        "watch_cpu_vs_fatrace",
        "CPU time per reported operation, fatrace's / sessionio watch's (the headroom that the "
        "paced workload hides)",
        "ratio",
        ("fatrace_cpu_us_per_op", "watch_cpu_us_per_op"),
        _ratio("fatrace_cpu_us_per_op", "watch_cpu_us_per_op"),
    ),
    FigureSpec(
        "session_lookup_per_s",
        "live ProcessIdToSessionId calls per second",
        "calls/s",
        ("session_lookup_per_s",),
        _same("session_lookup_per_s"),
    ),
    FigureSpec(
        "session_lookup_vs_proc_read",
        "ProcessIdToSessionId calls/s / bare Python reads of /proc/PID/sessionid per second",
        "ratio",
        ("session_lookup_per_s", "proc_read_per_s"),
        _ratio("session_lookup_per_s", "proc_read_per_s"),
    ),
    FigureSpec(
        "enforce_rss_mb_start",
        "resident memory of sessionio enforce once marked, before any decision",
        "MB",
        ("enforce_rss_mb_start",),
        _same("enforce_rss_mb_start"),
    ),
    FigureSpec(
        "enforce_rss_mb_end",
        "resident memory of sessionio enforce after the decisions",
        "MB",
        ("enforce_rss_mb_end",),
        _same("enforce_rss_mb_end"),
    ),
    FigureSpec(
        "enforce_rss_growth",
        "enforce_rss_mb_end / enforce_rss_mb_start: flat is the target",
        "ratio",
        ("enforce_rss_mb_end", "enforce_rss_mb_start"),
        _ratio("enforce_rss_mb_end", "enforce_rss_mb_start"),
        Target("<=", 1.1),
    ),
)


def figure_names() -> list[str]:
    return [spec.name for spec in FIGURES]


def build_result(
    raw: Raw,
    *,
    units: Mapping[str, str],
    problems: Mapping[str, str],
    header: Mapping[str, object],
    notes: Mapping[str, object],
    wanted: Sequence[str] | None = None,
) -> dict[str, object]:
    """The result document: ``header`` (date, machine, settings...), then the figures.

    ``raw`` maps each raw figure to its per-repeat values; ``problems`` maps a raw figure that
    could not be taken to the reason. A headline figure whose inputs are missing is reported
    with ``"status": "unavailable"`` and the reason instead of a value. ``wanted`` restricts the
    headline figures (``--only``).
    """
    document: dict[str, object] = {"schema": SCHEMA, **header}
    figures: dict[str, object] = {}
    for spec in FIGURES:
        if wanted is not None and spec.name not in wanted:
            continue
        entry: dict[str, object] = {
            "description": spec.description,
            "unit": spec.unit,
            "target": None if spec.target is None else spec.target.text(),
        }
        missing = [key for key in spec.needs if not raw.get(key)]
        if missing:
            reasons = sorted({problems.get(key, "not measured") for key in missing})
            entry.update(status="unavailable", reason="; ".join(reasons), met=None)
            document[spec.name] = None
        else:
            figure = Figure(spec.compute(raw), spec.unit)
            entry.update(figure.to_json())
            entry.update(status="ok", met=None if spec.target is None else spec.target.met(figure))
            document[spec.name] = figure.median
        figures[spec.name] = entry
    document["figures"] = figures
    document["raw"] = {
        key: Figure(tuple(values), units.get(key, "")).to_json()
        for key, values in sorted(raw.items())
        if values
    }
    document["problems"] = dict(problems)
    document["notes"] = dict(notes)
    return document


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "date": str,
    "mode": str,
    "machine": dict,
    "settings": dict,
    "figures": dict,
    "raw": dict,
    "problems": dict,
    "notes": dict,
}
_MACHINE = ("nproc", "kernel", "cpu_model", "python")
_FIGURE_OK = ("median", "min", "max", "spread", "repeats", "values", "unit", "met", "target")


def validate_result(document: Mapping[str, object]) -> None:
    """ValueError naming the first thing wrong with a result document."""
    for key, kind in _REQUIRED.items():
        if not isinstance(document.get(key), kind):
            raise ValueError(f"result key {key!r} missing or not {kind}")
    if document["schema"] != SCHEMA:
        raise ValueError(f"unknown schema {document['schema']!r}")
    machine = document["machine"]
    assert isinstance(machine, dict)
    for key in _MACHINE:
        if key not in machine:
            raise ValueError(f"machine.{key} missing")
    figures = document["figures"]
    assert isinstance(figures, dict)
    for name, entry in figures.items():
        if not isinstance(entry, dict) or entry.get("status") not in ("ok", "unavailable"):
            raise ValueError(f"figure {name!r} has no status")
        if entry["status"] == "ok":
            for key in _FIGURE_OK:
                if key not in entry:
                    raise ValueError(f"figure {name!r} lacks {key!r}")
            median = entry["median"]
            if not isinstance(median, int | float) or not math.isfinite(median):
                raise ValueError(f"figure {name!r} median is not a finite number")
            if document.get(name) != median:
                raise ValueError(f"top-level {name!r} differs from its figure's median")
            values = entry["values"]
            if not isinstance(values, list) or len(values) != entry["repeats"]:
                raise ValueError(f"figure {name!r}: repeats does not count its values")
        elif document.get(name) is not None or not entry.get("reason"):
            raise ValueError(f"unavailable figure {name!r} needs a reason and a null value")


def format_value(value: float, unit: str) -> str:
    """A number as the table shows it: ratios to 3 decimals (so that a ratio just under its
    target never reads as on it), rates with thousands separators."""
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "operations":
        return f"{value:,.0f}"
    return f"{value:,.0f} {unit}"


def render_table(document: Mapping[str, object]) -> str:
    """The table printed at the end of a run: figure, value, spread, target, met?"""
    figures = document["figures"]
    if not isinstance(figures, dict):
        raise ValueError("the document has no figures")
    rows = [("figure", "value", "spread", "target", "met?")]
    for name, entry in figures.items():
        target = entry.get("target") or "-"
        if entry.get("status") != "ok":
            rows.append((name, "n/a", "", target, f"unavailable: {entry.get('reason', '')}"))
            continue
        spread = entry.get("spread")
        spread_text = "" if spread is None else f"±{100 * spread / 2:.0f}%"
        met = entry.get("met")
        met_text = "-" if met is None else ("yes" if met else "NO")
        repeats = entry.get("repeats")
        rows.append(
            (
                name,
                format_value(float(entry["median"]), str(entry["unit"])),
                f"{spread_text} (n={repeats})",
                target,
                met_text,
            )
        )
    widths = [max(len(row[column]) for row in rows[:]) for column in range(4)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[column].ljust(widths[column]) for column in range(4)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in [*widths, 4]))
    return "\n".join(lines)
