"""fapolicyd (the Debian package) allowing everything, kept up while the opener measures it.

fapolicyd marks every mount of the filesystem types in ``watch_fs``, so it runs in a mount
namespace of its own, set up by a helper process (``python -m bench.fapolicyd``, a child of the
runner) that:

1. does ``unshare -m`` and ``mount --make-rprivate /`` (the syscalls; see bench/mounts.py);
2. unmounts every tmpfs lazily, so that with ``watch_fs = tmpfs`` fapolicyd marks nothing but
3. a fresh tmpfs holding the opener's file;
4. bind-mounts private directories over /etc/fapolicyd (its configuration: ``allow perm=any
   all : all``, uid and gid root, ``watch_fs = tmpfs``, the rest as Debian ships it), its
   trust database, /run and /var/log: nothing outside the namespace is ever written, so the
   machine's configuration needs no restoring, and none is left changed if the run is killed.
   The runner still checks that /etc/fapolicyd is byte-for-byte what it was;
5. starts ``fapolicyd --debug-deny`` pinned to the opener's CPU, and says it is ready once the
   kernel shows fapolicyd's OPEN_PERM mark on the tmpfs;
6. waits for its stdin to close, stops fapolicyd and passes on the "Allowed accesses: N" of its
   shutdown report, which must count every open the opener made.

The opener enters the helper's mount namespace (``opener -N``) to open the file there.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.errors import BenchError, Unavailable
from bench.fdinfo import open_perm_mark_on
from bench.mounts import (
    bind_mount,
    enter_private_mount_namespace,
    mount_tmpfs,
    read_mountinfo,
    tree_identity,
    unmount,
)
from bench.processes import Daemon, pinned

__all__ = [
    "CONFIG_DIR",
    "RULE",
    "RunningFapolicyd",
    "config_digest",
    "fapolicyd_conf",
    "main",
    "parse_allowed",
    "running_fapolicyd",
]

CONFIG_DIR = Path("/etc/fapolicyd")
RULE = "allow perm=any all : all"

_CONF_CHANGES = {
    "uid": "root",
    "gid": "root",
    "watch_fs": "tmpfs",
    # Debian builds fapolicyd without rpm support; the file backend is its one trust source.
    "trust": "file",
}
_READY_TIMEOUT_S = 60.0


def fapolicyd_conf(shipped: str) -> str:
    """The shipped fapolicyd.conf with only the benchmark's settings changed (or appended)."""
    lines: list[str] = []
    seen: set[str] = set()
    for line in shipped.splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in _CONF_CHANGES:
            lines.append(f"{key} = {_CONF_CHANGES[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{key} = {value}" for key, value in _CONF_CHANGES.items() if key not in seen]
    return "\n".join(lines) + "\n"


def parse_allowed(report: str) -> int | None:
    """The "Allowed accesses: N" of fapolicyd's shutdown report, if it printed one."""
    found = re.findall(r"^Allowed accesses: (\d+)$", report, flags=re.MULTILINE)
    return int(found[-1]) if found else None


