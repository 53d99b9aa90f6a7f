"""systemd-logind over the D-Bus system bus (jeepney, blocking): sessions and their signals.

logind is an enrichment source: where it runs, it names a session's user, remote host, tty and
state, and signals SessionNew / SessionRemoved / PropertiesChanged. Where it does not (this
machine, containers), ``LogindClient.connect`` answers ``None`` at once, and callers fall back
to /proc and utmp. Messages are decoded by the pure ``sessionio.protocols.logind``; this module
only moves them, and turns D-Bus failures into ``SessionServiceError`` (a D-Bus error reply or
no reply in time) or ``BrokenResourceError`` (the bus connection broke).

Neither object is thread-safe: a jeepney blocking connection belongs to one thread, which is
why a subscription has a connection of its own.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

from jeepney import (  # type: ignore[import-untyped, unused-ignore]
    DBusAddress,
    HeaderFields,
    MatchRule,
    MessageType,
    message_bus,
    new_method_call,
)
from jeepney.bus import get_connectable_addresses  # type: ignore[import-untyped, unused-ignore]
from jeepney.io.blocking import (  # type: ignore[import-untyped, unused-ignore]
    DBusConnection,
    prep_socket,
)

from sessionio.errors import BrokenResourceError, ClosedResourceError, SessionServiceError
from sessionio.linux.resource import Resource
from sessionio.protocols.logind import (
    LOGIND_BUS_NAME,
    MANAGER_INTERFACE,
    MANAGER_PATH,
    PROPERTIES_INTERFACE,
    SESSION_INTERFACE,
    SESSION_PATH_PREFIX,
    LogindEvent,
    LogindSession,
    decode_signal,
    parse_list_sessions,
    session_from_properties,
)

__all__ = [
    "DEFAULT_SYSTEM_BUS_ADDRESS",
    "BusConnection",
    "LogindClient",
    "LogindSubscription",
    "system_bus_address",
]

DEFAULT_SYSTEM_BUS_ADDRESS: Final = "unix:path=/run/dbus/system_bus_socket"

# D-Bus errors that mean "no such session", not "logind failed": Manager's own answers, and
# what a session object that vanished answers (sd-bus says UnknownObject, dbus-python
# UnknownMethod), which only a call on a session object may take to mean that.
_NO_SESSION_ERRORS: Final = frozenset(
    {"org.freedesktop.login1.NoSuchSession", "org.freedesktop.login1.NoSessionForPID"}
)
_GONE_OBJECT_ERRORS: Final = _NO_SESSION_ERRORS | {
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownMethod",
}

_MANAGER: Final = DBusAddress(MANAGER_PATH, bus_name=LOGIND_BUS_NAME, interface=MANAGER_INTERFACE)


def system_bus_address(address: str | None = None) -> str:
    """``address``, else ``$DBUS_SYSTEM_BUS_ADDRESS``, else the well-known system bus socket."""
    return address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS_ADDRESS


def _open(address: str, timeout: float) -> Any | None:
    """A connection to the first reachable bus of a D-Bus address list, or None."""
    try:
        candidates = list(get_connectable_addresses(address))
    except (ValueError, RuntimeError):  # unparsable, or only transports jeepney lacks (tcp:)
        return None
    for candidate in candidates:
        try:
            sock = prep_socket(candidate, timeout=timeout)
        except (OSError, ValueError):  # ENOENT, ECONNREFUSED, auth timeout or refusal
            continue
        try:
            # Hello is not bounded by jeepney; a peer that authenticates us is a real bus.
            return DBusConnection(sock)
        except (OSError, ValueError):
            sock.close()
    return None


class BusConnection:
    """One blocking D-Bus connection and the translation of its failures (the choke point).

    Shared by the logind client, its subscriptions and ``sessionio.testing.logind``.
    """

    def __init__(self, connection: Any, timeout: float) -> None:
        self._connection: Any | None = connection
        self.timeout = timeout

    @classmethod
    def open(cls, address: str | None = None, timeout: float = 1.0) -> BusConnection | None:
        """Connect to a bus (``address``, else the system bus); ``None`` if none answers."""
        connection = _open(system_bus_address(address), timeout)
        return None if connection is None else cls(connection, timeout)

    @property
    def connection(self) -> Any:
        """The jeepney ``DBusConnection``."""
        if self._connection is None:
            raise ClosedResourceError("the D-Bus connection is closed")
        return self._connection

    def call(self, message: Any) -> tuple[object, ...]:
        """Send a method call and return the reply body, or raise a sessionio error."""
        try:
            reply = self.connection.send_and_get_reply(message, timeout=self.timeout)
        except TimeoutError as err:
            member = message.header.fields.get(HeaderFields.member)
            raise SessionServiceError(f"no reply to {member} within {self.timeout} s") from err
        except OSError as err:
            raise BrokenResourceError(f"the D-Bus connection broke: {err}") from err
        body: tuple[object, ...] = reply.body
        if reply.header.message_type is MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name)
            text = body[0] if body and isinstance(body[0], str) else ""
            raise SessionServiceError(f"{name}: {text}", dbus_error_name=name)
        return body

    def receive(self, timeout: float | None) -> Any | None:
        """The next incoming message (a jeepney ``Message``), ``None`` after ``timeout`` s."""
        try:
            return self.connection.receive(timeout=timeout)
        except TimeoutError:
            return None
        except OSError as err:
            raise BrokenResourceError(f"the D-Bus connection broke: {err}") from err

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _connect_logind(address: str | None, timeout: float) -> BusConnection | None:
    """A bus on which org.freedesktop.login1 has an owner, or None."""
    bus = BusConnection.open(address, timeout)
    if bus is None:
        return None
    try:
        (has_owner,) = bus.call(message_bus.NameHasOwner(LOGIND_BUS_NAME))
    except (SessionServiceError, BrokenResourceError):
        has_owner = False
    if has_owner is not True:
        bus.close()
        return None
    return bus


class LogindClient(Resource):
    """Queries to org.freedesktop.login1.Manager and its session objects.

    Made by ``connect()``; a context manager that closes its connection.
    """

    def __init__(self, bus: BusConnection, address: str) -> None:
        self._bus = bus
        self._address = address

    @classmethod
    def connect(cls, address: str | None = None, timeout: float = 1.0) -> LogindClient | None:
        """Connect to logind on the system bus (``address``, else ``$DBUS_SYSTEM_BUS_ADDRESS``).

        ``None``, without raising, when there is no bus at the address or nobody owns
        org.freedesktop.login1 on it. ``timeout`` bounds authentication and every method call.
        """
        resolved = system_bus_address(address)
        bus = _connect_logind(resolved, timeout)
        return None if bus is None else cls(bus, resolved)

    @property
    def address(self) -> str:
        """The D-Bus address connected to."""
        return self._address

    def close(self) -> None:
        self._bus.close()

    def _path_or_none(self, method: str, signature: str, arg: object) -> str | None:
        try:
            (path,) = self._bus.call(new_method_call(_MANAGER, method, signature, (arg,)))
        except SessionServiceError as err:
            if err.dbus_error_name in _NO_SESSION_ERRORS:
                return None
            raise
        if not isinstance(path, str):
            raise SessionServiceError(f"{method} answered {path!r}, not an object path")
        return path

    def list_sessions(self) -> list[LogindSession]:
        """Every session logind knows (ListSessions, then the properties of each).

        A session removed between the two steps is left out.
        """
        entries = parse_list_sessions(self._bus.call(new_method_call(_MANAGER, "ListSessions")))
        sessions = (self.session_by_path(entry.path) for entry in entries)
        return [s for s in sessions if s is not None]

    def session(self, session_id: str) -> LogindSession | None:
        """One session by its logind id, ``None`` if logind has no such session."""
        path = self._path_or_none("GetSession", "s", session_id)
        return None if path is None else self.session_by_path(path)

    def session_by_pid(self, pid: int) -> LogindSession | None:
        """The session whose leader is ``pid`` or whose scope holds it (GetSessionByPID)."""
        path = self._path_or_none("GetSessionByPID", "u", pid)
        return None if path is None else self.session_by_path(path)

    def session_by_path(self, path: str) -> LogindSession | None:
        """A session object's properties (Properties.GetAll), ``None`` if it is gone."""
        target = DBusAddress(path, bus_name=LOGIND_BUS_NAME, interface=PROPERTIES_INTERFACE)
        try:
            (properties,) = self._bus.call(
                new_method_call(target, "GetAll", "s", (SESSION_INTERFACE,))
            )
        except SessionServiceError as err:
            if err.dbus_error_name in _GONE_OBJECT_ERRORS:
                return None
            raise
        if not isinstance(properties, dict):
            raise SessionServiceError(f"GetAll on {path} did not answer a{{sv}}")
        return session_from_properties(properties, path=path)

    def subscribe(self) -> LogindSubscription:
        """Start receiving session signals, on a connection of their own.

        Subscribe before listing sessions, so that none is created unseen in between.
        """
        subscription = LogindSubscription.open(self._address, self._bus.timeout)
        if subscription is None:
            raise BrokenResourceError("logind left the system bus")
        return subscription


