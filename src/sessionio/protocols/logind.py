"""systemd-logind's session shape and signals, decoded from D-Bus values without a bus.

The input is what jeepney's parser produces from the wire: message bodies as tuples, and
``a{sv}`` dictionaries whose values are ``(signature, value)`` pairs. Turning them into typed
values here (jeepney's sans-I/O split) lets every decoding rule be tested from golden messages;
``sessionio.linux.logind`` only moves messages.

Reference: org.freedesktop.login1(5), Manager and Session interfaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NewType

from sessionio.errors import MalformedEventError
from sessionio.protocols.audit import AUDIT_ID_UNSET

__all__ = [
    "audit_session_id",
    "LOGIND_BUS_NAME",
    "MANAGER_INTERFACE",
    "MANAGER_PATH",
    "PROPERTIES_INTERFACE",
    "SESSION_INTERFACE",
    "SESSION_PATH_PREFIX",
    "SESSION_PROPERTY_SIGNATURES",
    "LogindEvent",
    "LogindSession",
    "LogindSessionChanged",
    "LogindSessionId",
    "LogindSessionNew",
    "LogindSessionRemoved",
    "SessionListEntry",
    "apply_changes",
    "decode_signal",
    "escape_object_path_label",
    "parse_list_sessions",
    "session_from_properties",
    "session_path",
    "unescape_object_path",
    "unwrap_variants",
]

LOGIND_BUS_NAME: Final = "org.freedesktop.login1"
MANAGER_PATH: Final = "/org/freedesktop/login1"
MANAGER_INTERFACE: Final = "org.freedesktop.login1.Manager"
SESSION_INTERFACE: Final = "org.freedesktop.login1.Session"
SESSION_PATH_PREFIX: Final = "/org/freedesktop/login1/session/"
PROPERTIES_INTERFACE: Final = "org.freedesktop.DBus.Properties"

LogindSessionId = NewType("LogindSessionId", str)
"""logind's session id: the audit session id in decimal when pam_loginuid ran, else "cN"."""

SESSION_PROPERTY_SIGNATURES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Id": "s",
        "User": "(uo)",
        "Name": "s",
        "Timestamp": "t",
        "TimestampMonotonic": "t",
        "VTNr": "u",
        "Seat": "(so)",
        "TTY": "s",
        "Display": "s",
        "Remote": "b",
        "RemoteHost": "s",
        "RemoteUser": "s",
        "Service": "s",
        "Desktop": "s",
        "Scope": "s",
        "Leader": "u",
        "Audit": "u",
        "Type": "s",
        "Class": "s",
        "Active": "b",
        "State": "s",
        "IdleHint": "b",
        "IdleSinceHint": "t",
        "IdleSinceHintMonotonic": "t",
        "LockedHint": "b",
    }
)
"""D-Bus signatures of the org.freedesktop.login1.Session properties (for encoding them)."""

_U32_MAX: Final = 0xFFFFFFFF
_AUDIT_UNSET: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class LogindSession:
    """One logind session, as its org.freedesktop.login1.Session properties describe it.

    Missing properties take their empty value ("" / False / None) so that older logind
    versions and mocks still decode. ``audit`` is the kernel audit session id of the leader,
    ``None`` when logind has none (it reports 0); ``leader`` is ``None`` likewise.
    ``timestamp`` is the session's creation in seconds since the epoch.
    """

    id: LogindSessionId
    uid: int | None = None
    user: str = ""
    seat: str = ""
    tty: str = ""
    display: str = ""
    remote: bool = False
    remote_host: str = ""
    remote_user: str = ""
    service: str = ""
    type: str = ""
    session_class: str = ""
    state: str = ""
    active: bool = False
    leader: int | None = None
    audit: int | None = None
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class SessionListEntry:
    """One ``a(susso)`` row of Manager.ListSessions."""

    id: LogindSessionId
    uid: int
    user: str
    seat: str
    path: str


@dataclass(frozen=True, slots=True)
class LogindSessionNew:
    """Manager.SessionNew: logind registered a session."""

    id: LogindSessionId
    path: str


@dataclass(frozen=True, slots=True)
class LogindSessionRemoved:
    """Manager.SessionRemoved: the session is gone (after State went "closing")."""

    id: LogindSessionId
    path: str


@dataclass(frozen=True, slots=True)
class LogindSessionChanged:
    """Properties.PropertiesChanged on a session object (Active, State, LockedHint, ...).

    ``changed`` maps property names to plain values (variants unwrapped); ``invalidated``
    names properties that changed without their value being sent.
    """

    id: LogindSessionId
    path: str
    changed: Mapping[str, object]
    invalidated: tuple[str, ...] = ()


