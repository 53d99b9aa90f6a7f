"""Typed ids. A session id is an int where ``NO_SESSION`` (-1) means the process has none.

Linux spells "no audit session" 4294967295 and Windows' FltGetRequestorSessionId spells it
(ULONG)-1; both are the same -1 here, so that callers compare against one name.
"""

from __future__ import annotations

from typing import Final, NewType

__all__ = ["NO_SESSION", "Pid", "SessionId", "Tid"]

Pid = NewType("Pid", int)
Tid = NewType("Tid", int)
SessionId = NewType("SessionId", int)

NO_SESSION: Final = SessionId(-1)
