"""IO_SESSION_NOTIFICATION_FUNCTION (003), IoRegisterContainerNotification et al.: vectors 5, 6."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sessionio import nt
from sessionio.model import Session
from sessionio.nt import NTSTATUS
from sessionio.sim import SimKernel

ALL = nt.IO_SESSION_STATE_ALL_EVENTS


@dataclass
class Recorder:
    """A notification callback that records its six arguments."""

    calls: list[tuple[Session, object, int, object, object, int]] = field(default_factory=list)
    returns: int = NTSTATUS.STATUS_SUCCESS

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
            (SessionObject, IoObject, Event, Context, NotificationPayload, PayloadLength)
        )
        return self.returns

    @property
    def events(self) -> list[tuple[int, int]]:
        return [(int(c[0].id), c[2]) for c in self.calls]


def _register(
    kernel: SimKernel, io_object: object, mask: int = ALL, context: object = None
) -> tuple[Recorder, nt.ContainerNotificationHandle]:
    recorder = Recorder()
    info = nt.IO_SESSION_STATE_NOTIFICATION(io_object, mask, context)
    with kernel.activate():
        status, handle = nt.IoRegisterContainerNotification(
            nt.IoSessionStateNotification, recorder, info
        )
    assert status == NTSTATUS.STATUS_SUCCESS and handle is not None
    return recorder, handle


def test_callback_gets_session_object_io_object_event_and_context() -> None:
    kernel = SimKernel()
    driver = kernel.create_driver_object()
    recorder, _ = _register(kernel, driver, context="ctx")
    kernel.create_session(1)
    [(session, io_object, event, context, payload, length)] = recorder.calls
    assert isinstance(session, Session) and session.id == 1
    assert io_object is driver
    assert event == nt.IoSessionEventCreated == 1
    assert context == "ctx"
    assert (payload, length) == (None, 0)


def test_connected_payload_is_io_session_connect_info_within_max_payload_size() -> None:
    kernel = SimKernel()
    recorder, _ = _register(kernel, kernel.create_driver_object())
    kernel.create_session(4)
    kernel.connect(4, local=False)
    _, _, event, _, payload, length = recorder.calls[-1]
    assert event == nt.IoSessionEventConnected
    assert payload == nt.IO_SESSION_CONNECT_INFO(SessionId=4, LocalSession=False)
    assert length == nt.IO_SESSION_CONNECT_INFO.sizeof == 8
    assert length <= nt.IO_SESSION_MAX_PAYLOAD_SIZE == 256
    assert isinstance(payload, nt.IO_SESSION_CONNECT_INFO)
    assert payload.pack() == b"\x04\x00\x00\x00\x00\x00\x00\x00"


def test_local_console_connect_reports_local_session_true() -> None:
    kernel = SimKernel()
    recorder, _ = _register(kernel, kernel.create_driver_object())
    kernel.create_session(1)
    kernel.connect(1, local=True)
    assert recorder.calls[-1][4] == nt.IO_SESSION_CONNECT_INFO(1, True)


def test_bad_notification_class_is_invalid_parameter_1() -> None:
    kernel = SimKernel()
    info = nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), ALL)
    with kernel.activate():
        assert nt.IoRegisterContainerNotification(1, Recorder(), info) == (
            NTSTATUS.STATUS_INVALID_PARAMETER_1,
            None,
        )


def test_length_31_is_invalid_parameter_4() -> None:
    kernel = SimKernel()
    info = nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), ALL)
    with kernel.activate():
        status, _ = nt.IoRegisterContainerNotification(0, Recorder(), info, 31)
    assert status == NTSTATUS.STATUS_INVALID_PARAMETER_4


def test_bad_size_field_is_invalid_parameter_4() -> None:
    kernel = SimKernel()
    info = nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), ALL, Size=20)
    with kernel.activate():
        status, _ = nt.IoRegisterContainerNotification(0, Recorder(), info)
    assert status == NTSTATUS.STATUS_INVALID_PARAMETER_4


def test_io_object_of_another_type_is_invalid_parameter_3() -> None:
    kernel = SimKernel()
    info = nt.IO_SESSION_STATE_NOTIFICATION(object(), ALL)
    with kernel.activate():
        status, _ = nt.IoRegisterContainerNotification(0, Recorder(), info)
    assert status == NTSTATUS.STATUS_INVALID_PARAMETER_3


def test_second_registration_of_same_io_object_is_already_committed() -> None:
    kernel = SimKernel()
    device = kernel.create_device_object()
    _register(kernel, device)
    info = nt.IO_SESSION_STATE_NOTIFICATION(device, ALL)
    with kernel.activate():
        status, handle = nt.IoRegisterContainerNotification(0, Recorder(), info)
    assert (status, handle) == (NTSTATUS.STATUS_ALREADY_COMMITTED, None)


def test_io_object_can_register_again_after_unregistering() -> None:
    kernel = SimKernel()
    device = kernel.create_device_object()
    first, handle = _register(kernel, device)
    with kernel.activate():
        nt.IoUnregisterContainerNotification(handle)
    second, _ = _register(kernel, device)
    kernel.create_session(1)
    assert first.calls == [] and second.events == [(1, nt.IoSessionEventCreated)]


def test_unregister_of_unknown_handle_is_a_no_op() -> None:
    kernel = SimKernel()
    recorder, handle = _register(kernel, kernel.create_driver_object())
    with kernel.activate():
        nt.IoUnregisterContainerNotification(object())
        nt.IoUnregisterContainerNotification(None)
        nt.IoUnregisterContainerNotification(handle)
        nt.IoUnregisterContainerNotification(handle)  # twice: still nothing
    kernel.create_session(1)
    assert recorder.calls == []


def test_event_mask_0x4_receives_only_connected() -> None:
    kernel = SimKernel()
    recorder, _ = _register(kernel, kernel.create_driver_object(), mask=0x4)
    kernel.create_session(1)
    kernel.connect(1)
    kernel.logon(1)
    kernel.terminate_session(1)
    assert [e for _, e in recorder.events] == [nt.IoSessionEventConnected]


def test_event_mask_zero_never_fires_and_is_not_validated() -> None:
    kernel = SimKernel()
    recorder, _ = _register(kernel, kernel.create_driver_object(), mask=0)
    kernel.create_session(1)
    kernel.terminate_session(1)
    assert recorder.calls == []


def test_per_session_device_gets_only_its_sessions_events() -> None:
    kernel = SimKernel()
    recorder, _ = _register(kernel, kernel.create_device_object(session_id=2))
    for sid in (1, 2, 3):
        kernel.create_session(sid)
        kernel.connect(sid)
    assert recorder.events == [(2, nt.IoSessionEventCreated), (2, nt.IoSessionEventConnected)]


@pytest.mark.parametrize("kind", ["file", "driver", "device_without_session", "device_session_0"])
def test_file_driver_and_non_session_device_objects_get_all_sessions(kind: str) -> None:
    kernel = SimKernel()
    io_object: object = {
        "file": kernel.create_file_object("\\Device\\x"),
        "driver": kernel.create_driver_object(),
        "device_without_session": kernel.create_device_object(),
        "device_session_0": kernel.create_device_object(session_id=0),
    }[kind]
    recorder, _ = _register(kernel, io_object)
    kernel.create_session(1)
    kernel.create_session(2)
    assert recorder.events == [(1, 1), (2, 1)]


def test_callback_return_value_is_ignored() -> None:
    kernel = SimKernel()
    recorder, _ = _register(kernel, kernel.create_driver_object())
    recorder.returns = NTSTATUS.STATUS_UNSUCCESSFUL
    kernel.create_session(1)
    kernel.connect(1)
    assert len(recorder.calls) == 2
    assert kernel.session(1).state == nt.IoSessionStateConnected


def test_registration_copies_the_structure() -> None:
    kernel = SimKernel()
    recorder = Recorder()
    info = nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), ALL, "before")
    with kernel.activate():
        nt.IoRegisterContainerNotification(0, recorder, info)
    info.EventMask = 0
    info.Context = "after"
    kernel.create_session(1)
    assert recorder.calls[0][3] == "before"


# -- IoGetContainerInformation (vector 6) -------------------------------------------------------


def test_container_information_reports_the_state_set_before_dispatch() -> None:
    kernel = SimKernel()
    answers: list[tuple[NTSTATUS, nt.IO_SESSION_STATE_INFORMATION | None]] = []

    def callback(session: Session, *rest: object) -> int:
        answers.append(nt.IoGetContainerInformation(nt.IoSessionStateInformation, session, 12))
        return 0

    with kernel.activate():
        nt.IoRegisterContainerNotification(
            0, callback, nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), ALL)
        )
    kernel.create_session(5)
    kernel.connect(5, local=False)
    assert answers == [
        (0, nt.IO_SESSION_STATE_INFORMATION(5, nt.IoSessionStateCreated, False)),
        (0, nt.IO_SESSION_STATE_INFORMATION(5, nt.IoSessionStateConnected, False)),
    ]


def test_container_information_local_session_only_while_connected() -> None:
    kernel = SimKernel()
    session = kernel.create_session(1, local=True)
    with kernel.activate():
        assert nt.IoGetContainerInformation(0, session)[1] == nt.IO_SESSION_STATE_INFORMATION(
            1, nt.IoSessionStateCreated, False
        )
        kernel.connect(1)
        kernel.logon(1)
        status, info = nt.IoGetContainerInformation(0, session)
    assert status == NTSTATUS.STATUS_SUCCESS
    assert info == nt.IO_SESSION_STATE_INFORMATION(1, nt.IoSessionStateLoggedOn, True)
    assert info.pack() == b"\x01\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00"


def test_container_information_buffer_11_is_invalid_parameter_4() -> None:
    kernel = SimKernel()
    session = kernel.create_session(1)
    with kernel.activate():
        assert nt.IoGetContainerInformation(0, session, 11) == (
            NTSTATUS.STATUS_INVALID_PARAMETER_4,
            None,
        )


def test_container_information_class_1_is_invalid_parameter_1() -> None:
    kernel = SimKernel()
    session = kernel.create_session(1)
    with kernel.activate():
        assert nt.IoGetContainerInformation(1, session)[0] == NTSTATUS.STATUS_INVALID_PARAMETER_1


def test_container_information_without_container_is_invalid_parameter_2() -> None:
    kernel = SimKernel()
    with kernel.activate():
        assert nt.IoGetContainerInformation(0, None)[0] == NTSTATUS.STATUS_INVALID_PARAMETER_2
