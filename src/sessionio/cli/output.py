"""Renderers: aligned columns for people (like loginctl), JSON lines for programs (--json).

Commands build rows as plain dicts once; the renderer decides how they look, so a column never
differs between the human and the JSON output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

__all__ = ["Column", "Output", "format_table"]


@dataclass(frozen=True, slots=True)
class Column:
    """A column: the row key it shows, its header, and whether it aligns right (numbers)."""

    key: str
    header: str
    right: bool = False


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_table(columns: Sequence[Column], rows: Iterable[Mapping[str, object]]) -> list[str]:
    """Lines of an aligned table; the last column is not padded."""
    cells = [[_cell(row.get(c.key)) for c in columns] for row in rows]
    widths = [len(c.header) for c in columns]
    for line in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, line, strict=True)]

    def render(values: Sequence[str]) -> str:
        parts = []
        for i, (col, value) in enumerate(zip(columns, values, strict=True)):
            last = i == len(columns) - 1
            if col.right:
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value if last else value.ljust(widths[i]))
        return " ".join(parts).rstrip()

    return [render([c.header for c in columns]), *(render(line) for line in cells)]


class Output:
    """Where a command writes: JSON lines or human text, flushed per line for live streams."""

    def __init__(self, *, json_lines: bool, stream: IO[str] | None = None) -> None:
        self.json_lines = json_lines
        self.stream = stream if stream is not None else sys.stdout

    def record(self, row: Mapping[str, object], human: str | None = None) -> None:
        """One event or row: a JSON object per line with --json, else ``human`` (if given)."""
        if self.json_lines:
            self.stream.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
        elif human is not None:
            self.stream.write(human + "\n")
        self.stream.flush()

    def table(self, columns: Sequence[Column], rows: Sequence[Mapping[str, object]]) -> None:
        """A whole listing: JSON lines with --json, else an aligned table."""
        if self.json_lines:
            for row in rows:
                self.stream.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
        else:
            for line in format_table(columns, rows):
                self.stream.write(line + "\n")
        self.stream.flush()
