"""The requestor routines against the reference pages and the reference's test vectors."""

from __future__ import annotations

import pytest

from sessionio import nt
from sessionio.errors import BugCheck
from sessionio.model import NO_SESSION, CallbackData
from sessionio.nt import NTSTATUS
from sessionio.sim import SYSTEM_PID, SimKernel


@pytest.fixture
def kernel() -> SimKernel:
    k = SimKernel()
    k.create_session(1)
    k.create_session(2)
    k.create_session(3)
    return k


# -- FltGetRequestorSessionId (000) -------------------------------------------------------------


def test_flt_session_of_the_requesting_process_with_status_success(kernel: SimKernel) -> None:
    thread = kernel.create_thread(kernel.create_process("notepad.exe", 3))
    data = CallbackData.for_request(kernel.build_irp(thread, nt.IRP_MJ_CREATE, "C:\\a.txt"))
    assert nt.FltGetRequestorSessionId(data) == (NTSTATUS.STATUS_SUCCESS, 3)


def test_flt_no_session_gives_minus_one_with_status_success(kernel: SimKernel) -> None:
    data = CallbackData.for_request(kernel.build_irp(kernel.system_thread, nt.IRP_MJ_WRITE))
    status, session_id = nt.FltGetRequestorSessionId(data)
    assert status == NTSTATUS.STATUS_SUCCESS
    assert session_id == -1 == NO_SESSION


def test_flt_no_thread_gives_status_unsuccessful(kernel: SimKernel) -> None:
    data = CallbackData.for_request(kernel.build_irp(None, nt.IRP_MJ_READ))
    status, _invalid = nt.FltGetRequestorSessionId(data)
    assert status == NTSTATUS.STATUS_UNSUCCESSFUL == 0xC0000001
    assert not nt.nt_success(status)


def test_flt_session_is_the_owning_processes_even_when_attached(kernel: SimKernel) -> None:
    thread = kernel.create_thread(kernel.create_process("a.exe", 1))
    kernel.attach(thread, kernel.create_process("b.exe", 2))
    data = CallbackData.for_request(kernel.build_irp(thread, nt.IRP_MJ_CREATE))
    assert nt.FltGetRequestorSessionId(data) == (NTSTATUS.STATUS_SUCCESS, 1)


def test_flt_requestor_process_is_the_currently_attached_process(kernel: SimKernel) -> None:
    owner = kernel.create_process("a.exe", 1)
    other = kernel.create_process("b.exe", 2)
    thread = kernel.create_thread(owner)
    data = CallbackData.for_request(kernel.build_irp(thread, nt.IRP_MJ_CREATE))
    assert nt.FltGetRequestorProcess(data) == owner
    kernel.attach(thread, other)
    assert nt.FltGetRequestorProcess(data) == other
    assert nt.FltGetRequestorProcessId(data) == other.pid
    assert nt.FltGetRequestorProcessIdEx(data) == other.pid


def test_flt_requestor_process_without_thread_is_null_and_pid_zero(kernel: SimKernel) -> None:
    data = CallbackData.for_request(kernel.build_irp(None, nt.IRP_MJ_CREATE))
    assert nt.FltGetRequestorProcess(data) is None
    assert nt.FltGetRequestorProcessId(data) == 0
    assert nt.FltGetRequestorProcessIdEx(data) is None


# -- IoGetRequestorSessionId (001) and test vector 1 --------------------------------------------


def test_io_session_fails_with_minus_one_when_irp_has_no_thread(kernel: SimKernel) -> None:
    irp = kernel.build_irp(None, nt.IRP_MJ_READ)
    assert nt.IoGetRequestorSessionId(irp) == (NTSTATUS.STATUS_UNSUCCESSFUL, -1)


def test_io_session_vector_thread_in_session_3_process(kernel: SimKernel) -> None:
    thread = kernel.create_thread(kernel.create_process("x.exe", 3))
    assert nt.IoGetRequestorSessionId(kernel.build_irp(thread, nt.IRP_MJ_CREATE)) == (0, 3)


def test_io_session_vector_system_process_gives_zero(kernel: SimKernel) -> None:
    irp = kernel.build_irp(kernel.system_thread, nt.IRP_MJ_WRITE)
    assert nt.IoGetRequestorSessionId(irp) == (NTSTATUS.STATUS_SUCCESS, 0)


def test_io_session_vector_attached_to_session_2_owned_by_session_1(kernel: SimKernel) -> None:
    thread = kernel.create_thread(kernel.create_process("owner.exe", 1))
    kernel.attach(thread, kernel.create_process("target.exe", 2))
    irp = kernel.build_irp(thread, nt.IRP_MJ_CREATE)
    assert nt.IoGetRequestorSessionId(irp) == (NTSTATUS.STATUS_SUCCESS, 1)


