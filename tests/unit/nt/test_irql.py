"""Each routine above its documented IRQL raises what Driver Verifier would catch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sessionio import nt
from sessionio.errors import BugCheck, IrqlNotLessOrEqual
from sessionio.model import CallbackData
from sessionio.nt import KIRQL
from sessionio.sim import SimKernel


def _kernel() -> tuple[SimKernel, CallbackData]:
    k = SimKernel()
    k.create_session(1)
    thread = k.create_thread(k.create_process("a.exe", 1))
    return k, CallbackData.for_request(k.build_irp(thread, nt.IRP_MJ_CREATE))


ROUTINES: list[tuple[str, KIRQL, Callable[[CallbackData], object]]] = [
    ("IoGetRequestorProcess", KIRQL.DISPATCH_LEVEL, lambda d: nt.IoGetRequestorProcess(d.request)),
    (
        "IoGetRequestorProcessId",
        KIRQL.DISPATCH_LEVEL,
        lambda d: nt.IoGetRequestorProcessId(d.request),
    ),
    ("IoGetRequestorSessionId", KIRQL.APC_LEVEL, lambda d: nt.IoGetRequestorSessionId(d.request)),
    ("FltGetRequestorProcess", KIRQL.DISPATCH_LEVEL, nt.FltGetRequestorProcess),
    ("FltGetRequestorProcessId", KIRQL.DISPATCH_LEVEL, nt.FltGetRequestorProcessId),
    ("FltGetRequestorSessionId", KIRQL.APC_LEVEL, nt.FltGetRequestorSessionId),
]


@pytest.mark.parametrize(("name", "maximum", "call"), ROUTINES, ids=[r[0] for r in ROUTINES])
def test_routine_runs_up_to_its_documented_irql(
    name: str, maximum: KIRQL, call: Callable[[CallbackData], object]
) -> None:
    kernel, data = _kernel()
    for level in (KIRQL.PASSIVE_LEVEL, KIRQL.APC_LEVEL, KIRQL.DISPATCH_LEVEL):
        if level > maximum:
            continue
        with kernel.at_irql(level):
            call(data)


@pytest.mark.parametrize(("name", "maximum", "call"), ROUTINES, ids=[r[0] for r in ROUTINES])
def test_routine_above_its_irql_names_routine_required_and_current_level(
    name: str, maximum: KIRQL, call: Callable[[CallbackData], object]
) -> None:
    kernel, data = _kernel()
    above = KIRQL(maximum + 1) if maximum < KIRQL.DISPATCH_LEVEL else KIRQL.HIGH_LEVEL
    with kernel.at_irql(above), pytest.raises(IrqlNotLessOrEqual) as caught:
        call(data)
    err = caught.value
    assert (err.routine, err.required, err.current) == (name, maximum.name, above.name)
    assert name in str(err) and maximum.name in str(err) and above.name in str(err)


def test_io_get_requestor_session_id_at_dispatch_level_is_a_bug_check() -> None:
    kernel, data = _kernel()
    with kernel.at_irql(KIRQL.DISPATCH_LEVEL), pytest.raises(BugCheck) as caught:
        nt.IoGetRequestorSessionId(data.request)
    assert caught.value.code == "IRQL_NOT_LESS_OR_EQUAL"


def test_notification_routines_require_apc_level_or_below() -> None:
    kernel = SimKernel()
    info = nt.IO_SESSION_STATE_NOTIFICATION(kernel.create_driver_object(), 0x3F)
    with kernel.activate():
        with kernel.at_irql(KIRQL.DISPATCH_LEVEL):
            with pytest.raises(IrqlNotLessOrEqual, match="IoRegisterContainerNotification"):
                nt.IoRegisterContainerNotification(0, lambda *a: 0, info)
            with pytest.raises(IrqlNotLessOrEqual, match="IoGetContainerInformation"):
                nt.IoGetContainerInformation(0, None)
        with kernel.at_irql(KIRQL.APC_LEVEL):
            status, handle = nt.IoRegisterContainerNotification(0, lambda *a: 0, info)
            assert status == nt.STATUS_SUCCESS
        with kernel.at_irql(KIRQL.DISPATCH_LEVEL), pytest.raises(IrqlNotLessOrEqual):
            nt.IoUnregisterContainerNotification(handle)


def test_lowering_the_irql_through_raise_is_a_bug_check() -> None:
    kernel = SimKernel()
    kernel.raise_irql(KIRQL.DISPATCH_LEVEL)
    with pytest.raises(BugCheck, match="IRQL_NOT_GREATER_OR_EQUAL"):
        kernel.raise_irql(KIRQL.PASSIVE_LEVEL)
    kernel.lower_irql(KIRQL.PASSIVE_LEVEL)
    assert kernel.irql == KIRQL.PASSIVE_LEVEL


def test_notification_callbacks_run_at_passive_level_even_if_driver_raised_irql() -> None:
    kernel = SimKernel()
    seen: list[KIRQL] = []
    kernel.on_session_event(lambda event: seen.append(kernel.irql))
    with kernel.at_irql(KIRQL.APC_LEVEL):
        kernel.create_session(1)
    assert seen == [KIRQL.PASSIVE_LEVEL]
