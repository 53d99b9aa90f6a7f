"""How big each measurement is: a full run (``make bench``), a quick one (``make bench-quick``)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Sizes and CPU placement of one benchmark run; recorded in the result file as they are.

    ``open_cpu`` runs the opener and the permission listener it talks to: on the same CPU,
    because a cross-CPU wakeup costs 40-70 us on this kind of VM (linux-mechanisms.md section 6)
    and would hide the listener's own cost. ``listener_cpu`` and ``writer_cpu`` split the
    notification benchmark: the listener gets a CPU of its own, the writers share the other.

    Open throughput is measured for ``open_seconds`` per listener and repeat, in ``rounds``
    slices, whatever the listener's speed. The memory probe stops at ``rss_decisions`` or after
    ``rss_seconds``, whichever comes first (the result file says how many decisions were made).
    """

    quick: bool
    repeats: int
    open_seconds: float
    rounds: int
    warmup: int
    watch_seconds: float
    writers: int
    files_per_s: int
    drain_quiet_s: float
    drain_timeout_s: float
    lookup_seconds: float
    rss_decisions: int
    rss_seconds: float
    rss_openers: int
    rss_files: int
    loginuid: int
    open_cpu: int
    listener_cpu: int
    writer_cpu: int

    @classmethod
    def full(cls, repeats: int = 5) -> Settings:
        last = max((os.cpu_count() or 1) - 1, 0)
        return cls(
            quick=False,
            repeats=repeats,
            open_seconds=2.0,
            rounds=5,
            warmup=200,
            watch_seconds=10.0,
            writers=4,
            files_per_s=20_000,
            drain_quiet_s=1.0,
            drain_timeout_s=120.0,
            lookup_seconds=2.0,
            rss_decisions=1_000_000,
            rss_seconds=900.0,
            rss_openers=10,
            rss_files=64,
            loginuid=1000,
            open_cpu=last,
            listener_cpu=0,
            writer_cpu=last,
        )

    @classmethod
    def quick_run(cls, repeats: int = 2) -> Settings:
        return replace(
            cls.full(repeats),
            quick=True,
            open_seconds=0.5,
            rounds=2,
            watch_seconds=1.5,
            drain_quiet_s=0.5,
            drain_timeout_s=20.0,
            lookup_seconds=0.5,
            rss_decisions=20_000,
            rss_seconds=8.0,
        )

    def to_json(self) -> dict[str, object]:
        return asdict(self)
