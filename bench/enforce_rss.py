"""Resident memory of ``sessionio enforce`` before and after a million decisions.

A daemon that answers every open on a server must not grow with the number of opens, processes
or sessions it has seen. The decisions are opens of the hot tree (each one evaluated, never
cached in the kernel), made by ``Settings.rss_openers`` opener processes in turn, each in a new
audit session of its own and cycling over ``Settings.rss_files`` files, so that per-process,
per-session and per-file state all get the chance to pile up. Memory is VmRSS of the enforce
process, read once the kernel shows its mark (before any decision) and after the last opener.
"""

from __future__ import annotations

from bench.fdinfo import open_perm_mark_on
from bench.probe import Probe, Sample
from bench.processes import peak_rss_kib, rss_kib
from bench.programs import run_opener
from bench.sessionio_cli import start_enforce
from bench.settings import Settings
from bench.workspace import Workspace

__all__ = ["PROBES"]


def enforce_rss(settings: Settings, workspace: Workspace, wanted: frozenset[str]) -> Sample:
    per_opener = settings.rss_decisions // settings.rss_openers
    seconds = settings.rss_seconds / settings.rss_openers
    decisions = 0
    with start_enforce(workspace, "enforce-rss", settings.open_cpu) as daemon:
        daemon.wait_for_mark(open_perm_mark_on(workspace.enforce.identity))
        start = rss_kib(daemon.pid)
        for _ in range(settings.rss_openers):
            result = run_opener(
                workspace.programs.opener,
                workspace.hot_files,
                count=per_opener,
                seconds=seconds,
                warmup=0,
                cpu=settings.open_cpu,
                loginuid=settings.loginuid,
            )
            decisions += result.opens
        end = rss_kib(daemon.pid)
        peak = peak_rss_kib(daemon.pid)
    return Sample(
        {"enforce_rss_mb_start": start / 1024, "enforce_rss_mb_end": end / 1024},
        {
            "decisions": decisions,
            "decisions_wanted": settings.rss_decisions,
            "time_limit_s": settings.rss_seconds,
            "peak_rss_mb": round(peak / 1024, 1),
            "openers": settings.rss_openers,
            "files": len(workspace.hot_files),
        },
    )


PROBES = (
    Probe(
        "enforce_rss",
        enforce_rss,
        {"enforce_rss_mb_start": "MB", "enforce_rss_mb_end": "MB"},
        once=True,
    ),
)
