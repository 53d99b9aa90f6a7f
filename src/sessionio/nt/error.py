"""pywin32's ``error``: the exception ProcessIdToSessionId raises, in pywin32's exact shape.

pywin32 raises ``pywintypes.error(winerror, funcname, strerror)``; code ported from Windows
catches it and reads those three attributes, so we give them the same names and order.
"""

from __future__ import annotations

from sessionio.errors import SessionioError
from sessionio.ntdef.status import win32_message

__all__ = ["error", "raise_api_error"]


class error(SessionioError):
    """``error(winerror, funcname, strerror)``; missing arguments are None, as in pywin32."""

    __module__ = "sessionio.nt"

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.winerror: int | None = args[0] if len(args) > 0 else None  # type: ignore[assignment]
        self.funcname: str | None = args[1] if len(args) > 1 else None  # type: ignore[assignment]
        self.strerror: str | None = args[2] if len(args) > 2 else None  # type: ignore[assignment]


def raise_api_error(funcname: str, winerror: int) -> error:
    """PyWin_SetAPIError: the error for ``winerror`` with FormatMessage's text."""
    return error(int(winerror), funcname, win32_message(winerror))