# -- IoGetRequestorProcess (004) and test vector 2: all three OS semantics ----------------------


def test_io_process_without_thread_is_null_on_every_version() -> None:
    for version in nt.WindowsVersion:
        k = SimKernel(version)
        irp = k.build_irp(None, nt.IRP_MJ_CREATE)
        assert nt.IoGetRequestorProcess(irp) is None
        assert nt.IoGetRequestorProcessId(irp) == 0


def test_vista_unattached_thread_gives_the_creating_process(kernel: SimKernel) -> None:
    owner = kernel.create_process("owner.exe", 1)
    irp = kernel.build_irp(kernel.create_thread(owner), nt.IRP_MJ_CREATE)
    assert irp.apc_environment == nt.OriginalApcEnvironment
    assert nt.IoGetRequestorProcess(irp) == owner
    assert nt.IoGetRequestorProcessId(irp) == owner.pid


def test_vista_attached_thread_gives_the_attached_process(kernel: SimKernel) -> None:
    owner, target = kernel.create_process("o.exe", 1), kernel.create_process("t.exe", 2)
    thread = kernel.create_thread(owner)
    kernel.attach(thread, target)
    irp = kernel.build_irp(thread, nt.IRP_MJ_CREATE)
    assert irp.apc_environment == nt.AttachedApcEnvironment
    assert nt.IoGetRequestorProcess(irp) == target
    assert nt.IoGetRequestorProcessId(irp) == target.pid


def test_vista_other_apc_environment_gives_null(kernel: SimKernel) -> None:
    thread = kernel.create_thread(kernel.create_process("o.exe", 1))
    irp = kernel.build_irp(
        thread, nt.IRP_MJ_CREATE, apc_environment=nt.KAPC_ENVIRONMENT.CurrentApcEnvironment
    )
    assert nt.IoGetRequestorProcess(irp) is None
    assert nt.IoGetRequestorProcessId(irp) == 0


def test_vista_irp_queued_to_file_object_gives_the_issuing_process(kernel: SimKernel) -> None:
    issuer = kernel.create_process("iocp-client.exe", 2)
    worker = kernel.create_thread(kernel.create_process("svchost.exe", 1))
    irp = kernel.build_irp(worker, nt.IRP_MJ_READ, queued_by=issuer)
    assert irp.flags & nt.IRP_HOLD_DEVICE_QUEUE
    assert nt.IoGetRequestorProcess(irp) == issuer


def test_xp_gives_the_attached_process() -> None:
    k = SimKernel(nt.WindowsVersion.WINDOWS_XP)
    k.create_session(1)
    owner, target = k.create_process("o.exe", 1), k.create_process("t.exe", NO_SESSION)
    thread = k.create_thread(owner)
    k.attach(thread, target)
    assert nt.IoGetRequestorProcess(k.build_irp(thread, nt.IRP_MJ_CREATE)) == target


def test_xp_unattached_thread_is_the_documented_possible_bug_check() -> None:
    k = SimKernel(nt.WindowsVersion.WINDOWS_XP)
    k.create_session(1)
    irp = k.build_irp(k.create_thread(k.create_process("o.exe", 1)), nt.IRP_MJ_CREATE)
    with pytest.raises(BugCheck) as caught:
        nt.IoGetRequestorProcess(irp)
    assert "undefined" in str(caught.value)


def test_xp_ignores_the_queued_issuing_process() -> None:
    k = SimKernel(nt.WindowsVersion.WINDOWS_XP)
    k.create_session(1)
    thread = k.create_thread(k.create_process("o.exe", 1))
    target = k.create_process("t.exe", 1)
    k.attach(thread, target)
    irp = k.build_irp(thread, nt.IRP_MJ_READ, queued_by=k.create_process("q.exe", 1))
    assert nt.IoGetRequestorProcess(irp) == target


def test_pre_xp_gives_the_creating_process_even_when_attached() -> None:
    k = SimKernel(nt.WindowsVersion.WINDOWS_2000)
    k.create_session(1)
    owner = k.create_process("o.exe", 1)
    thread = k.create_thread(owner)
    k.attach(thread, k.create_process("t.exe", 1))
    irp = k.build_irp(thread, nt.IRP_MJ_CREATE)
    assert nt.IoGetRequestorProcess(irp) == owner
    assert nt.IoGetRequestorProcessId(irp) == owner.pid


def test_system_process_has_pid_4_and_no_session(kernel: SimKernel) -> None:
    irp = kernel.build_irp(kernel.system_thread, nt.IRP_MJ_WRITE)
    assert nt.IoGetRequestorProcessId(irp) == SYSTEM_PID == 4
