"""IoRegisterContainerNotification scope and EventMask: the same tests on SimKernel and LinuxKernel.

Each test drives sessions through a driver with one interface: on the simulated kernel it calls
the kernel's session methods; on the live kernel it makes real audit sessions (children that
write their loginuid, see ``test_session_events_live``) that the session service reports when
they fork and when they exit. Both walk Created, Connected, Logon, Logoff, Disconnected,
Terminated, so every expectation below is written once, for both.

Other sessions of this machine (other tests running meanwhile) may reach an all-sessions
registration on the live kernel: those checks look at this test's sessions only, while the
per-session and mask checks look at everything the registration received.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from sessionio import nt
from sessionio.model import DeviceObject, DriverObject, FileObject, Kernel, Session
from sessionio.model.session import SessionEvent
from sessionio.nt import NTSTATUS
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S
from sessionio.runtime.linux_kernel import LinuxKernel
from sessionio.runtime.session_service import SessionService
from sessionio.sim import SimKernel
from tests.live.test_procfs_live import Children
from tests.live.test_session_events_live import (
    DEADLINE,
    NEVER,
    Recorder,
    command,
    end,
    start_session,
)

ALL = nt.IO_SESSION_STATE_ALL_EVENTS
LIFECYCLE = [1, 3, 5, 6, 4, 2]  # Created, Connected, Logon, Logoff, Disconnected, Terminated


class SessionDriver(Protocol):
    @property
    def kernel(self) -> Kernel: ...

    def new_sessions(self, count: int) -> list[int]:
        """Ids of sessions that exist but that no notification has announced yet."""

    def open(self, session_id: int) -> None:
        """Created, Connected, Logon; returns once they are delivered."""

    def close(self, session_id: int) -> None:
        """Logoff, Disconnected, Terminated; returns once they are delivered."""


class SimDriver:
    def __init__(self) -> None:
        self.sim = SimKernel()
        self._next = 1

    @property
    def kernel(self) -> Kernel:
        return self.sim

    def new_sessions(self, count: int) -> list[int]:
        first, self._next = self._next, self._next + count
        return list(range(first, first + count))

    def open(self, session_id: int) -> None:
        self.sim.create_session(session_id)
        self.sim.connect(session_id, local=True)
        self.sim.logon(session_id)

    def close(self, session_id: int) -> None:
        self.sim.logoff(session_id)
        self.sim.disconnect(session_id)
        self.sim.terminate_session(session_id)


class LiveDriver:
    """Real audit sessions; the service scans /proc only at start, so a session is announced
    when its child forks (``open``) and ends when the child exits (``close``)."""

    def __init__(self, stack: ExitStack) -> None:
        self.live = LinuxKernel()
        self._recorder = Recorder()
        self.live.on_session_event(self._recorder)
        self._children = Children()
        stack.callback(self._children.close)
        self._service = stack.enter_context(
            SessionService(self.live, audit=False, logind=False, rescan_interval=NEVER)
        )
        self._by_session: dict[int, subprocess.Popen[str]] = {}

    @property
    def kernel(self) -> Kernel:
        return self.live

    def new_sessions(self, count: int) -> list[int]:
        ids = []
        for _ in range(count):
            child, session_id = start_session(self._children, self._service)
            self._by_session[session_id] = child
            ids.append(session_id)
        return ids

    def open(self, session_id: int) -> None:
        command(self._by_session[session_id], "fork")
        self._recorder.wait_for(session_id, E.IoSessionEventLogon, DEADLINE)

    def close(self, session_id: int) -> None:
        end(self._by_session[session_id])
        self._recorder.wait_for(session_id, E.IoSessionEventTerminated, DEADLINE)


@pytest.fixture(params=["sim", "live"])
def driver(request: pytest.FixtureRequest) -> Iterator[SessionDriver]:
    if request.param == "sim":
        yield SimDriver()
        return
    with ExitStack() as stack:
        yield LiveDriver(stack)


@dataclass
class Calls:
    """An IO_SESSION_NOTIFICATION_FUNCTION recording its arguments and the container state."""

    calls: list[tuple[int, int, object, object, int]] = field(default_factory=list)
    states: list[tuple[int, nt.IO_SESSION_STATE_INFORMATION | None]] = field(default_factory=list)

    def __call__(
        self,
        SessionObject: Session,
        IoObject: object,
        Event: int,
        Context: object,
        NotificationPayload: object,
        PayloadLength: int,
    ) -> int:
        self.calls.append(
            (int(SessionObject.id), Event, Context, NotificationPayload, PayloadLength)
        )
        status, info = nt.IoGetContainerInformation(nt.IoSessionStateInformation, SessionObject)
        assert status == NTSTATUS.STATUS_SUCCESS
        self.states.append((Event, info))
        return NTSTATUS.STATUS_SUCCESS

    def events(self, sessions: list[int] | None = None) -> list[tuple[int, int]]:
        return [(s, e) for s, e, *_ in self.calls if sessions is None or s in sessions]


def register(
    kernel: Kernel, io_object: object, mask: int = ALL, context: object = None
) -> tuple[Calls, nt.ContainerNotificationHandle]:
    calls = Calls()
    info = nt.IO_SESSION_STATE_NOTIFICATION(io_object, mask, context)
    with kernel.activate():
        status, handle = nt.IoRegisterContainerNotification(
            nt.IoSessionStateNotification, calls, info
        )
    assert status == NTSTATUS.STATUS_SUCCESS and handle is not None
    return calls, handle


def live_through(driver: SessionDriver, sessions: list[int]) -> None:
    for session_id in sessions:
        driver.open(session_id)
    for session_id in sessions:
        driver.close(session_id)


def test_per_session_device_gets_only_its_sessions_events(driver: SessionDriver) -> None:
    a, b, c = driver.new_sessions(3)
    calls, _ = register(driver.kernel, DeviceObject(session_id=b), context="b only")
    live_through(driver, [a, b, c])
    assert calls.events() == [(b, event) for event in LIFECYCLE]
    assert {context for _, _, context, _, _ in calls.calls} == {"b only"}


def test_event_mask_0x4_receives_only_connected_with_its_payload(driver: SessionDriver) -> None:
    a, b = driver.new_sessions(2)
    calls, _ = register(driver.kernel, DriverObject(), mask=0x4)
    live_through(driver, [a, b])
    assert {event for _, event in calls.events()} == {nt.IoSessionEventConnected}
    assert calls.events([a, b]) == [(a, 3), (b, 3)]
    payloads = [(payload, length) for s, _, _, payload, length in calls.calls if s == a]
    assert payloads == [(nt.IO_SESSION_CONNECT_INFO(SessionId=a, LocalSession=True), 8)]


@pytest.mark.parametrize("kind", ["file", "driver", "device_without_session", "device_session_0"])
def test_file_driver_and_non_session_device_objects_get_all_sessions(
    driver: SessionDriver, kind: str
) -> None:
    io_object = {
        "file": FileObject("\\Device\\x"),
        "driver": DriverObject(),
        "device_without_session": DeviceObject(),
        "device_session_0": DeviceObject(session_id=0),
    }[kind]
    a, b = driver.new_sessions(2)
    calls, _ = register(driver.kernel, io_object, mask=0x1 | 0x2)
    live_through(driver, [a, b])
    assert calls.events([a, b]) == [(a, 1), (b, 1), (a, 2), (b, 2)]


def test_container_information_reports_each_state_set_before_dispatch(
    driver: SessionDriver,
) -> None:
    (a,) = driver.new_sessions(1)
    calls, _ = register(driver.kernel, DeviceObject(session_id=a))
    live_through(driver, [a])
    info = nt.IO_SESSION_STATE_INFORMATION
    assert calls.states == [
        (1, info(a, S.IoSessionStateCreated, False)),
        (3, info(a, S.IoSessionStateConnected, True)),
        (5, info(a, S.IoSessionStateLoggedOn, True)),
        (6, info(a, S.IoSessionStateLoggedOff, True)),
        (4, info(a, S.IoSessionStateDisconnected, False)),
        (2, info(a, S.IoSessionStateTerminated, False)),
    ]


def test_unregistered_callbacks_hear_nothing_more(driver: SessionDriver) -> None:
    a, b = driver.new_sessions(2)
    calls, handle = register(driver.kernel, DeviceObject(session_id=a))
    second, _ = register(driver.kernel, DeviceObject(session_id=b))
    driver.open(a)
    driver.open(b)
    with driver.kernel.activate():
        nt.IoUnregisterContainerNotification(handle)
    driver.close(a)
    driver.close(b)
    assert calls.events() == [(a, 1), (a, 3), (a, 5)]
    assert second.events() == [(b, event) for event in LIFECYCLE]


def test_on_session_event_scope_and_events_filter(driver: SessionDriver) -> None:
    a, b = driver.new_sessions(2)
    heard: list[SessionEvent] = []
    driver.kernel.on_session_event(
        heard.append, session=b, events=[E.IoSessionEventLogon, E.IoSessionEventTerminated]
    )
    live_through(driver, [a, b])
    assert [(e.session_id, e.event) for e in heard] == [
        (b, E.IoSessionEventLogon),
        (b, E.IoSessionEventTerminated),
    ]