LogindEvent = LogindSessionNew | LogindSessionRemoved | LogindSessionChanged


# -- object paths ---------------------------------------------------------------------------------


def escape_object_path_label(label: str) -> str:
    """systemd's bus_label_escape(): keep [A-Za-z] and non-leading digits, "_xx" the rest.

    Session "1" lives at ``/org/freedesktop/login1/session/_31``; "" becomes "_".
    """
    if not label:
        return "_"
    out: list[str] = []
    for i, byte in enumerate(label.encode("utf-8", "surrogateescape")):
        char = chr(byte)
        if (char.isascii() and char.isalpha()) or (i > 0 and char in "0123456789"):
            out.append(char)
        else:
            out.append(f"_{byte:02x}")
    return "".join(out)


_HEX: Final = frozenset("0123456789abcdefABCDEF")


def unescape_object_path(path: str) -> str:
    """bus_label_unescape() of the last element of an object path (or of a bare label).

    ``"/org/freedesktop/login1/session/_31"`` gives ``"1"``. An ``_`` not followed by two hex
    digits is kept as it is.
    """
    label = path.rsplit("/", 1)[-1]
    if label == "_":
        return ""
    out = bytearray()
    i = 0
    while i < len(label):
        hex_pair = label[i + 1 : i + 3]
        if label[i] == "_" and len(hex_pair) == 2 and all(c in _HEX for c in hex_pair):
            out.append(int(hex_pair, 16))
            i += 3
        else:
            out += label[i].encode("utf-8", "surrogateescape")
            i += 1
    return out.decode("utf-8", "surrogateescape")


def session_path(session_id: str) -> str:
    """The object path real logind gives a session id (Manager.GetSession answers it)."""
    return SESSION_PATH_PREFIX + escape_object_path_label(session_id)


# -- values ---------------------------------------------------------------------------------------


def unwrap_variants(properties: object, what: str = "a{sv}") -> dict[str, object]:
    """An ``a{sv}`` as jeepney decodes it, ``{name: (signature, value)}``, to ``{name: value}``."""
    if not isinstance(properties, dict):
        raise MalformedEventError(f"{what}: expected a dict, got {type(properties).__name__}")
    plain: dict[str, object] = {}
    for name, variant in properties.items():
        if not isinstance(name, str):
            raise MalformedEventError(f"{what}: key {name!r} is not a string")
        if not (isinstance(variant, tuple) and len(variant) == 2 and isinstance(variant[0], str)):
            raise MalformedEventError(f"{what}: {name} is not a (signature, value) variant")
        plain[name] = variant[1]
    return plain


def _str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise MalformedEventError(f"logind {name}: expected a string, got {value!r:.60}")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise MalformedEventError(f"logind {name}: expected a boolean, got {value!r:.60}")
    return value


def _uint(name: str, value: object, limit: int = _U32_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise MalformedEventError(f"logind {name}: expected an unsigned int, got {value!r:.60}")
    return value


def _struct_head(name: str, value: object) -> object:
    """First member of a ``(uo)`` / ``(so)`` struct: the uid or seat id beside its path."""
    if not (isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], str)):
        raise MalformedEventError(f"logind {name}: expected a (value, path) pair: {value!r:.60}")
    return value[0]


def _nonzero(value: int) -> int | None:
    return value or None


def _audit(name: str, value: object) -> int | None:
    audit = _uint(name, value)
    return None if audit in (0, _AUDIT_UNSET) else audit


def _timestamp(name: str, value: object) -> float | None:
    """logind's ``t`` microseconds since the epoch, 0 when unknown."""
    return (_uint(name, value, 2**64 - 1) / 1_000_000) or None


_Converter = Callable[[str, object], Any]

# Property name -> (LogindSession field, converter of the unwrapped D-Bus value).
_FIELDS: Final[Mapping[str, tuple[str, _Converter]]] = MappingProxyType(
    {
        "Id": ("id", lambda n, v: LogindSessionId(_str(n, v))),
        "User": ("uid", lambda n, v: _uint(n, _struct_head(n, v))),
        "Name": ("user", _str),
        "Seat": ("seat", lambda n, v: _str(n, _struct_head(n, v))),
        "TTY": ("tty", _str),
        "Display": ("display", _str),
        "Remote": ("remote", _bool),
        "RemoteHost": ("remote_host", _str),
        "RemoteUser": ("remote_user", _str),
        "Service": ("service", _str),
        "Type": ("type", _str),
        "Class": ("session_class", _str),
        "State": ("state", _str),
        "Active": ("active", _bool),
        "Leader": ("leader", lambda n, v: _nonzero(_uint(n, v))),
        "Audit": ("audit", _audit),
        "Timestamp": ("timestamp", _timestamp),
    }
)


