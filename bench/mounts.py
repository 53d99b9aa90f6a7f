"""Private mount namespaces and tmpfs trees, so that a benchmark marks nothing but its own files.

The benchmark runs in a mount namespace of its own (``unshare -m`` and ``mount --make-rprivate
/``, done here with the syscalls): the tmpfs it measures on is invisible to everyone else, no
other process's opens land on it, and the kernel drops every mount when the last process of the
namespace exits, even after a crash. The mountinfo parser is pure; the rest are thin wrappers
over mount(2), umount2(2) and unshare(2) that raise OSError like the os module does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from dataclasses import dataclass

__all__ = [
    "MountEntry",
    "TreeIdentity",
    "bind_mount",
    "enter_private_mount_namespace",
    "kernel_dev",
    "mount_tmpfs",
    "parse_mountinfo",
    "read_mountinfo",
    "tree_identity",
    "unmount",
]

_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of /proc/PID/mountinfo, the fields the benchmark uses."""

    mount_id: int
    major: int
    minor: int
    mount_point: str
    fstype: str


@dataclass(frozen=True, slots=True)
class TreeIdentity:
    """How fanotify's fdinfo names the benchmark tree: its mount id and the kernel's s_dev."""

    mount_id: int
    sdev: int


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse /proc/PID/mountinfo text; ValueError on a line that is not in its format."""
    entries: list[MountEntry] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split()
        try:
            separator = fields.index("-")
            mount_id = int(fields[0])
            major, minor = (int(part) for part in fields[2].split(":"))
            mount_point = _unescape(fields[4])
            fstype = fields[separator + 1]
        except (ValueError, IndexError):
            raise ValueError(f"not a mountinfo line: {line!r}") from None
        entries.append(MountEntry(mount_id, major, minor, mount_point, fstype))
    return entries


def read_mountinfo() -> list[MountEntry]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as stream:
        return parse_mountinfo(stream.read())


def kernel_dev(major: int, minor: int) -> int:
    """The kernel's internal dev_t (MKDEV), which fanotify's fdinfo prints as ``sdev``."""
    return (major << 20) | minor


def tree_identity(mount_point: str) -> TreeIdentity:
    """The identity of the mount at ``mount_point`` (the last one mounted there wins)."""
    found = [entry for entry in read_mountinfo() if entry.mount_point == mount_point]
    if not found:
        raise ValueError(f"nothing is mounted at {mount_point}")
    entry = found[-1]
    return TreeIdentity(mount_id=entry.mount_id, sdev=kernel_dev(entry.major, entry.minor))


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str, path: str | None = None) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    mount = _libc().mount
    mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    mount.restype = ctypes.c_int

    def encode(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _check(
        mount(encode(source), encode(target), encode(fstype), flags, encode(data)), "mount", target
    )


def enter_private_mount_namespace() -> None:
    """``unshare -m`` then ``mount --make-rprivate /`` for this process (single-threaded only)."""
    unshare = _libc().unshare
    unshare.argtypes = [ctypes.c_int]
    unshare.restype = ctypes.c_int
    _check(unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)


def mount_tmpfs(target: str, size: str = "50%") -> None:
    _mount("tmpfs", target, "tmpfs", 0, f"size={size},mode=0755")


def bind_mount(source: str, target: str) -> None:
    _mount(source, target, None, _MS_BIND, None)


def unmount(target: str, *, lazy: bool = False) -> None:
    umount2 = _libc().umount2
    umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    umount2.restype = ctypes.c_int
    _check(umount2(os.fsencode(target), _MNT_DETACH if lazy else 0), "umount2", target)
