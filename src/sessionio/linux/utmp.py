"""Who is logged in according to /run/utmp: a fallback session source, used where logind is not.

Many machines have no /run/utmp any more (systemd stopped creating it; this one has none), so a
missing file is the normal "nobody recorded" answer, not an error.
"""

from __future__ import annotations

import os
from typing import Final

from sessionio.protocols.utmp import UtmpRecord, UtmpType, parse_utmp

__all__ = ["UTMP_PATH", "read_utmp", "user_processes"]

UTMP_PATH: Final = "/run/utmp"


def read_utmp(path: str | os.PathLike[str] = UTMP_PATH) -> list[UtmpRecord]:
    """Every record of a utmp or wtmp file, in file order; ``[]`` when the file does not exist.

    Other OS errors (EACCES on a locked-down machine) are raised as they are.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return parse_utmp(b"".join(chunks))


def user_processes(path: str | os.PathLike[str] = UTMP_PATH) -> list[UtmpRecord]:
    """The current logins: the USER_PROCESS records, as ``who`` lists them."""
    return [r for r in read_utmp(path) if r.type is UtmpType.USER_PROCESS]
