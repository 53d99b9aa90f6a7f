"""The filter manager: altitudes, call order, COMPLETE, post-operations."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sessionio import nt
from sessionio.errors import RegistrationError, UsageError
from sessionio.model import CallbackData
from sessionio.nt import FLT_POSTOP_CALLBACK_STATUS as POST
from sessionio.nt import FLT_PREOP_CALLBACK_STATUS as PRE
from sessionio.nt import NTSTATUS
from sessionio.sim import SimKernel


@dataclass
class Tracing:
    """A minifilter that logs its calls into a shared list and returns a chosen status."""

    name: str
    log: list[str]
    result: PRE = PRE.FLT_PREOP_SUCCESS_WITH_CALLBACK
    seen_status: list[int] = field(default_factory=list)

    def pre_operation(self, data: CallbackData) -> PRE | tuple[PRE, object]:
        self.log.append(f"pre:{self.name}")
        if self.result == PRE.FLT_PREOP_COMPLETE:
            return data.deny()
        return self.result, f"ctx-{self.name}"

    def post_operation(self, data: CallbackData, context: object) -> POST:
        self.log.append(f"post:{self.name}:{context}")
        self.seen_status.append(data.IoStatus.Status)
        return POST.FLT_POSTOP_FINISHED_PROCESSING


def _kernel() -> SimKernel:
    kernel = SimKernel()
    kernel.create_session(2)
    return kernel


def test_three_filters_pre_from_highest_down_post_from_lowest_up() -> None:
    kernel = _kernel()
    log: list[str] = []
    kernel.filters.register_filter(Tracing("activity-monitor", log), "385100")
    kernel.filters.register_filter(Tracing("antivirus", log), 328000)
    kernel.filters.register_filter(Tracing("encryption", log), "141000.5")
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    status = kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_CREATE, "C:\\x"))
    assert status == NTSTATUS.STATUS_SUCCESS
    assert log == [
        "pre:activity-monitor",
        "pre:antivirus",
        "pre:encryption",
        "post:encryption:ctx-encryption",
        "post:antivirus:ctx-antivirus",
        "post:activity-monitor:ctx-activity-monitor",
    ]


def test_complete_with_access_denied_denies_and_stops_the_filters_below() -> None:
    kernel = _kernel()
    log: list[str] = []
    top = Tracing("top", log)
    kernel.filters.register_filter(top, 300000)
    kernel.filters.register_filter(Tracing("policy", log, PRE.FLT_PREOP_COMPLETE), 200000)
    kernel.filters.register_filter(Tracing("below", log), 100000)
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    status = kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_CREATE, "C:\\secret"))
    assert status == NTSTATUS.STATUS_ACCESS_DENIED
    # The filter below never sees it; the completing filter gets no post; the one above does.
    assert log == ["pre:top", "pre:policy", "post:top:ctx-top"]
    assert top.seen_status == [NTSTATUS.STATUS_ACCESS_DENIED]


def test_success_no_callback_skips_that_filters_post_operation() -> None:
    kernel = _kernel()
    log: list[str] = []
    kernel.filters.register_filter(Tracing("a", log, PRE.FLT_PREOP_SUCCESS_NO_CALLBACK), 2)
    kernel.filters.register_filter(Tracing("b", log), 1)
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_READ))
    assert log == ["pre:a", "pre:b", "post:b:ctx-b"]


def test_post_only_filter_is_called_as_if_it_asked_for_a_callback() -> None:
    kernel = _kernel()
    seen: list[str] = []

    def audit(data: CallbackData, context: object) -> POST:
        seen.append(data.path)
        return POST.FLT_POSTOP_FINISHED_PROCESSING

    kernel.filters.register("audit", 1000, post=audit)
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_WRITE, "C:\\log"))
    assert seen == ["C:\\log"]


def test_final_status_comes_from_the_file_system_below_all_filters() -> None:
    kernel = _kernel()
    kernel.set_file_status("C:\\missing", NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND)
    log: list[str] = []
    tracer = Tracing("t", log)
    kernel.filters.register_filter(tracer, 1)
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    assert kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_CREATE, "C:\\missing")) == (
        NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND
    )
    assert tracer.seen_status == [NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND]


def test_filter_limited_to_some_operations_sees_only_them() -> None:
    kernel = _kernel()
    log: list[str] = []
    kernel.filters.register_filter(Tracing("creates", log), 1, operations=[nt.IRP_MJ_CREATE])
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_READ))
    assert log == []
    kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_CREATE))
    assert log == ["pre:creates", "post:creates:ctx-creates"]


def test_altitudes_are_unique() -> None:
    kernel = SimKernel()
    kernel.filters.register_filter(Tracing("a", []), "320000")
    with pytest.raises(RegistrationError, match="already taken by filter 'a'"):
        kernel.filters.register_filter(Tracing("b", []), 320000)
    with pytest.raises(RegistrationError, match="not a decimal"):
        kernel.filters.register_filter(Tracing("c", []), "high")


def test_unregistered_filter_is_no_longer_called() -> None:
    kernel = _kernel()
    log: list[str] = []
    registration = kernel.filters.register_filter(Tracing("a", log), 1)
    kernel.filters.unregister(registration)
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_CREATE))
    assert log == []
    with pytest.raises(RegistrationError):
        kernel.filters.unregister(registration)


def test_unsupported_preop_status_is_refused_loudly() -> None:
    kernel = _kernel()
    kernel.filters.register("pending", 1, pre=lambda data: PRE.FLT_PREOP_PENDING)
    thread = kernel.create_thread(kernel.create_process("a.exe", 2))
    with pytest.raises(UsageError, match="FLT_PREOP_PENDING"):
        kernel.issue(kernel.build_irp(thread, nt.IRP_MJ_CREATE))


def test_filter_denying_session_2_creates_with_the_routines() -> None:
    """The README's tour: deny IRP_MJ_CREATE to processes of session 2."""
    kernel = SimKernel()
    kernel.create_session(1)
    kernel.create_session(2)

    def deny_session_2(data: CallbackData) -> PRE:
        status, session_id = nt.FltGetRequestorSessionId(data)
        if nt.nt_success(status) and session_id == 2:
            return data.complete(NTSTATUS.STATUS_ACCESS_DENIED)
        return PRE.FLT_PREOP_SUCCESS_NO_CALLBACK

    kernel.filters.register(
        "no-session-2", 370000, pre=deny_session_2, operations=[nt.IRP_MJ_CREATE]
    )
    in_1 = kernel.create_thread(kernel.create_process("a.exe", 1))
    in_2 = kernel.create_thread(kernel.create_process("b.exe", 2))
    assert kernel.issue(kernel.build_irp(in_1, nt.IRP_MJ_CREATE)) == NTSTATUS.STATUS_SUCCESS
    assert kernel.issue(kernel.build_irp(in_2, nt.IRP_MJ_CREATE)) == NTSTATUS.STATUS_ACCESS_DENIED
    assert kernel.issue(kernel.build_irp(in_2, nt.IRP_MJ_READ)) == NTSTATUS.STATUS_SUCCESS