def _match_rules() -> list[Any]:
    """Manager.SessionNew / SessionRemoved, and PropertiesChanged of session objects."""
    rules = [
        MatchRule(
            type="signal",
            sender=LOGIND_BUS_NAME,
            interface=MANAGER_INTERFACE,
            path=MANAGER_PATH,
            member=member,
        )
        for member in ("SessionNew", "SessionRemoved")
    ]
    changed = MatchRule(
        type="signal",
        sender=LOGIND_BUS_NAME,
        interface=PROPERTIES_INTERFACE,
        member="PropertiesChanged",
        path_namespace=SESSION_PATH_PREFIX.rstrip("/"),
    )
    changed.add_arg_condition(0, SESSION_INTERFACE)
    return [*rules, changed]


class LogindSubscription(Resource):
    """Session signals from logind, as typed events (``LogindSessionNew``, ...).

    The bus delivers only what the AddMatch rules select, from logind's own connection (the
    daemon checks the sender), so every signal that arrives is decoded.
    """

    def __init__(self, bus: BusConnection) -> None:
        self._bus = bus

    @classmethod
    def open(cls, address: str | None = None, timeout: float = 1.0) -> LogindSubscription | None:
        """Subscribe on a new connection; ``None`` when logind is not on the bus."""
        bus = _connect_logind(address, timeout)
        if bus is None:
            return None
        try:
            for rule in _match_rules():
                bus.call(message_bus.AddMatch(rule))
        except BaseException:
            bus.close()
            raise
        return cls(bus)

    def recv(self, timeout: float | None = None) -> LogindEvent | None:
        """The next session event; ``None`` if none arrives within ``timeout`` seconds.

        ``timeout=None`` waits for ever, 0 only takes what has already arrived. A logind
        signal with the wrong arguments raises ``MalformedEventError``; the bus going away,
        ``BrokenResourceError``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            message = self._bus.receive(remaining)
            if message is None:
                return None
            header = message.header
            if header.message_type is not MessageType.signal:
                continue
            event = decode_signal(
                header.fields.get(HeaderFields.path, ""),
                header.fields.get(HeaderFields.interface, ""),
                header.fields.get(HeaderFields.member, ""),
                message.body,
            )
            if event is not None:
                return event

    def close(self) -> None:
        self._bus.close()
