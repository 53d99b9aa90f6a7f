"""The same script always produces the same objects and events, in the same order."""

from __future__ import annotations

from sessionio import nt
from sessionio.model import SessionEvent
from sessionio.sim import SimKernel


def _script() -> tuple[list[SessionEvent], list[tuple[int, int, int]]]:
    kernel = SimKernel()
    seen: list[tuple[int, int, int]] = []

    def callback(session: object, io: object, event: int, ctx: object, p: object, n: int) -> int:
        seen.append((int(getattr(session, "id", -99)), event, n))
        return 0

    with kernel.activate():
        nt.IoRegisterContainerNotification(
            0,
            callback,
            nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), 0xFFFFFFFF),
        )
    for sid in (1, 2):
        kernel.create_session(sid, local=sid == 1)
        kernel.connect(sid)
    kernel.logon(1)
    kernel.disconnect(2)
    kernel.logon(2)
    kernel.logoff(2)
    kernel.terminate_session(2)
    process = kernel.create_process("x.exe", 1)
    seen.append((int(process.pid), -1, 0))
    return kernel.history, seen


def test_same_script_same_events_same_order() -> None:
    first, second = _script(), _script()
    assert first == second
    history, seen = first
    assert [e.sequence for e in history] == list(range(1, len(history) + 1))
    assert [(e.session_id, e.name) for e in history] == [
        (1, "created"), (1, "connected"), (2, "created"), (2, "connected"), (1, "logon"),
        (2, "disconnected"), (2, "logon"), (2, "logoff"), (2, "terminated"),
    ]  # fmt: skip
    assert seen[-1][0] == 8  # pids count up from 8 in steps of 4, System is 4


def test_pythonic_subscription_gets_values_and_cancel_stops_it() -> None:
    kernel = SimKernel()
    seen: list[SessionEvent] = []
    subscription = kernel.on_session_event(
        seen.append, events=[nt.IO_SESSION_EVENT.IoSessionEventCreated]
    )
    kernel.create_session(1)
    subscription.cancel()
    subscription.cancel()
    kernel.create_session(2)
    assert [(e.session_id, e.name, e.synthesized) for e in seen] == [(1, "created", False)]


def test_a_raising_callback_does_not_keep_the_event_from_later_registrations() -> None:
    kernel = SimKernel()
    later: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("driver bug")

    kernel.on_session_event(broken)
    kernel.on_session_event(later.append)
    try:
        kernel.create_session(1)
    except ExceptionGroup as group:
        assert [str(e) for e in group.exceptions] == ["driver bug"]
    else:
        raise AssertionError("the callback's exception was swallowed")
    assert [e.name for e in later] == ["created"]
    assert kernel.session(1).state == kernel.history[0].state
