"""The notification registry: who hears about which session events.

One registry per kernel. A registration has a scope (one session, or all) and an EventMask; the
kernel hands every transition to :meth:`NotificationRegistry.dispatch`, which calls the
registrations whose scope and mask select it, in registration order, once each. Both the Windows
routine (IoRegisterContainerNotification) and the Pythonic ``on_session_event`` register here,
each with its own adapter for the callback's shape, so the selection logic exists once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from sessionio.errors import RegistrationError
from sessionio.model.session import Session, SessionEvent
from sessionio.ntdef.values import event_mask_bit

__all__ = ["Deliver", "NotificationRegistry", "Registration"]

Deliver = Callable[[Session, SessionEvent], object]
"""Adapter that calls a subscriber in its own shape."""


@dataclass(frozen=True, slots=True, eq=False)
class Registration:
    """A registration handle (the CallbackRegistration of IoRegisterContainerNotification)."""

    number: int
    io_object: object | None
    scope: int | None
    event_mask: int
    deliver: Deliver

    def selects(self, event: SessionEvent) -> bool:
        in_scope = self.scope is None or self.scope == event.session_id
        return in_scope and bool(event_mask_bit(event.event) & self.event_mask)


class NotificationRegistry:
    """Registrations in the order they were made."""

    def __init__(self) -> None:
        self._registrations: dict[int, Registration] = {}
        self._numbers = itertools.count(1)

    def register(
        self, deliver: Deliver, *, event_mask: int, scope: int | None, io_object: object | None
    ) -> Registration:
        """Add a registration; one active registration per IoObject (STATUS_ALREADY_COMMITTED)."""
        if io_object is not None and any(
            r.io_object is io_object for r in self._registrations.values()
        ):
            raise RegistrationError("this I/O object already has a session notification registered")
        registration = Registration(next(self._numbers), io_object, scope, event_mask, deliver)
        self._registrations[registration.number] = registration
        return registration

    def unregister(self, registration: object) -> bool:
        """Remove it; an unknown or already removed handle is a silent no-op (returns False)."""
        if not isinstance(registration, Registration):
            return False
        return self._registrations.pop(registration.number, None) is not None

    def dispatch(self, session: Session, event: SessionEvent) -> None:
        """Deliver ``event`` to every registration that selects it, in registration order.

        A callback that raises does not keep the event from the registrations after it: every
        one is called, then the exceptions are raised together as an ExceptionGroup (on the
        simulated kernel that surfaces a driver's bug; the live service logs it).
        """
        errors: list[Exception] = []
        for registration in list(self._registrations.values()):
            if registration.number in self._registrations and registration.selects(event):
                try:
                    registration.deliver(session, event)
                except Exception as err:  # re-raised below, after the others
                    errors.append(err)
        if errors:
            raise ExceptionGroup(
                f"session {event.session_id}: {event.name} callbacks raised", errors
            )

    def __len__(self) -> int:
        return len(self._registrations)
