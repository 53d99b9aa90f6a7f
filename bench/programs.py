"""The benchmark's C programs: built with gcc on first use, run, and their one-line output parsed.

``opener`` is the workload of every open-throughput figure, ``allow_responder`` the C baseline
listener and ``writer`` the notification workload (the sources in ``bench/c/`` say why each is
shaped as it is). Each prints one line of ``key=value`` pairs, parsed here by pure functions.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, Unavailable

__all__ = [
    "BUILD_DIR",
    "SOURCE_DIR",
    "OpenerResult",
    "Programs",
    "WriterResult",
    "build_programs",
    "parse_key_values",
    "parse_opener_output",
    "parse_writer_output",
    "run_opener",
]

SOURCE_DIR = Path(__file__).resolve().parent / "c"
BUILD_DIR = Path(__file__).resolve().parent / "build"
_CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11")
_NAMES = ("opener", "allow_responder", "writer")


@dataclass(frozen=True, slots=True)
class Programs:
    """Paths of the built executables."""

    opener: Path
    allow_responder: Path
    writer: Path


@dataclass(frozen=True, slots=True)
class OpenerResult:
    """One opener run: ``opens`` timed opens, ``errors`` of which failed; session -1 is none."""

    opens: int
    errors: int
    ns_per_open: float
    opens_per_s: float
    cpu: int
    session_id: int


@dataclass(frozen=True, slots=True)
class WriterResult:
    """One writer run: it generated ``dir/f00000000`` to ``dir/f{files-1:08d}``."""

    files: int
    elapsed_ns: int


def build_programs(build_dir: Path = BUILD_DIR, source_dir: Path = SOURCE_DIR) -> Programs:
    """Compile each program whose executable is missing or older than its source."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    build_dir.mkdir(parents=True, exist_ok=True)
    shared = (source_dir / "common.h").stat().st_mtime
    for name in _NAMES:
        source = source_dir / f"{name}.c"
        target = build_dir / name
        newest = max(source.stat().st_mtime, shared)
        if target.exists() and target.stat().st_mtime >= newest:
            continue
        if compiler is None:
            raise Unavailable("no C compiler (gcc) to build the benchmark programs")
        result = subprocess.run(
            [compiler, *_CFLAGS, "-o", str(target), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"building {source.name} failed:\n{result.stderr}")
    return Programs(
        opener=build_dir / "opener",
        allow_responder=build_dir / "allow_responder",
        writer=build_dir / "writer",
    )


def parse_key_values(line: str) -> dict[str, str]:
    """``"a=1 b=x"`` -> ``{"a": "1", "b": "x"}``; ValueError for a word without ``=``."""
    pairs: dict[str, str] = {}
    for word in line.split():
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"not a key=value pair: {word!r}")
        pairs[key] = value
    return pairs


def _last_line(text: str, program: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{program} printed nothing")
    return lines[-1]


def _field(pairs: dict[str, str], key: str, kind: type[int] | type[float]) -> float:
    if key not in pairs:
        raise ValueError(f"missing {key}=")
    try:
        return kind(pairs[key])
    except ValueError:
        raise ValueError(f"{key}= is not a number: {pairs[key]!r}") from None


def parse_opener_output(text: str) -> OpenerResult:
    """Parse the opener's last line; ValueError if a field is missing or not a number."""
    pairs = parse_key_values(_last_line(text, "opener"))
    result = OpenerResult(
        opens=int(_field(pairs, "opens", int)),
        errors=int(_field(pairs, "errors", int)),
        ns_per_open=_field(pairs, "ns_per_open", float),
        opens_per_s=_field(pairs, "opens_per_s", float),
        cpu=int(_field(pairs, "cpu", int)),
        session_id=int(_field(pairs, "sessionid", int)),
    )
    rates = (result.ns_per_open, result.opens_per_s)
    if result.opens <= 0 or not all(math.isfinite(rate) and rate > 0 for rate in rates):
        raise ValueError(f"opener figures must be positive numbers: {pairs}")
    return result


def parse_writer_output(text: str) -> WriterResult:
    """Parse the writer's last line; ValueError if a field is missing or not a number."""
    pairs = parse_key_values(_last_line(text, "writer"))
    result = WriterResult(
        files=int(_field(pairs, "files", int)),
        elapsed_ns=int(_field(pairs, "elapsed_ns", int)),
    )
    if result.files < 0 or result.elapsed_ns <= 0:
        raise ValueError(f"writer figures out of range: {pairs}")
    return result


def run_opener(
    opener: Path,
    paths: Sequence[str | os.PathLike[str]],
    *,
    count: int,
    warmup: int,
    cpu: int | None,
    seconds: float | None = None,
    loginuid: int | None = None,
    mount_namespace: str | None = None,
    timeout: float = 1200.0,
) -> OpenerResult:
    """Run the opener to completion: ``count`` opens, or fewer if ``seconds`` run out first.

    BenchError if it fails, or if any timed open failed (a listener denied it).
    """
    argv = [str(opener), "-n", str(count), "-w", str(warmup)]
    if seconds is not None:
        argv += ["-d", str(max(int(seconds * 1000), 1))]
    if cpu is not None:
        argv += ["-c", str(cpu)]
    if loginuid is not None:
        argv += ["-l", str(loginuid)]
    if mount_namespace is not None:
        argv += ["-N", mount_namespace]
    argv += [os.fspath(path) for path in paths]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the opener did not finish within {timeout:.0f} s") from None
    try:
        result = parse_opener_output(done.stdout)
    except ValueError as err:
        raise BenchError(
            f"opener failed ({done.returncode}): {err}; {done.stderr.strip()}"
        ) from None
    if result.errors:
        raise BenchError(f"{result.errors} of {result.opens} opens failed (denied?)")
    return result
