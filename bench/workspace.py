"""The benchmark's scratch space: output files on disk, and private tmpfs trees to open files in.

Each permission listener gets a tmpfs of its own, so that all of them can be up at once, each
marking only its own filesystem, and the opener can alternate between them in short rounds
(bench/open_throughput.py): the machine's drift then hits every listener alike.

- ``plain``: no listener at all, the ceiling;
- ``responder``: the C allow-all responder's, with a ``cold`` file it keeps in an ignore mark
  (the kernel's floor for a cached allow);
- ``enforce``: sessionio's, in two halves. ``hot/`` is what the session-aware rules concern, so
  every open there is a decision; ``cold/`` is what no rule concerns, so sessionio may cache
  its allow in a kernel ignore mark.

The scratch directory lives under ``bench/build`` on purpose: not on a tmpfs, because the
fapolicyd measurement unmounts every tmpfs in its namespace.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.mounts import TreeIdentity, mount_tmpfs, tree_identity, unmount
from bench.programs import BUILD_DIR, Programs

__all__ = ["Tree", "Workspace", "scratch_tmpfs", "workspace"]

_CONTENT = b"sessionio benchmark\n"


@dataclass(frozen=True, slots=True)
class Tree:
    """A tmpfs mounted at ``path``, as fanotify's fdinfo identifies it."""

    path: Path
    identity: TreeIdentity


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where one benchmark run works; ``programs`` are the built C programs."""

    programs: Programs
    scratch: Path
    plain: Tree
    responder: Tree
    enforce: Tree
    hot_files: tuple[Path, ...]

    @property
    def plain_file(self) -> Path:
        return self.plain.path / "file"

    @property
    def responder_file(self) -> Path:
        return self.responder.path / "file"

    @property
    def responder_cold_file(self) -> Path:
        return self.responder.path / "cold"

    @property
    def hot_dir(self) -> Path:
        return self.enforce.path / "hot"

    @property
    def cold_file(self) -> Path:
        return self.enforce.path / "cold" / "file"


@contextlib.contextmanager
def scratch_tmpfs(mount_point: Path) -> Iterator[TreeIdentity]:
    """A fresh tmpfs at ``mount_point`` for the duration of the block (the caller's namespace)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mount_tmpfs(str(mount_point))
    try:
        yield tree_identity(str(mount_point))
    finally:
        unmount(str(mount_point), lazy=True)


@contextlib.contextmanager
def workspace(programs: Programs, hot_files: int) -> Iterator[Workspace]:
    """Create the scratch directory and the trees; remove all of it afterwards."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=BUILD_DIR))
    try:
        with contextlib.ExitStack() as stack:
            trees = {
                name: Tree(scratch / name, stack.enter_context(scratch_tmpfs(scratch / name)))
                for name in ("plain", "responder", "enforce")
            }
            (trees["enforce"].path / "hot").mkdir()
            (trees["enforce"].path / "cold").mkdir()
            hot = tuple(trees["enforce"].path / "hot" / f"h{i:03d}" for i in range(hot_files))
            space = Workspace(
                programs, scratch, trees["plain"], trees["responder"], trees["enforce"], hot
            )
            files = (space.cold_file, space.plain_file, space.responder_file)
            for path in (*hot, *files, space.responder_cold_file):
                path.write_bytes(_CONTENT)
            yield space
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
