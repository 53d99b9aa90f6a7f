"""The structures the session-notification routines exchange, with their x64 sizes.

They are Python values, not ctypes structures (ctypes lives only in ``sessionio.linux``); each
has ``sizeof`` so the size checks of IoRegisterContainerNotification and IoGetContainerInformation
behave as on x64 Windows, and ``pack()`` gives the exact bytes where a caller wants them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from sessionio.ntdef.values import IO_SESSION_STATE

__all__ = [
    "IO_SESSION_CONNECT_INFO",
    "IO_SESSION_STATE_INFORMATION",
    "IO_SESSION_STATE_NOTIFICATION",
]


@dataclass(slots=True)
class IO_SESSION_STATE_NOTIFICATION:
    """``{ULONG Size; ULONG Flags; PVOID IoObject; ULONG EventMask; PVOID Context;}`` (x64: 32).

    Mutable, as the C structure a driver fills in; IoRegisterContainerNotification copies it.
    """

    sizeof: ClassVar[int] = 32

    IoObject: object
    EventMask: int
    Context: object = None
    Flags: int = 0
    Size: int = 32


@dataclass(frozen=True, slots=True)
class IO_SESSION_CONNECT_INFO:
    """``{ULONG SessionId; BOOLEAN LocalSession;}``, padded to 8: the payload of Connected."""

    sizeof: ClassVar[int] = 8

    SessionId: int
    LocalSession: bool

    def pack(self) -> bytes:
        return struct.pack("<I?3x", self.SessionId & 0xFFFFFFFF, self.LocalSession)


@dataclass(frozen=True, slots=True)
class IO_SESSION_STATE_INFORMATION:
    """``{ULONG SessionId; IO_SESSION_STATE SessionState; BOOLEAN LocalSession;}``: 12 bytes.

    LocalSession is only meaningful while the session is connected (Connected, LoggedOn,
    LoggedOff), as the documentation says.
    """

    sizeof: ClassVar[int] = 12

    SessionId: int
    SessionState: IO_SESSION_STATE
    LocalSession: bool

    def pack(self) -> bytes:
        return struct.pack(
            "<Ii?3x", self.SessionId & 0xFFFFFFFF, int(self.SessionState), self.LocalSession
        )
