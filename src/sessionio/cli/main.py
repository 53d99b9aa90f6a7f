"""Entry point of the ``sessionio`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import sessionio


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionio",
        description="Which process, from which login session, asked for each file operation.",
    )
    parser.add_argument("--version", action="version", version=f"sessionio {sessionio.__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
