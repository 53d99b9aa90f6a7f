"""NTSTATUS and Win32 error codes, with the NTSTATUS-to-Win32 mapping the routines need.

Values are mingw-w64's ``ntstatus.h`` and ``winerror.h``; the mapping is RtlNtStatusToDosError as
Wine's tests (validated against Windows) record it; the messages are FormatMessage's English text,
which pywin32 puts in ``error.strerror``.
"""

from __future__ import annotations

import enum

__all__ = ["NTSTATUS", "WinError", "nt_success", "ntstatus_to_win32", "win32_message"]


class NTSTATUS(enum.IntEnum):
    """NTSTATUS codes used by the routines, as unsigned 32-bit values (0xC0000001, not negative)."""

    STATUS_SUCCESS = 0x00000000
    STATUS_PENDING = 0x00000103
    STATUS_BUFFER_OVERFLOW = 0x80000005
    STATUS_UNSUCCESSFUL = 0xC0000001
    STATUS_NOT_IMPLEMENTED = 0xC0000002
    STATUS_INVALID_INFO_CLASS = 0xC0000003
    STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
    STATUS_INVALID_HANDLE = 0xC0000008
    STATUS_INVALID_CID = 0xC000000B
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_NO_SUCH_DEVICE = 0xC000000E
    STATUS_INVALID_DEVICE_REQUEST = 0xC0000010
    STATUS_ALREADY_COMMITTED = 0xC0000021
    STATUS_ACCESS_DENIED = 0xC0000022
    STATUS_BUFFER_TOO_SMALL = 0xC0000023
    STATUS_OBJECT_TYPE_MISMATCH = 0xC0000024
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
    STATUS_NO_TOKEN = 0xC000007C
    STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
    STATUS_NOT_SUPPORTED = 0xC00000BB
    STATUS_INVALID_PARAMETER_1 = 0xC00000EF
    STATUS_INVALID_PARAMETER_2 = 0xC00000F0
    STATUS_INVALID_PARAMETER_3 = 0xC00000F1
    STATUS_INVALID_PARAMETER_4 = 0xC00000F2
    STATUS_NOT_A_DIRECTORY = 0xC0000103
    STATUS_PROCESS_IS_TERMINATING = 0xC000010A
    STATUS_NOT_FOUND = 0xC0000225


class WinError(enum.IntEnum):
    """Win32 error codes (``GetLastError`` values)."""

    ERROR_SUCCESS = 0
    ERROR_INVALID_FUNCTION = 1
    ERROR_FILE_NOT_FOUND = 2
    ERROR_ACCESS_DENIED = 5
    ERROR_INVALID_HANDLE = 6
    ERROR_NOT_ENOUGH_MEMORY = 8
    ERROR_BAD_LENGTH = 24
    ERROR_GEN_FAILURE = 31
    ERROR_NOT_SUPPORTED = 50
    ERROR_INVALID_PARAMETER = 87
    ERROR_CALL_NOT_IMPLEMENTED = 120
    ERROR_INSUFFICIENT_BUFFER = 122
    ERROR_NOACCESS = 998
    ERROR_NO_TOKEN = 1008
    ERROR_NOT_FOUND = 1168
    ERROR_CTX_WINSTATION_NOT_FOUND = 7022


def nt_success(status: int) -> bool:
    """``NT_SUCCESS``: success and informational codes (severity bits 00 and 01)."""
    return (status & 0xFFFFFFFF) < 0x80000000


_TO_WIN32: dict[NTSTATUS, WinError] = {
    NTSTATUS.STATUS_SUCCESS: WinError.ERROR_SUCCESS,
    NTSTATUS.STATUS_INVALID_CID: WinError.ERROR_INVALID_PARAMETER,
    NTSTATUS.STATUS_INVALID_PARAMETER: WinError.ERROR_INVALID_PARAMETER,
    NTSTATUS.STATUS_INVALID_PARAMETER_1: WinError.ERROR_INVALID_PARAMETER,
    NTSTATUS.STATUS_INVALID_PARAMETER_2: WinError.ERROR_INVALID_PARAMETER,
    NTSTATUS.STATUS_INVALID_PARAMETER_3: WinError.ERROR_INVALID_PARAMETER,
    NTSTATUS.STATUS_INVALID_PARAMETER_4: WinError.ERROR_INVALID_PARAMETER,
    NTSTATUS.STATUS_ACCESS_DENIED: WinError.ERROR_ACCESS_DENIED,
    NTSTATUS.STATUS_PROCESS_IS_TERMINATING: WinError.ERROR_ACCESS_DENIED,
    NTSTATUS.STATUS_ALREADY_COMMITTED: WinError.ERROR_ACCESS_DENIED,
    NTSTATUS.STATUS_UNSUCCESSFUL: WinError.ERROR_GEN_FAILURE,
    NTSTATUS.STATUS_INVALID_DEVICE_REQUEST: WinError.ERROR_INVALID_FUNCTION,
    NTSTATUS.STATUS_NOT_IMPLEMENTED: WinError.ERROR_INVALID_FUNCTION,
    NTSTATUS.STATUS_INFO_LENGTH_MISMATCH: WinError.ERROR_BAD_LENGTH,
    NTSTATUS.STATUS_INVALID_HANDLE: WinError.ERROR_INVALID_HANDLE,
    NTSTATUS.STATUS_BUFFER_TOO_SMALL: WinError.ERROR_INSUFFICIENT_BUFFER,
    NTSTATUS.STATUS_NOT_FOUND: WinError.ERROR_NOT_FOUND,
    NTSTATUS.STATUS_NO_TOKEN: WinError.ERROR_NO_TOKEN,
    NTSTATUS.STATUS_NOT_SUPPORTED: WinError.ERROR_NOT_SUPPORTED,
}


def ntstatus_to_win32(status: NTSTATUS) -> WinError:
    """RtlNtStatusToDosError for the codes above (ERROR_GEN_FAILURE for any other failure)."""
    return _TO_WIN32.get(status, WinError.ERROR_GEN_FAILURE)


_MESSAGES: dict[int, str] = {
    WinError.ERROR_SUCCESS: "The operation completed successfully.",
    WinError.ERROR_INVALID_FUNCTION: "Incorrect function.",
    WinError.ERROR_FILE_NOT_FOUND: "The system cannot find the file specified.",
    WinError.ERROR_ACCESS_DENIED: "Access is denied.",
    WinError.ERROR_INVALID_HANDLE: "The handle is invalid.",
    WinError.ERROR_NOT_ENOUGH_MEMORY: "Not enough memory resources are available to process "
    "this command.",
    WinError.ERROR_BAD_LENGTH: "The program issued a command but the command length is incorrect.",
    WinError.ERROR_GEN_FAILURE: "A device attached to the system is not functioning.",
    WinError.ERROR_NOT_SUPPORTED: "The request is not supported.",
    WinError.ERROR_INVALID_PARAMETER: "The parameter is incorrect.",
    WinError.ERROR_INSUFFICIENT_BUFFER: "The data area passed to a system call is too small.",
    WinError.ERROR_NOT_FOUND: "Element not found.",
}


def win32_message(code: int) -> str:
    """FormatMessage's text for ``code``, as pywin32's PyWin_SetAPIError puts it in ``strerror``."""
    return _MESSAGES.get(code, "No error message is available")
