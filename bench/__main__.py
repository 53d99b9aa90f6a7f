"""``python -m bench [--quick] [--repeats N] [--chart] [--only NAME...]`` (root; see runner.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.results import figure_names
from bench.runner import PROBES, RESULTS_DIR, run, select_probes
from bench.settings import Settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "sessionio against its anchors (a C fanotify responder, fapolicyd, fatrace), "
            "side by side, as ratios taken in the same run."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer and smaller repeats (under a minute)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per figure (default 5, quick 2)"
    )
    parser.add_argument("--chart", action="store_true", help="also draw a PNG next to the JSON")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="only these figures or probes: "
        + ", ".join([*figure_names(), *(probe.name for probe in PROBES)]),
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "latest.json", help="the result file"
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        select_probes(args.only)
    except ValueError as err:
        parser.error(str(err))
    if args.quick:
        settings = Settings.quick_run(args.repeats or 2)
    else:
        settings = Settings.full(args.repeats or 5)
    try:
        return run(settings, only=args.only, output=args.output, chart=args.chart)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
