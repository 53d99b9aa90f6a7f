"""A probe is one measurement run once: it returns raw numbers, and notes that back them up."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.settings import Settings
    from bench.workspace import Workspace

__all__ = ["Probe", "Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """The raw figures of one repeat (``values``), and what was checked on the way (``notes``).

    Notes are facts that make a figure trustworthy or explain it, e.g. that the kernel showed the
    ignore mark a cached figure relies on, or how many opens fapolicyd says it allowed.
    ``problems`` names the raw figures a probe could not take this time, and why (a probe that
    measures several listeners side by side still reports the others when one is missing).
    """

    values: dict[str, float]
    notes: dict[str, object] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Probe:
    """A named measurement; the runner calls ``run`` once per repeat, interleaved with the others.

    ``produces`` names the raw figures it can take, with their units; ``run`` gets the set of
    those the run wants (``--only``) and may skip the work behind the others.
    """

    name: str
    run: Callable[[Settings, Workspace, frozenset[str]], Sample]
    produces: Mapping[str, str]
    once: bool = False
    """Run in the first repeat only: for a probe too long to repeat (the million decisions)."""
