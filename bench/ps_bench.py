"""Benchmark: ``sessionio ps --json`` against ``ps -eo pid,sess,comm`` over 2,000 extra processes.

Both commands run in the same machine state, alternately, several times; the medians and
their ratio are printed. The processes are forked by a small fork server (one Python process
that forks N children blocked on a pipe), so spawning them costs no exec each, and they all
exit when the server's end of the pipe closes: when it is told to stop, and also if it dies.

    python -m bench.ps_bench [--processes 2000] [--repeats 5]

A benchmark, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from sessionio.runtime.linux_kernel import LinuxKernel
from sessionio.runtime.sessions import list_processes

FORK_SERVER = r"""
import os, sys
count = int(sys.argv[1])
read_end, write_end = os.pipe()
children = []
for _ in range(count):
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        os.read(read_end, 1)  # blocks until the server's write end closes
        os._exit(0)
    children.append(pid)
os.close(read_end)
print("ready", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin (or dies)
os.close(write_end)
for pid in children:
    os.waitpid(pid, 0)
"""


def _check_limits(count: int) -> None:
    """Make sure the machine lets us have ``count`` more processes, or say why not."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    with open("/proc/sys/kernel/threads-max") as f:
        threads_max = int(f.read())
    existing = sum(1 for name in os.listdir("/proc") if name.isdigit())
    if existing + count + 100 > min(pid_max, threads_max):
        raise SystemExit(
            f"pid_max {pid_max} / threads-max {threads_max} leave no room for {count} more "
            f"processes beside {existing}"
        )
    if os.geteuid() != 0:  # root is not held to RLIMIT_NPROC
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY and soft < existing + count + 100:
            if hard != resource.RLIM_INFINITY and hard < existing + count + 100:
                raise SystemExit(f"RLIMIT_NPROC {soft}/{hard} is too low for {count} processes")
            resource.setrlimit(resource.RLIMIT_NPROC, (hard, hard))


class ForkServer:
    """``count`` sleeping processes for as long as the ``with`` block lasts."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._server: subprocess.Popen[str] | None = None

    def __enter__(self) -> ForkServer:
        _check_limits(self.count)
        self._server = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER, str(self.count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._server.stdout is not None
        if self._server.stdout.readline().strip() != "ready":
            self.__exit__()
            raise SystemExit("the fork server failed to start its children")
        return self

    def __exit__(self, *_: object) -> None:
        server = self._server
        if server is None:
            return
        assert server.stdin is not None and server.stdout is not None
        server.stdin.close()  # the server closes the pipe, its children exit, it reaps them
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()  # its children still see the pipe close and exit
            server.wait()
        server.stdout.close()
        self._server = None


def _time_command(argv: Sequence[str]) -> tuple[float, int]:
    """Seconds one run took (output read from a pipe, as a consumer would), and its lines."""
    started = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.PIPE, check=True)
    elapsed = time.perf_counter() - started
    return elapsed, result.stdout.count(b"\n")


def _time_call(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _sessionio_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "sessionio")
    if os.access(script, os.X_OK):
        return [script, "ps", "--json"]
    return [sys.executable, "-m", "sessionio", "ps", "--json"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ps_bench", description=__doc__)
    parser.add_argument("--processes", type=int, default=2000, help="extra sleeping processes")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each command")
    args = parser.parse_args(argv)
    ps = shutil.which("ps")
    if ps is None:
        raise SystemExit("ps (procps) is not installed")
    ours = _sessionio_command()
    theirs = [ps, "-eo", "pid,sess,comm"]
    kernel = LinuxKernel()

    with ForkServer(args.processes):
        _time_command(ours)  # warm-up: page cache, pyc files
        _time_command(theirs)
        ours_times: list[float] = []
        theirs_times: list[float] = []
        in_process: list[float] = []
        ours_lines = theirs_lines = 0
        for repeat in range(args.repeats):
            pair = [(ours, ours_times), (theirs, theirs_times)]
            for command, times in pair if repeat % 2 == 0 else pair[::-1]:
                elapsed, lines = _time_command(command)
                times.append(elapsed)
                if command is ours:
                    ours_lines = lines
                else:
                    theirs_lines = lines - 1  # ps prints a header
            in_process.append(_time_call(lambda: list_processes(kernel)))

    ours_median = statistics.median(ours_times)
    theirs_median = statistics.median(theirs_times)
    print(f"processes: {args.processes} extra; listed by sessionio {ours_lines}, ps {theirs_lines}")
    print(f"repeats:   {args.repeats} of each, alternating")
    print(f"{' '.join(['sessionio', *ours[1:]]):<26} median {ours_median * 1000:8.1f} ms")
    print(f"{' '.join(['ps', *theirs[1:]]):<26} median {theirs_median * 1000:8.1f} ms")
    print(f"{'ratio':<26} {ours_median / theirs_median:8.1f} x")
    print(
        f"{'in-process list_processes':<26} median {statistics.median(in_process) * 1000:8.1f} ms"
        " (the listing without interpreter start-up and output)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
