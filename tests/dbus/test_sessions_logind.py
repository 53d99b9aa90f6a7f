"""``sessionio sessions`` with python-dbusmock's logind on a private system bus.

The audit sessions are real (children that write /proc/self/loginuid; root), and the mock
describes them under the same ids, as logind does when pam_loginuid ran. The command runs as
a subprocess with DBUS_SYSTEM_BUS_ADDRESS pointed at the private bus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sessionio.runtime.linux_kernel import user_name
from sessionio.testing.logind import LogindMock, PrivateSystemBus
from tests.live.test_procfs_live import LOGIN_CHILD, Children

NOBODYS_SESSION = 4_000_000_000  # an audit id no process has: logind knows it, /proc does not


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def logind() -> Iterator[LogindMock]:
    with LogindMock() as mock:
        yield mock


def sessions_on(address: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionio", "sessions", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address},
        timeout=60,
        check=False,
    )


def rows_by_id(result: subprocess.CompletedProcess[str]) -> dict[int, dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}


def audit_sessions(children: Children, count: int) -> list[tuple[int, int]]:
    """``count`` real audit sessions (loginuid 1000, 1001...): [(child pid, session id)]."""
    started = [children.start(LOGIN_CHILD, str(1000 + i), "wait") for i in range(count)]
    return [(child.pid, int(children.read_line(child))) for child in started]


def test_sessions_shows_what_logind_says_about_the_audit_sessions(
    children: Children, logind: LogindMock
) -> None:
    (remote_pid, remote), (local_pid, local), (unknown_pid, unknown) = audit_sessions(children, 3)
    logind.add_session(str(remote), uid=1000, user="alice")
    logind.set_session_properties(
        str(remote),
        Remote=True,
        RemoteHost="198.51.100.7",
        Type="tty",
        Class="user",
        State="active",
        Leader=remote_pid,
    )
    logind.add_session(str(local), uid=1001, user="bob", active=False)
    # The template's Leader is pid 1, which is not in this session: /proc's oldest wins.
    logind.set_session_properties(str(local), Type="x11", State="closing", TTY="tty2")
    logind.add_session("c5", uid=1002, user="carol")  # no audit session: no row
    logind.add_session(str(NOBODYS_SESSION), uid=1003, user="dave")
    logind.set_session_properties(str(NOBODYS_SESSION), Type="wayland", State="online")

    rows = rows_by_id(sessions_on(logind.address, "--json"))

    row = rows[remote]
    assert (row["remote"], row["remote_host"], row["type"], row["class"], row["state"]) == (
        True,
        "198.51.100.7",
        "tty",
        "user",
        "active",
    )
    assert (row["leader"], row["processes"], row["logind"]) == (remote_pid, 1, True)
    assert (row["uid"], row["user"]) == (1000, user_name(1000))  # from /proc's loginuid
    row = rows[local]
    assert (row["remote"], row["remote_host"], row["type"], row["state"], row["tty"]) == (
        False,
        None,
        "x11",
        "closing",
        "tty2",
    )
    assert (row["leader"], row["logind"]) == (local_pid, True)
    row = rows[unknown]  # only /proc knows it
    assert (row["logind"], row["state"], row["type"], row["remote"]) == (
        False,
        "online",
        None,
        None,
    )
    assert (row["leader"], row["processes"]) == (unknown_pid, 1)
    row = rows[NOBODYS_SESSION]
    assert (row["processes"], row["type"], row["state"], row["logind"]) == (
        0,
        "wayland",
        "online",
        True,
    )
    assert all(isinstance(session_id, int) for session_id in rows)


def test_the_human_table_shows_the_remote_host(children: Children, logind: LogindMock) -> None:
    ((pid, session),) = audit_sessions(children, 1)
    logind.add_session(str(session), uid=1000, user="alice")
    logind.set_session_properties(str(session), Remote=True, RemoteHost="bastion.example.org")
    result = sessions_on(logind.address)
    assert result.returncode == 0, result.stderr
    (line,) = (ln for ln in result.stdout.splitlines() if ln.split()[0] == str(session))
    assert line.split()[2:5] == [str(pid), "bastion.example.org", "active"]


def test_a_logind_that_fails_is_reported_and_proc_still_answers(
    children: Children, logind: LogindMock
) -> None:
    ((pid, session),) = audit_sessions(children, 1)
    logind.add_method(
        "ListSessions",
        "",
        "a(susso)",
        "raise dbus.exceptions.DBusException('no', name='org.freedesktop.login1.Refused')",
    )
    result = sessions_on(logind.address, "--json")
    assert "org.freedesktop.login1.Refused" in result.stderr
    row = rows_by_id(result)[session]
    assert (row["leader"], row["logind"], row["state"]) == (pid, False, "online")


def test_a_bus_without_logind_is_no_logind(children: Children) -> None:
    ((pid, session),) = audit_sessions(children, 1)
    with PrivateSystemBus() as bus:
        result = sessions_on(bus.address, "--json")
    assert result.stderr == ""
    rows = rows_by_id(result)
    assert (rows[session]["leader"], rows[session]["logind"]) == (pid, False)
    assert not any(row["logind"] for row in rows.values())