def _fields(changed: Mapping[str, object]) -> dict[str, Any]:
    return {
        field: convert(name, changed[name])
        for name, (field, convert) in _FIELDS.items()
        if name in changed
    }


def session_from_properties(
    properties: Mapping[str, object], *, path: str | None = None
) -> LogindSession:
    """Build a session from Properties.GetAll's ``a{sv}`` (values as ``(signature, value)``).

    Unknown properties are ignored, missing ones take their defaults; the id comes from ``Id``
    or, failing that, from the object path.
    """
    fields = _fields(unwrap_variants(dict(properties), "Session properties"))
    if "id" not in fields:
        if path is None:
            raise MalformedEventError("Session properties: no Id and no object path")
        fields["id"] = LogindSessionId(unescape_object_path(path))
    return LogindSession(**fields)


def apply_changes(session: LogindSession, changed: Mapping[str, object]) -> LogindSession:
    """The session after a PropertiesChanged whose ``changed`` values are already unwrapped."""
    fields = _fields(changed)
    fields.pop("id", None)  # a session's id never changes; its object path names it
    return dataclasses.replace(session, **fields)


def parse_list_sessions(body: tuple[object, ...]) -> list[SessionListEntry]:
    """The reply body of Manager.ListSessions, ``(a(susso),)``."""
    if len(body) != 1 or not isinstance(body[0], list):
        raise MalformedEventError("ListSessions: expected one a(susso) array")
    entries = []
    for row in body[0]:
        if not (isinstance(row, tuple) and len(row) == 5):
            raise MalformedEventError(f"ListSessions: row {row!r:.60} is not (susso)")
        session_id, uid, user, seat, path = row
        entries.append(
            SessionListEntry(
                id=LogindSessionId(_str("session id", session_id)),
                uid=_uint("uid", uid),
                user=_str("user", user),
                seat=_str("seat", seat),
                path=_str("path", path),
            )
        )
    return entries


# -- signals --------------------------------------------------------------------------------------


def _id_and_path(member: str, body: tuple[object, ...]) -> tuple[LogindSessionId, str]:
    if len(body) != 2 or not isinstance(body[0], str) or not isinstance(body[1], str):
        raise MalformedEventError(f"{member}: expected (s id, o path), got {body!r:.80}")
    return LogindSessionId(body[0]), body[1]


def decode_signal(
    path: str, interface: str, member: str, body: tuple[object, ...]
) -> LogindEvent | None:
    """The logind event a signal carries, or ``None`` for a signal that is not one.

    ``path``, ``interface`` and ``member`` are the signal's header fields, ``body`` its decoded
    arguments. A signal that names itself as a logind one but has the wrong arguments raises
    ``MalformedEventError``.
    """
    if interface == MANAGER_INTERFACE and member == "SessionNew":
        return LogindSessionNew(*_id_and_path(member, body))
    if interface == MANAGER_INTERFACE and member == "SessionRemoved":
        return LogindSessionRemoved(*_id_and_path(member, body))
    if (
        interface == PROPERTIES_INTERFACE
        and member == "PropertiesChanged"
        and path.startswith(SESSION_PATH_PREFIX)
    ):
        if len(body) != 3:
            raise MalformedEventError(f"PropertiesChanged: expected (s, a{{sv}}, as): {body!r:.80}")
        changed_interface, changed, invalidated = body
        if changed_interface != SESSION_INTERFACE:
            return None
        if not (isinstance(invalidated, list) and all(isinstance(n, str) for n in invalidated)):
            raise MalformedEventError("PropertiesChanged: invalidated is not a list of names")
        return LogindSessionChanged(
            id=LogindSessionId(unescape_object_path(path)),
            path=path,
            changed=MappingProxyType(unwrap_variants(changed, "PropertiesChanged")),
            invalidated=tuple(invalidated),
        )
    return None


def audit_session_id(logind_id: str, audit: int | None) -> int | None:
    """The audit session a logind session is: its Audit property, else its Id when that is a
    number (logind names a session after its leader's audit id when pam_loginuid ran); None for
    "c1"-style ids, which logind gives sessions without an audit id."""
    if audit is not None:
        return audit
    if logind_id.isascii() and logind_id.isdigit() and int(logind_id) < AUDIT_ID_UNSET:
        return int(logind_id)
    return None