def config_digest(directory: Path = CONFIG_DIR) -> str:
    """A digest of every file under ``directory``, names included, to prove it was not touched."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        digest.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# -- inside the private namespace (the helper process) ------------------------------------------


def _private_dirs(root: Path) -> dict[str, Path]:
    """The directories bind-mounted over the real ones, created under ``root``."""
    etc = root / "etc"
    (etc / "rules.d").mkdir(parents=True)
    (etc / "trust.d").mkdir()
    shipped_conf = CONFIG_DIR / "fapolicyd.conf"
    shipped = shipped_conf.read_text() if shipped_conf.exists() else ""
    (etc / "fapolicyd.conf").write_text(fapolicyd_conf(shipped))
    (etc / "rules.d" / "10-bench.rules").write_text(RULE + "\n")
    (etc / "compiled.rules").write_text(RULE + "\n")
    (etc / "fapolicyd.trust").write_text("")
    run = root / "run"
    (run / "fapolicyd").mkdir(parents=True)
    lib, log = root / "lib", root / "log"
    lib.mkdir()
    log.mkdir()
    return {str(CONFIG_DIR): etc, "/run": run, "/var/lib/fapolicyd": lib, "/var/log": log}


def _only_own_tmpfs(root: Path) -> Path:
    """Leave no tmpfs but a fresh one at ``root/tree``; return the file to open in it."""
    tmpfs = [entry for entry in read_mountinfo() if entry.fstype == "tmpfs"]
    for entry in sorted(tmpfs, key=lambda e: e.mount_point.count("/"), reverse=True):
        with contextlib.suppress(OSError):  # gone already with a parent unmounted before it
            unmount(entry.mount_point, lazy=True)
    left = [entry.mount_point for entry in read_mountinfo() if entry.fstype == "tmpfs"]
    if left:
        raise BenchError(f"tmpfs mounts left in fapolicyd's namespace: {left}")
    tree = root / "tree"
    tree.mkdir()
    mount_tmpfs(str(tree))
    target = tree / "file"
    target.write_bytes(b"sessionio benchmark\n")
    return target


def _helper(args: argparse.Namespace) -> None:
    enter_private_mount_namespace()
    root = Path(args.scratch)
    target = _only_own_tmpfs(root)
    for real, private in _private_dirs(root).items():
        Path(real).mkdir(parents=True, exist_ok=True)
        bind_mount(str(private), real)
    identity = tree_identity(str(target.parent))
    argv = pinned([args.fapolicyd, "--debug-deny"], args.cpu)
    with Daemon("fapolicyd", argv, root) as daemon:
        daemon.wait_for_mark(open_perm_mark_on(identity), timeout=_READY_TIMEOUT_S)
        print(json.dumps({"ready": True, "file": str(target), "pid": daemon.pid}), flush=True)
        sys.stdin.read()  # the runner closes our stdin when it is done measuring
        status = daemon.stop()
        report = daemon.stderr()
    allowed = parse_allowed(report)
    if allowed is None:
        raise BenchError(f"fapolicyd ({status}) printed no shutdown report: {report[-500:]}")
    print(json.dumps({"allowed": allowed}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fapolicyd in a private mount namespace")
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--fapolicyd", required=True)
    parser.add_argument("--cpu", type=int, required=True)
    args = parser.parse_args(argv)
    # A runner that gives up sends SIGTERM: unwind, so that fapolicyd is stopped too.
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(1))
    try:
        _helper(args)
    except (BenchError, OSError) as err:
        print(f"fapolicyd benchmark: {err}", file=sys.stderr)
        return 1
    return 0


# -- the runner's side -------------------------------------------------------------------------


@dataclass(slots=True)
class RunningFapolicyd:
    """fapolicyd, up: open ``file`` from inside ``mount_namespace``; ``allowed`` once stopped."""

    mount_namespace: str
    file: Path
    allowed: int | None = None


def _read_json_line(stream: IO[str], timeout: float, what: str) -> dict[str, object]:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise BenchError(f"fapolicyd helper: no {what} after {timeout:.0f} s")
    line = stream.readline()
    if not line:
        raise BenchError(f"fapolicyd helper exited before {what}")
    value = json.loads(line)
    if not isinstance(value, dict):
        raise BenchError(f"fapolicyd helper: unexpected {line!r}")
    return value


@contextlib.contextmanager
def running_fapolicyd(scratch: Path, cpu: int) -> Iterator[RunningFapolicyd]:
    """Start the helper and fapolicyd; stop both when the block ends (``allowed`` is then set)."""
    binary = shutil.which("fapolicyd")
    if binary is None:
        raise Unavailable("fapolicyd is not installed (apt-get install -y fapolicyd)")
    before = config_digest()
    root = scratch / "fapolicyd"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    errors = (root.parent / "fapolicyd-helper.err").open("w")
    argv = [sys.executable, "-m", "bench.fapolicyd", "--scratch", str(root)]
    argv += ["--fapolicyd", binary, "--cpu", str(cpu)]
    helper = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        if helper.stdout is None or helper.stdin is None:
            raise BenchError("no pipes to the fapolicyd helper")
        try:
            ready = _read_json_line(helper.stdout, _READY_TIMEOUT_S + 10, "readiness")
        except BenchError as err:
            errors.flush()
            detail = (root.parent / "fapolicyd-helper.err").read_text()[-600:]
            raise BenchError(f"{err}: {detail}") from None
        running = RunningFapolicyd(f"/proc/{helper.pid}/ns/mnt", Path(str(ready["file"])))
        yield running
        helper.stdin.close()
        final = _read_json_line(helper.stdout, 60, "the shutdown report")
        allowed = final.get("allowed")
        running.allowed = allowed if isinstance(allowed, int) else None
    finally:
        if helper.stdin is not None and not helper.stdin.closed:
            helper.stdin.close()
        try:
            helper.wait(timeout=30)
        except subprocess.TimeoutExpired:
            helper.terminate()
            try:
                helper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
        if helper.stdout is not None:
            helper.stdout.close()
        errors.close()
        shutil.rmtree(root, ignore_errors=True)
    if config_digest() != before:
        raise BenchError("/etc/fapolicyd changed during the benchmark")


if __name__ == "__main__":
    sys.exit(main())
