"""The filter manager: minifilters at unique altitudes, called in the documented order.

Pre-operation callbacks run from the highest altitude down; post-operation callbacks from the
lowest up, only for filters whose pre-operation asked for one (SUCCESS_WITH_CALLBACK, or no
pre-operation at all). A pre-operation that returns COMPLETE ends the descent: the filters below
never see the operation, the completing filter gets no post-operation, and the filters above it
that asked for one still get their post-operations with the completion status.

The same manager runs on the simulated and the live kernel; the live kernel feeds it fanotify
permission events (pre-operations, whose final status allows or denies) and notification events
(post-only: the operation already happened).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

from sessionio.errors import RegistrationError, UsageError
from sessionio.model.request import CallbackData
from sessionio.ntdef.status import NTSTATUS
from sessionio.ntdef.values import (
    FLT_POSTOP_CALLBACK_STATUS,
    FLT_PREOP_CALLBACK_STATUS,
    FLTFL_CALLBACK_DATA_POST_OPERATION,
    IRP_MJ,
)

__all__ = [
    "FilterManager",
    "FilterRegistration",
    "MiniFilter",
    "PostOperation",
    "PreOperation",
    "PreopResult",
]

PreopResult = FLT_PREOP_CALLBACK_STATUS | tuple[FLT_PREOP_CALLBACK_STATUS, object]
"""A pre-operation returns a status, or (status, completion_context) for its post-operation."""

PreOperation = Callable[[CallbackData], PreopResult]
PostOperation = Callable[[CallbackData, object], FLT_POSTOP_CALLBACK_STATUS | None]
Perform = Callable[[CallbackData], NTSTATUS]


class MiniFilter(Protocol):
    """The object shape :meth:`FilterManager.register_filter` accepts (either method optional)."""

    name: str


_S = FLT_PREOP_CALLBACK_STATUS


def _parse_altitude(altitude: str | int | Decimal) -> Decimal:
    try:
        value = Decimal(str(altitude))
    except InvalidOperation:
        raise RegistrationError(f"altitude {altitude!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise RegistrationError(f"altitude {altitude!r} must be a non-negative decimal number")
    return value


@dataclass(frozen=True, slots=True, eq=False)
class FilterRegistration:
    """One registered filter; :meth:`FilterManager.unregister` takes it back."""

    name: str
    altitude: Decimal
    pre: PreOperation | None
    post: PostOperation | None
    operations: frozenset[IRP_MJ] | None
    order: int

    def handles(self, major_function: IRP_MJ) -> bool:
        return self.operations is None or major_function in self.operations


class FilterManager:
    """Filters ordered by altitude, highest first."""

    def __init__(self) -> None:
        self._filters: list[FilterRegistration] = []
        self._order = itertools.count()

    def register(
        self,
        name: str,
        altitude: str | int | Decimal,
        *,
        pre: PreOperation | None = None,
        post: PostOperation | None = None,
        operations: Collection[IRP_MJ] | None = None,
    ) -> FilterRegistration:
        """Register callbacks at ``altitude``, which must be unique (as Filter Manager demands)."""
        value = _parse_altitude(altitude)
        if pre is None and post is None:
            raise RegistrationError(f"filter {name!r} has neither a pre- nor a post-operation")
        for existing in self._filters:
            if existing.altitude == value:
                raise RegistrationError(
                    f"altitude {altitude} is already taken by filter {existing.name!r}"
                )
            if existing.name == name:
                raise RegistrationError(f"a filter named {name!r} is already registered")
        ops = None if operations is None else frozenset(operations)
        registration = FilterRegistration(name, value, pre, post, ops, next(self._order))
        self._filters.append(registration)
        self._filters.sort(key=lambda r: r.altitude, reverse=True)
        return registration

    def register_filter(
        self,
        minifilter: MiniFilter,
        altitude: str | int | Decimal,
        *,
        operations: Collection[IRP_MJ] | None = None,
    ) -> FilterRegistration:
        """Register an object with ``pre_operation`` and/or ``post_operation`` methods."""
        pre = getattr(minifilter, "pre_operation", None)
        post = getattr(minifilter, "post_operation", None)
        return self.register(minifilter.name, altitude, pre=pre, post=post, operations=operations)

    def unregister(self, registration: FilterRegistration) -> None:
        try:
            self._filters.remove(registration)
        except ValueError:
            raise RegistrationError(f"filter {registration.name!r} is not registered") from None

    @property
    def filters(self) -> tuple[FilterRegistration, ...]:
        """Registered filters, highest altitude first."""
        return tuple(self._filters)

    def __len__(self) -> int:
        return len(self._filters)

    def run(self, data: CallbackData, perform: Perform) -> NTSTATUS:
        """Run an operation through the filters; ``perform`` is the file system below them all.

        Returns the final status: the completing filter's, or what ``perform`` returned.
        """
        asked_for_post: list[tuple[FilterRegistration, object]] = []
        completed = False
        for registration in self._filters:
            if not registration.handles(data.Iopb.MajorFunction):
                continue
            if registration.pre is None:
                asked_for_post.append((registration, None))
                continue
            status, context = _normalise(registration.name, registration.pre(data))
            if status == _S.FLT_PREOP_SUCCESS_WITH_CALLBACK:
                asked_for_post.append((registration, context))
            elif status == _S.FLT_PREOP_COMPLETE:
                completed = True
                break
        if not completed:
            data.IoStatus.Status = perform(data)
        data.Flags |= FLTFL_CALLBACK_DATA_POST_OPERATION
        for registration, context in reversed(asked_for_post):
            if registration.post is not None:
                registration.post(data, context)
        return data.IoStatus.Status

    def run_post_only(self, data: CallbackData) -> None:
        """Post-operations, lowest altitude up, for an operation that has already completed."""
        data.Flags |= FLTFL_CALLBACK_DATA_POST_OPERATION
        for registration in reversed(self._filters):
            if registration.post is not None and registration.handles(data.Iopb.MajorFunction):
                registration.post(data, None)

    def has_pre_operations(self, major_function: IRP_MJ) -> bool:
        return any(r.pre is not None and r.handles(major_function) for r in self._filters)


def _normalise(name: str, result: PreopResult) -> tuple[FLT_PREOP_CALLBACK_STATUS, object]:
    status, context = result if isinstance(result, tuple) else (result, None)
    if status not in (
        _S.FLT_PREOP_SUCCESS_WITH_CALLBACK,
        _S.FLT_PREOP_SUCCESS_NO_CALLBACK,
        _S.FLT_PREOP_COMPLETE,
    ):
        raise UsageError(
            f"filter {name!r} returned {status!r}: this filter manager supports "
            "SUCCESS_WITH_CALLBACK, SUCCESS_NO_CALLBACK and COMPLETE"
        )
    return FLT_PREOP_CALLBACK_STATUS(status), context
