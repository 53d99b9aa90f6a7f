"""libc through ctypes, loaded on first use (inotify_simple's shape, typed).

Importing this module loads nothing, so ``import sessionio`` works on any platform; the first
:func:`libc_function` call loads libc. Every binding is a fresh ctypes prototype made with
``use_errno=True`` (never the shared ``CDLL`` attribute, whose ``argtypes`` any module could
overwrite), and :func:`libc_call` turns the C convention "-1 and errno" into ``OSError``, so
callers get the stdlib subclasses (``PermissionError``, ``FileNotFoundError``, ...) for free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
from collections.abc import Callable
from typing import Any, cast

__all__ = ["StrOrBytesPath", "libc", "libc_call", "libc_function"]

StrOrBytesPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
"""What the bindings accept as a path, like the ``os`` functions."""


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, loaded once, with errno saved after every call."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@functools.cache
def libc_function(
    name: str,
    restype: type[ctypes._SimpleCData[Any]],
    *argtypes: type[ctypes._SimpleCData[Any]],
) -> Callable[..., int]:
    """The libc function ``name`` with the given C signature (cached per signature).

    A libc without the symbol (too old, not glibc-compatible) raises ``OSError(ENOSYS)``, the
    same error a kernel without the syscall gives, so callers handle both in one place.
    """
    prototype = ctypes.CFUNCTYPE(restype, *argtypes, use_errno=True)
    try:
        function = prototype((name, libc()))
    except AttributeError:
        raise OSError(errno.ENOSYS, f"{name} is not in this C library") from None
    return cast("Callable[..., int]", function)


def libc_call(
    function: Callable[..., int], *args: object, filename: StrOrBytesPath | None = None
) -> int:
    """Call ``function``, retrying on EINTR; a -1 result raises ``OSError(errno, strerror)``.

    ``filename`` only decorates the error (as ``os.open`` does), so messages name the path.
    """
    while True:
        result = function(*args)
        if result != -1:
            return result
        err = ctypes.get_errno()
        if err != errno.EINTR:
            if filename is None:
                raise OSError(err, os.strerror(err))
            raise OSError(err, os.strerror(err), filename)
