"""Why a measurement did not produce a figure."""

from __future__ import annotations

__all__ = ["BenchError", "Unavailable"]


class BenchError(Exception):
    """A measurement went wrong: a program failed, a listener never got ready, output was bad."""


class Unavailable(BenchError):
    """Something a measurement needs is not on this machine (a command not written yet, a tool).

    The table shows the figure as unavailable with this reason instead of aborting the run, so
    that the other figures are still taken.
    """
