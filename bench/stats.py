"""Repeated measurements summarised: median, spread, and ratios taken pairwise within a repeat.

A benchmark on a shared VM drifts (other tenants, CPU frequency, page cache), so every figure is
measured several times and reported as a median with its spread, never as one run. Ratios are
formed inside each repeat, from the two runs taken side by side, and the median of those ratios
is reported: the drift between repeats then cancels instead of being divided into the result.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Figure", "paired_ratios"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure from ``len(values)`` repeats; ``unit`` is for the reader ("opens/s", "MB")."""

    values: tuple[float, ...]
    unit: str

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a figure needs at least one value")
        if not all(math.isfinite(value) for value in self.values):
            raise ValueError(f"a figure's values must be finite numbers, got {self.values}")

    @property
    def repeats(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def minimum(self) -> float:
        return min(self.values)

    @property
    def maximum(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float | None:
        """(max - min) / |median|: how far apart the repeats were; None for a zero median."""
        if self.median == 0:
            return None
        return (self.maximum - self.minimum) / abs(self.median)

    def to_json(self) -> dict[str, object]:
        return {
            "median": self.median,
            "min": self.minimum,
            "max": self.maximum,
            "spread": self.spread,
            "repeats": self.repeats,
            "values": list(self.values),
            "unit": self.unit,
        }


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, ...]:
    """``numerators[i] / denominators[i]`` for each repeat i; both must come from the same repeats.

    Raises ValueError for sequences of different lengths (an unpaired ratio would silently
    compare runs taken under different conditions) and for a zero denominator.
    """
    if len(numerators) != len(denominators):
        raise ValueError(
            f"ratios need one denominator per numerator: {len(numerators)} != {len(denominators)}"
        )
    if any(denominator == 0 for denominator in denominators):
        raise ValueError("a ratio's denominator is zero")
    return tuple(n / d for n, d in zip(numerators, denominators, strict=True))
