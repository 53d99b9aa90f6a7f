"""LogindClient against python-dbusmock's logind template on a private system bus."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionio.errors import BrokenResourceError, ClosedResourceError, SessionServiceError
from sessionio.linux.logind import LogindClient, LogindSubscription
from sessionio.protocols.logind import (
    LogindSession,
    LogindSessionChanged,
    LogindSessionId,
    LogindSessionNew,
    LogindSessionRemoved,
)
from sessionio.testing.logind import LogindMock, PrivateSystemBus

TIMEOUT = 5.0  # an upper bound for a signal to arrive, never an expectation of speed


@pytest.fixture
def logind() -> Iterator[LogindMock]:
    with LogindMock() as mock:
        yield mock


@pytest.fixture
def client(logind: LogindMock) -> Iterator[LogindClient]:
    connected = LogindClient.connect(logind.address)
    assert connected is not None
    with connected:
        yield connected


@pytest.fixture
def subscription(client: LogindClient) -> Iterator[LogindSubscription]:
    with client.subscribe() as subscribed:
        yield subscribed


def test_list_sessions_returns_sessions_as_set(logind: LogindMock, client: LogindClient) -> None:
    logind.add_session("1", seat="seat0", uid=1000, user="alice", active=True)
    logind.add_session("c2", seat="seat0", uid=1001, user="bob", active=False)
    logind.set_session_properties(
        "1",
        Remote=True,
        RemoteHost="198.51.100.7",
        Service="sshd",
        Type="tty",
        Audit=1,
        Leader=4242,
    )
    logind.set_session_properties("c2", Type="x11", Display=":10", State="closing")

    sessions: dict[str, LogindSession] = {s.id: s for s in client.list_sessions()}

    assert set(sessions) == {"1", "c2"}
    alice = sessions["1"]
    assert (alice.uid, alice.user, alice.seat) == (1000, "alice", "seat0")
    assert (alice.remote, alice.remote_host, alice.service, alice.type) == (
        True,
        "198.51.100.7",
        "sshd",
        "tty",
    )
    assert (alice.state, alice.active, alice.audit, alice.leader) == ("active", True, 1, 4242)
    bob = sessions["c2"]
    assert (bob.uid, bob.user, bob.remote, bob.remote_host) == (1001, "bob", False, "")
    assert (bob.type, bob.display, bob.state, bob.active) == ("x11", ":10", "closing", False)
    assert bob.audit is None  # the template's Audit is 0: no audit session


def test_session_by_id_and_by_pid(logind: LogindMock, client: LogindClient) -> None:
    logind.add_session("7", uid=1000, user="alice")
    logind.set_sessions_by_pid({4242: "7"})
    by_id = client.session("7")
    assert isinstance(by_id, LogindSession)
    assert (by_id.id, by_id.user) == ("7", "alice")
    assert client.session_by_pid(4242) == by_id
    assert client.session_by_pid(4243) is None
    assert client.session("8") is None


def test_signals_arrive_through_the_subscription(
    logind: LogindMock, client: LogindClient, subscription: LogindSubscription
) -> None:
    path = logind.add_session("3", uid=1000, user="alice")
    logind.emit_session_new("3")
    logind.set_session_properties("3", Active=False, State="closing")
    logind.remove_session("3")

    three = LogindSessionId("3")
    assert subscription.recv(TIMEOUT) == LogindSessionNew(three, path)
    changed = subscription.recv(TIMEOUT)
    assert isinstance(changed, LogindSessionChanged)
    assert (changed.id, changed.path) == ("3", path)
    assert dict(changed.changed) == {"Active": False, "State": "closing"}
    assert subscription.recv(TIMEOUT) == LogindSessionRemoved(three, path)
    assert subscription.recv(0) is None
    assert client.session("3") is None
    assert client.list_sessions() == []


def test_dbus_errors_carry_their_name(logind: LogindMock, client: LogindClient) -> None:
    with pytest.raises(SessionServiceError) as caught:
        client.session_by_pid(1)  # the template has no GetSessionByPID
    assert caught.value.dbus_error_name == "org.freedesktop.DBus.Error.UnknownMethod"
    logind.add_method(
        "ListSessions",
        "",
        "a(susso)",
        "raise dbus.exceptions.DBusException('no', name='org.freedesktop.login1.Refused')",
    )
    with pytest.raises(SessionServiceError) as caught:
        client.list_sessions()
    assert caught.value.dbus_error_name == "org.freedesktop.login1.Refused"


def test_a_closed_client_refuses_calls(client: LogindClient) -> None:
    client.close()
    with pytest.raises(ClosedResourceError):
        client.list_sessions()


def test_the_bus_going_away_breaks_the_subscription() -> None:
    with LogindMock() as logind:
        subscription = LogindSubscription.open(logind.address)
        assert subscription is not None
    with subscription, pytest.raises(BrokenResourceError):
        subscription.recv(TIMEOUT)


def test_connect_is_none_on_a_bus_without_logind() -> None:
    with PrivateSystemBus() as bus:
        assert LogindClient.connect(bus.address) is None
        assert LogindSubscription.open(bus.address) is None


def test_connect_honours_the_environment_and_is_none_without_a_bus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logind: LogindMock
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", logind.address)
    found = LogindClient.connect()
    assert found is not None
    found.close()

    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'absent'}")
    assert LogindClient.connect() is None

    with socket.socket(socket.AF_UNIX) as bound:  # a socket file nobody listens on
        bound.bind(str(tmp_path / "refusing"))
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'refusing'}")
        assert LogindClient.connect() is None

    with socket.socket(socket.AF_UNIX) as silent:  # accepts, then never authenticates us
        silent.bind(str(tmp_path / "silent"))
        silent.listen()
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'silent'}")
        assert LogindClient.connect(timeout=0.2) is None

    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "tcp:host=localhost,port=1")
    assert LogindClient.connect() is None


def test_the_harness_refuses_properties_logind_would_not_change(logind: LogindMock) -> None:
    logind.add_session("4")
    with pytest.raises(ValueError, match="Id"):
        logind.set_session_properties("4", Id="5")
    with pytest.raises(TypeError, match="Remote"):
        logind.set_session_properties("4", Remote="yes")
    with pytest.raises(TypeError, match="Colour"):
        logind.set_session_properties("4", Colour="blue")
    with pytest.raises(ValueError, match="session id"):
        logind.add_session("a/b")
