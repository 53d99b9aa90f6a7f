"""The fanotify marks a process holds, read from /proc/PID/fdinfo: the kernel's own account.

The benchmark does not trust a listener's word that it is ready or that it cached something: a
listener is ready when the kernel shows a permission mark of it covering the benchmark tree, and
an open was served from the ignore-mark cache when the kernel shows the ignore mark. This works
the same for the C responder, fapolicyd, fatrace and sessionio, whatever they print.

fs/notify/fdinfo.c prints one line per mark, all numbers in hex::

    fanotify ino:1a sdev:27 mflags:0 mask:10000 ignored_mask:0 fhandle-bytes:8 ...   (inode)
    fanotify mnt_id:2c mflags:0 mask:50000 ignored_mask:0                            (mount)
    fanotify sdev:27 mflags:0 mask:10000 ignored_mask:0                              (filesystem)
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass

from bench.mounts import TreeIdentity

__all__ = [
    "FAN_OPEN_PERM",
    "FanotifyMark",
    "MarkKind",
    "any_mark_on",
    "covers_tree",
    "fanotify_marks",
    "open_perm_mark_on",
    "parse_fanotify_fdinfo",
]

FAN_OPEN_PERM = 0x00010000
"""FAN_OPEN_PERM, the permission event every open under a content listener's mark asks for."""


class MarkKind(enum.StrEnum):
    INODE = "inode"
    MOUNT = "mount"
    FILESYSTEM = "filesystem"


@dataclass(frozen=True, slots=True)
class FanotifyMark:
    """One mark of a fanotify group; ``inode`` and ``sdev`` for inode marks, etc."""

    kind: MarkKind
    mask: int
    ignored_mask: int
    inode: int | None = None
    sdev: int | None = None
    mount_id: int | None = None


def parse_fanotify_fdinfo(text: str) -> list[FanotifyMark]:
    """The marks in one fdinfo file; empty for an fd that is not a fanotify group.

    ValueError for a ``fanotify`` mark line whose fields are not the kernel's.
    """
    marks: list[FanotifyMark] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "fanotify" or words[1].startswith("flags:"):
            continue
        fields: dict[str, int] = {}
        try:
            for word in words[1:]:
                key, sep, value = word.partition(":")
                if sep and key in ("ino", "sdev", "mnt_id", "mask", "ignored_mask"):
                    fields[key] = int(value, 16)
            mask, ignored = fields["mask"], fields["ignored_mask"]
        except (KeyError, ValueError):
            raise ValueError(f"not a fanotify mark line: {line!r}") from None
        if "ino" in fields:
            marks.append(
                FanotifyMark(
                    MarkKind.INODE, mask, ignored, inode=fields["ino"], sdev=fields.get("sdev")
                )
            )
        elif "mnt_id" in fields:
            marks.append(FanotifyMark(MarkKind.MOUNT, mask, ignored, mount_id=fields["mnt_id"]))
        elif "sdev" in fields:
            marks.append(FanotifyMark(MarkKind.FILESYSTEM, mask, ignored, sdev=fields["sdev"]))
        else:
            raise ValueError(f"a fanotify mark line names no object: {line!r}")
    return marks


def covers_tree(mark: FanotifyMark, tree: TreeIdentity) -> bool:
    """The mark is on the tree's filesystem or mount, or on an inode inside it."""
    if mark.kind is MarkKind.MOUNT:
        return mark.mount_id == tree.mount_id
    return mark.sdev == tree.sdev


def open_perm_mark_on(tree: TreeIdentity) -> Callable[[FanotifyMark], bool]:
    """A predicate for a permission listener's readiness: an OPEN_PERM mark covering the tree."""

    def accept(mark: FanotifyMark) -> bool:
        return bool(mark.mask & FAN_OPEN_PERM) and covers_tree(mark, tree)

    return accept


def any_mark_on(tree: TreeIdentity) -> Callable[[FanotifyMark], bool]:
    """A predicate for a notification listener's readiness: any mark covering the tree."""

    def accept(mark: FanotifyMark) -> bool:
        return mark.mask != 0 and covers_tree(mark, tree)

    return accept


def fanotify_marks(pid: int, *, read: Callable[[str], str] | None = None) -> list[FanotifyMark]:
    """Every mark of every fanotify group process ``pid`` holds (empty if it has exited)."""

    def read_text(path: str) -> str:
        with open(path, encoding="ascii", errors="replace") as stream:
            return stream.read()

    reader = read or read_text
    base = f"/proc/{pid}/fdinfo"
    marks: list[FanotifyMark] = []
    try:
        names = os.listdir(base)
    except (FileNotFoundError, ProcessLookupError):
        return marks
    for name in names:
        try:
            text = reader(f"{base}/{name}")
        except (FileNotFoundError, ProcessLookupError):
            continue
        marks.extend(parse_fanotify_fdinfo(text))
    return marks
