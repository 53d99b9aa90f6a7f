"""Listeners as child processes: started pinned, awaited until the kernel shows them ready, stopped.

A listener's output goes to a file, never a pipe: a pipe nobody drains fills up, and a
permission listener blocked on a full stdout blocks every opener behind it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from bench.errors import BenchError, Unavailable
from bench.fdinfo import FanotifyMark, fanotify_marks

__all__ = ["Daemon", "cpu_seconds", "peak_rss_kib", "pinned", "rss_kib"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """``argv`` run on ``cpu`` only (every thread it will ever start inherits the affinity)."""
    if cpu is None:
        return list(argv)
    taskset = shutil.which("taskset")
    if taskset is None:
        raise Unavailable("taskset (util-linux) is needed to pin listeners to a CPU")
    return [taskset, "--cpu-list", str(cpu), *argv]


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"process {pid} reports no {field} (a zombie?)")


def rss_kib(pid: int) -> int:
    """VmRSS of a live process, in KiB."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """VmHWM, the highest VmRSS a live process has had, in KiB."""
    return _status_kib(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process, all its threads, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
        text = stream.read()
    # The comm field may contain spaces and parentheses; the fields after the last ")" do not.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


class Daemon:
    """One listener process, with stdout and stderr in files; use as a context manager.

    Leaving the ``with`` block always ends the process (the stop signal, then SIGKILL), so that
    no benchmark leaves a listener behind, even when a measurement fails half-way.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        output_dir: Path,
        *,
        cwd: str | os.PathLike[str] | None = None,
        stop_signal: int = signal.SIGINT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = output_dir / f"{name}.out"
        self.stderr_path = output_dir / f"{name}.err"
        self.cwd = cwd
        self.stop_signal = stop_signal
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self._process = subprocess.Popen(
                    self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=self.cwd
                )
            except FileNotFoundError as error:
                raise Unavailable(f"{self.argv[0]} is not installed") from error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise BenchError(f"{self.name} was not started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def _failure(self, what: str) -> BenchError:
        tail = self.stderr().strip().splitlines()[-8:]
        return BenchError(f"{self.name} {what}; stderr: " + " | ".join(tail))

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Poll ``ready()`` every few ms; BenchError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive():
                raise self._failure(f"exited ({self.process.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise self._failure(f"was not {what} after {timeout:.0f} s")
            time.sleep(0.005)

    def wait_for_line(self, line: str, timeout: float = 30.0) -> None:
        """Wait until the process has printed ``line`` on stdout."""
        self.wait_until(
            lambda: line in self.stdout().splitlines(), f"printing {line!r}", timeout=timeout
        )

    def wait_for_mark(self, accept: Callable[[FanotifyMark], bool], timeout: float = 30.0) -> None:
        """Wait until the kernel shows a fanotify mark of this process that ``accept`` accepts."""
        self.wait_until(
            lambda: any(accept(mark) for mark in fanotify_marks(self.pid)),
            "holding the benchmark's fanotify mark",
            timeout=timeout,
        )

    def stop(self, timeout: float = 30.0) -> int:
        """Send the stop signal, wait, SIGKILL if it does not go; return the exit status."""
        process = self._process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode
