"""logind messages decoded without a bus: golden wire bytes, jeepney's parser, our decoders.

The ``*_WIRE`` literals are messages as libdbus serialised them (python-dbusmock's logind
template on dbus-daemon 1.14, captured once from the socket), so the decoders are checked
against an encoder other than jeepney's.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jeepney import (  # type: ignore[import-untyped, unused-ignore]
    DBusAddress,
    HeaderFields,
    Message,
    Parser,
    new_signal,
)

from sessionio.errors import MalformedEventError
from sessionio.protocols.logind import (
    MANAGER_INTERFACE,
    MANAGER_PATH,
    PROPERTIES_INTERFACE,
    SESSION_INTERFACE,
    LogindSession,
    LogindSessionChanged,
    LogindSessionId,
    LogindSessionNew,
    LogindSessionRemoved,
    SessionListEntry,
    apply_changes,
    decode_signal,
    escape_object_path_label,
    parse_list_sessions,
    session_from_properties,
    session_path,
    unescape_object_path,
)

SESSION_NEW_WIRE = (
    b"l\x04\x01\x01.\x00\x00\x00\x0e\x00\x00\x00u\x00\x00\x00\x01\x01o\x00\x17\x00\x00\x00/"
    b"org/freedesktop/login1\x00\x02\x01s\x00\x1e\x00\x00\x00org.freedesktop.login1.Manager"
    b"\x00\x00\x03\x01s\x00\n\x00\x00\x00SessionNew\x00\x00\x00\x00\x00\x00\x08\x01g\x00"
    b"\x02so\x00\x07\x01s\x00\x04\x00\x00\x00:1.1\x00\x00\x00\x00\x01\x00\x00\x001\x00\x00"
    b"\x00!\x00\x00\x00/org/freedesktop/login1/session/1\x00"
)
SESSION_REMOVED_WIRE = (
    b"l\x04\x01\x01.\x00\x00\x00\x13\x00\x00\x00u\x00\x00\x00\x01\x01o\x00\x17\x00\x00\x00/"
    b"org/freedesktop/login1\x00\x02\x01s\x00\x1e\x00\x00\x00org.freedesktop.login1.Manager"
    b"\x00\x00\x03\x01s\x00\x0e\x00\x00\x00SessionRemoved\x00\x00\x08\x01g\x00\x02so\x00"
    b"\x07\x01s\x00\x04\x00\x00\x00:1.1\x00\x00\x00\x00\x01\x00\x00\x001\x00\x00\x00!\x00"
    b"\x00\x00/org/freedesktop/login1/session/1\x00"
)
PROPERTIES_CHANGED_WIRE = (
    b"l\x04\x01\x01`\x00\x00\x00\x10\x00\x00\x00\x95\x00\x00\x00\x01\x01o\x00!\x00\x00\x00/"
    b"org/freedesktop/login1/session/1\x00\x00\x00\x00\x00\x00\x00\x02\x01s\x00\x1f\x00\x00"
    b"\x00org.freedesktop.DBus.Properties\x00\x03\x01s\x00\x11\x00\x00\x00PropertiesChanged"
    b"\x00\x00\x00\x00\x00\x00\x00\x08\x01g\x00\x08sa{sv}as\x00\x00\x00\x07\x01s\x00\x04"
    b"\x00\x00\x00:1.1\x00\x00\x00\x00\x1e\x00\x00\x00org.freedesktop.login1.Session\x00"
    b"\x004\x00\x00\x00\x06\x00\x00\x00Active\x00\x01b\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x05\x00\x00\x00State\x00\x01s\x00\x00\x00\x00\x07\x00\x00\x00closing\x00\x00"
    b"\x00\x00\x00"
)
LIST_SESSIONS_REPLY_WIRE = (
    b"l\x02\x01\x01R\x00\x00\x00\x0c\x00\x00\x005\x00\x00\x00\x06\x01s\x00\x04\x00\x00\x00:"
    b"1.2\x00\x00\x00\x00\x05\x01u\x00\x05\x00\x00\x00\x08\x01g\x00\x08a(susso)\x00\x00\x00"
    b"\x07\x01s\x00\x04\x00\x00\x00:1.1\x00\x00\x00\x00J\x00\x00\x00\x00\x00\x00\x00\x01"
    b"\x00\x00\x001\x00\x00\x00\xe8\x03\x00\x00\x05\x00\x00\x00alice\x00\x00\x00\x05\x00"
    b"\x00\x00seat0\x00\x00\x00!\x00\x00\x00/org/freedesktop/login1/session/1\x00"
)

# Properties.GetAll of an ssh login on real logind (values as jeepney decodes a{sv}).
SSH_SESSION_PROPERTIES: dict[str, tuple[str, Any]] = {
    "Id": ("s", "3"),
    "User": ("(uo)", (1000, "/org/freedesktop/login1/user/_31000")),
    "Name": ("s", "alice"),
    "Timestamp": ("t", 1_795_262_585_250_000),
    "TimestampMonotonic": ("t", 44_771_000),
    "VTNr": ("u", 0),
    "Seat": ("(so)", ("", "/")),
    "TTY": ("s", ""),
    "Display": ("s", ""),
    "Remote": ("b", True),
    "RemoteHost": ("s", "198.51.100.7"),
    "RemoteUser": ("s", ""),
    "Service": ("s", "sshd"),
    "Desktop": ("s", ""),
    "Scope": ("s", "session-3.scope"),
    "Leader": ("u", 4242),
    "Audit": ("u", 3),
    "Type": ("s", "tty"),
    "Class": ("s", "user"),
    "Active": ("b", True),
    "State": ("s", "active"),
    "IdleHint": ("b", False),
    "LockedHint": ("b", False),
}


def parse(wire: bytes) -> Message:
    parser = Parser()
    parser.add_data(wire)
    message = parser.get_next_message()
    assert message is not None
    return message


def decode(message: Message) -> object:
    fields = message.header.fields
    return decode_signal(
        fields.get(HeaderFields.path, ""),
        fields.get(HeaderFields.interface, ""),
        fields.get(HeaderFields.member, ""),
        message.body,
    )


def test_session_new_and_removed_from_the_wire() -> None:
    path = "/org/freedesktop/login1/session/1"
    one = LogindSessionId("1")
    assert decode(parse(SESSION_NEW_WIRE)) == LogindSessionNew(one, path)
    assert decode(parse(SESSION_REMOVED_WIRE)) == LogindSessionRemoved(one, path)


def test_properties_changed_from_the_wire() -> None:
    event = decode(parse(PROPERTIES_CHANGED_WIRE))
    assert isinstance(event, LogindSessionChanged)
    assert (event.id, event.path) == ("1", "/org/freedesktop/login1/session/1")
    assert dict(event.changed) == {"Active": False, "State": "closing"}
    assert event.invalidated == ()


def test_properties_changed_on_an_escaped_path_names_the_unescaped_id() -> None:
    emitter = DBusAddress("/org/freedesktop/login1/session/_31", interface=PROPERTIES_INTERFACE)
    signal = new_signal(
        emitter,
        "PropertiesChanged",
        "sa{sv}as",
        (SESSION_INTERFACE, {"LockedHint": ("b", True)}, ["IdleHint"]),
    )
    event = decode(parse(signal.serialise(serial=7)))
    assert event == LogindSessionChanged(
        LogindSessionId("1"),
        "/org/freedesktop/login1/session/_31",
        {"LockedHint": True},
        ("IdleHint",),
    )


def test_signals_that_are_not_session_events_decode_to_none() -> None:
    user = "/org/freedesktop/login1/user/_31000"
    assert decode_signal(user, PROPERTIES_INTERFACE, "PropertiesChanged", ("x", {}, [])) is None
    session = "/org/freedesktop/login1/session/_31"
    peer: tuple[object, ...] = ("org.freedesktop.DBus.Peer", {}, [])
    assert decode_signal(session, PROPERTIES_INTERFACE, "PropertiesChanged", peer) is None
    assert decode_signal(MANAGER_PATH, MANAGER_INTERFACE, "UserNew", (1000, user)) is None
    assert decode_signal(session, SESSION_INTERFACE, "Lock", ()) is None


@pytest.mark.parametrize(
    ("interface", "member", "body"),
    [
        (MANAGER_INTERFACE, "SessionNew", ("1",)),
        (MANAGER_INTERFACE, "SessionRemoved", (1, "/p")),
        (PROPERTIES_INTERFACE, "PropertiesChanged", (SESSION_INTERFACE, {"Active": True}, [])),
        (PROPERTIES_INTERFACE, "PropertiesChanged", (SESSION_INTERFACE, {}, "IdleHint")),
        (PROPERTIES_INTERFACE, "PropertiesChanged", (SESSION_INTERFACE, {})),
    ],
)
def test_logind_signals_with_wrong_arguments_are_malformed(
    interface: str, member: str, body: tuple[object, ...]
) -> None:
    path = "/org/freedesktop/login1/session/_31"
    with pytest.raises(MalformedEventError):
        decode_signal(path, interface, member, body)


def test_list_sessions_reply_from_the_wire() -> None:
    assert parse_list_sessions(parse(LIST_SESSIONS_REPLY_WIRE).body) == [
        SessionListEntry(
            LogindSessionId("1"), 1000, "alice", "seat0", "/org/freedesktop/login1/session/1"
        )
    ]
    with pytest.raises(MalformedEventError):
        parse_list_sessions(([("1", 1000, "alice", "seat0")],))


def test_an_ssh_session_from_its_properties() -> None:
    session = session_from_properties(SSH_SESSION_PROPERTIES)
    assert session == LogindSession(
        id=LogindSessionId("3"),
        uid=1000,
        user="alice",
        seat="",
        tty="",
        display="",
        remote=True,
        remote_host="198.51.100.7",
        remote_user="",
        service="sshd",
        type="tty",
        session_class="user",
        state="active",
        active=True,
        leader=4242,
        audit=3,
        timestamp=1_795_262_585.25,
    )


def test_missing_properties_take_defaults_and_the_id_can_come_from_the_path() -> None:
    assert session_from_properties({"Id": ("s", "c3")}) == LogindSession(LogindSessionId("c3"))
    minimal = session_from_properties(
        {"Active": ("b", True)}, path="/org/freedesktop/login1/session/_31_32"
    )
    assert (minimal.id, minimal.active, minimal.audit, minimal.uid) == ("12", True, None, None)
    with pytest.raises(MalformedEventError):
        session_from_properties({"Active": ("b", True)})


def test_audit_zero_and_unset_mean_no_audit_session() -> None:
    for value in (0, 4294967295):
        props = {**SSH_SESSION_PROPERTIES, "Audit": ("u", value)}
        assert session_from_properties(props).audit is None


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("Remote", ("s", "yes")),
        ("Audit", ("b", True)),
        ("Audit", ("i", -1)),
        ("User", ("u", 1000)),
        ("Name", ("u", 7)),
        ("State", "active"),  # not a (signature, value) variant
    ],
)
def test_properties_of_the_wrong_type_are_malformed(name: str, variant: object) -> None:
    with pytest.raises(MalformedEventError):
        session_from_properties({**SSH_SESSION_PROPERTIES, name: variant})


def test_apply_changes_updates_a_session() -> None:
    before = session_from_properties(SSH_SESSION_PROPERTIES)
    after = apply_changes(before, {"Active": False, "State": "closing", "IdleHint": True})
    assert (after.active, after.state) == (False, "closing")
    assert after.remote_host == before.remote_host
    assert apply_changes(before, {"Id": "9"}).id == "3"
    with pytest.raises(MalformedEventError):
        apply_changes(before, {"Active": "no"})


@pytest.mark.parametrize(
    ("label", "escaped"),
    [("1", "_31"), ("12", "_312"), ("c1", "c1"), ("", "_"), ("a-b", "a_2db"), ("_", "_5f")],
)
def test_object_path_labels_escape_as_bus_label_escape(label: str, escaped: str) -> None:
    assert escape_object_path_label(label) == escaped
    assert unescape_object_path("/org/freedesktop/login1/session/" + escaped) == label


def test_session_path_is_what_real_logind_uses() -> None:
    assert session_path("1") == "/org/freedesktop/login1/session/_31"
    assert session_path("c2") == "/org/freedesktop/login1/session/c2"


@given(st.text())
def test_escaping_round_trips_and_yields_a_valid_path_element(label: str) -> None:
    escaped = escape_object_path_label(label)
    assert re.fullmatch(r"[A-Za-z0-9_]+", escaped)
    assert unescape_object_path(escaped) == label


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    path=st.sampled_from([MANAGER_PATH, "/org/freedesktop/login1/session/_31", "/x"]),
    interface=st.sampled_from([MANAGER_INTERFACE, PROPERTIES_INTERFACE, SESSION_INTERFACE]),
    member=st.sampled_from(["SessionNew", "SessionRemoved", "PropertiesChanged", "Lock"]),
    body=st.lists(VALUES, max_size=4).map(tuple),
)
def test_any_signal_body_decodes_or_raises_malformed(
    path: str, interface: str, member: str, body: tuple[object, ...]
) -> None:
    with contextlib.suppress(MalformedEventError):
        decode_signal(path, interface, member, body)


@given(st.dictionaries(st.sampled_from(list(SSH_SESSION_PROPERTIES)), VALUES))
def test_any_property_dict_decodes_or_raises_malformed(props: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedEventError):
        session_from_properties(props, path="/org/freedesktop/login1/session/_31")
