"""``ProcessIdToSessionId`` on the live kernel against the bare read it wraps.

The bare read is what a script would write without sessionio: ``os.open``, ``os.read`` and
``os.close`` of ``/proc/PID/sessionid`` and an ``int()``, the fastest plain-Python form. The
looked-up process is a child that started an audit session of its own (it wrote its loginuid),
so both sides return a real session id. Each side runs for ``Settings.lookup_seconds`` in this
process, pinned to the opener CPU; the two alternate inside a repeat, so drift hits both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from bench.errors import BenchError
from bench.probe import Probe, Sample
from bench.settings import Settings
from bench.workspace import Workspace

__all__ = ["PROBES", "calls_per_second", "proc_read_session_id"]

_CHILD = (
    "import sys\n"
    "with open('/proc/self/loginuid', 'w') as f: f.write(sys.argv[1])\n"
    "print(open('/proc/self/sessionid').read(), flush=True)\n"
    "sys.stdin.read()\n"
)


def proc_read_session_id(pid: int) -> int:
    """The baseline: one bare read of /proc/PID/sessionid."""
    fd = os.open(f"/proc/{pid}/sessionid", os.O_RDONLY)
    try:
        return int(os.read(fd, 32))
    finally:
        os.close(fd)


def calls_per_second(call: Callable[[], object], seconds: float, batch: int = 1000) -> float:
    """How many times ``call()`` runs per second, timed in batches for ``seconds`` or more."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            call()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def session_lookup(settings: Settings, workspace: Workspace, wanted: frozenset[str]) -> Sample:
    from sessionio.nt import ProcessIdToSessionId

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(settings.loginuid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    affinity = os.sched_getaffinity(0)
    try:
        if child.stdout is None:
            raise BenchError("no pipe to the child")
        expected = int(child.stdout.readline())
        pid = child.pid
        if ProcessIdToSessionId(pid) != expected or proc_read_session_id(pid) != expected:
            raise BenchError(f"the lookups disagree with the child's own session {expected}")
        os.sched_setaffinity(0, {settings.open_cpu})
        half = settings.lookup_seconds / 2
        lookups = calls_per_second(lambda: ProcessIdToSessionId(pid), half)
        reads = calls_per_second(lambda: proc_read_session_id(pid), half)
        lookups = (lookups + calls_per_second(lambda: ProcessIdToSessionId(pid), half)) / 2
        reads = (reads + calls_per_second(lambda: proc_read_session_id(pid), half)) / 2
    finally:
        os.sched_setaffinity(0, affinity)
        child.kill()
        child.communicate()
    return Sample(
        {"session_lookup_per_s": lookups, "proc_read_per_s": reads},
        {"looked_up_session_id": expected},
    )


PROBES = (
    Probe(
        "session_lookup",
        session_lookup,
        {"session_lookup_per_s": "calls/s", "proc_read_per_s": "reads/s"},
    ),
)
