"""The PNG next to the result file: every ratio figure as a bar, its repeats' range, its target."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from bench.errors import Unavailable

__all__ = ["draw_chart"]


def draw_chart(document: Mapping[str, object], path: Path) -> None:
    """Draw the ratio figures of a result document; Unavailable without matplotlib."""
    # Imported by name: matplotlib is the optional "bench" extra, and the type check of the
    # repository must not depend on it being installed.
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError as err:
        raise Unavailable("matplotlib is needed for --chart (pip install -e '.[bench]')") from err

    figures = document["figures"]
    if not isinstance(figures, dict):
        raise ValueError("the document has no figures")
    rows = [
        (name, entry)
        for name, entry in figures.items()
        if entry.get("status") == "ok" and entry.get("unit") == "ratio"
    ]
    rows.reverse()
    height = 1.0 + 0.55 * max(len(rows), 1)
    fig, axes = plt.subplots(figsize=(9, height))
    for index, (_name, entry) in enumerate(rows):
        median = float(entry["median"])
        met = entry.get("met")
        colour = "#4c72b0" if met is None else ("#55a868" if met else "#c44e52")
        low, high = median - float(entry["min"]), float(entry["max"]) - median
        axes.barh(index, median, color=colour, xerr=[[low], [high]], capsize=3)
        axes.text(float(entry["max"]), index, f"  {median:.3f}", va="center", fontsize=8)
        target = entry.get("target")
        if isinstance(target, str) and target.split()[0] in (">=", "<=", "=="):
            value = float(target.split()[1])
            axes.plot([value, value], [index - 0.4, index + 0.4], color="black", linewidth=1.5)
    axes.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    axes.axvline(1.0, color="grey", linewidth=0.5, linestyle=":")
    axes.set_xlabel("ratio (higher is better; black tick: target; bar: median, whiskers: range)")
    machine = document.get("machine", {})
    model = machine.get("cpu_model", "") if isinstance(machine, dict) else ""
    nproc = machine.get("nproc", "") if isinstance(machine, dict) else ""
    axes.set_title(
        f"sessionio benchmark, {document.get('mode')} run, {document.get('date')}\n"
        f"{nproc} CPUs, {model}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
