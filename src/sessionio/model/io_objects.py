"""The driver-owned I/O objects a session-notification registration is made for.

Only the *kind* of object and, for a device, whether it is a per-session device matter to the
contract: a per-session device object (DEVPKEY_Device_SessionId set to a nonzero session)
registers for that session only; any other device, a driver object or a file object registers
for all sessions. Objects compare by identity, as pointers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sessionio.ntdef.values import IO_TYPE_DEVICE, IO_TYPE_DRIVER, IO_TYPE_FILE

__all__ = ["DeviceObject", "DriverObject", "FileObject", "IoObject", "notification_scope"]


@dataclass(eq=False, slots=True)
class DriverObject:
    Type: ClassVar[int] = IO_TYPE_DRIVER
    name: str = "\\Driver\\sessionio"


@dataclass(eq=False, slots=True)
class DeviceObject:
    """``session_id`` is DEVPKEY_Device_SessionId: 0 (or None) for a device of no session."""

    Type: ClassVar[int] = IO_TYPE_DEVICE
    name: str = "\\Device\\sessionio"
    session_id: int | None = None

    @property
    def is_per_session(self) -> bool:
        return bool(self.session_id)


@dataclass(eq=False, slots=True)
class FileObject:
    Type: ClassVar[int] = IO_TYPE_FILE
    path: str = ""


IoObject = DriverObject | DeviceObject | FileObject


def notification_scope(io_object: IoObject) -> int | None:
    """The one session a registration for ``io_object`` covers, or None for all sessions."""
    if isinstance(io_object, DeviceObject) and io_object.is_per_session:
        return io_object.session_id
    return None
