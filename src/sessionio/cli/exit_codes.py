"""The exit codes every command uses (DESIGN.md, Interfaces)."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    NO_PERMISSION = 77
    """EX_NOPERM: a capability is missing (run as root)."""
    INTERRUPTED = 130
    """128 + SIGINT, as shells report an interrupted command."""
