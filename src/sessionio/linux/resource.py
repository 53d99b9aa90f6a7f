"""The one shape of everything sessionio opens: ``close()`` idempotent, usable with ``with``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["Resource"]


class Resource(ABC):
    """A kernel object or process we own: a group fd, a socket, a bus, a child daemon.

    Subclasses implement ``close()`` (idempotent); ``with resource:`` closes it on the way out,
    whatever happened inside.
    """

    __slots__ = ()

    @abstractmethod
    def close(self) -> None:
        """Release it; closing twice is a no-op."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
