"""ProcessIdToSessionId (002) in pywin32's shape, and test vector 4."""

from __future__ import annotations

import pytest

from sessionio import nt
from sessionio.model import NO_SESSION
from sessionio.sim import SYSTEM_PID, SimKernel


@pytest.fixture
def kernel() -> SimKernel:
    k = SimKernel()
    k.create_session(1)
    return k


def test_returns_the_session_of_the_process(kernel: SimKernel) -> None:
    pid = kernel.create_process("explorer.exe", 1).pid
    with kernel.activate():
        assert nt.ProcessIdToSessionId(pid) == 1
        assert nt.ProcessIdToSessionId(ProcessId=pid) == 1


def test_unknown_pid_raises_error_87_with_pywin32_arguments(kernel: SimKernel) -> None:
    with kernel.activate(), pytest.raises(nt.error) as caught:
        nt.ProcessIdToSessionId(123456)
    err = caught.value
    assert err.args == (87, "ProcessIdToSessionId", "The parameter is incorrect.")
    assert (err.winerror, err.funcname, err.strerror) == err.args


def test_pid_zero_raises_error_87(kernel: SimKernel) -> None:
    with kernel.activate(), pytest.raises(nt.error) as caught:
        nt.ProcessIdToSessionId(0)
    assert caught.value.winerror == nt.ERROR_INVALID_PARAMETER == 87


def test_access_denied_raises_error_5(kernel: SimKernel) -> None:
    pid = kernel.create_process("csrss.exe", 1, protected=True).pid
    with kernel.activate(), pytest.raises(nt.error) as caught:
        nt.ProcessIdToSessionId(pid)
    assert caught.value.args == (5, "ProcessIdToSessionId", "Access is denied.")


def test_the_protected_system_process_is_access_denied(kernel: SimKernel) -> None:
    with kernel.activate(), pytest.raises(nt.error) as caught:
        nt.ProcessIdToSessionId(SYSTEM_PID)
    assert caught.value.winerror == 5


def test_process_with_no_session_gives_minus_one(kernel: SimKernel) -> None:
    pid = kernel.create_process("daemon", NO_SESSION).pid
    with kernel.activate():
        assert nt.ProcessIdToSessionId(pid) == -1


def test_pid_is_taken_as_unsigned_32_bit_like_pywin32(kernel: SimKernel) -> None:
    pid = kernel.create_process("a.exe", 1).pid
    with kernel.activate():
        assert nt.ProcessIdToSessionId(pid + (1 << 32)) == 1
        with pytest.raises(TypeError):
            nt.ProcessIdToSessionId(1.5)  # type: ignore[arg-type]


def test_a_terminated_process_is_unknown(kernel: SimKernel) -> None:
    process = kernel.create_process("a.exe", 1)
    kernel.terminate_process(process)
    with kernel.activate(), pytest.raises(nt.error) as caught:
        nt.ProcessIdToSessionId(process.pid)
    assert caught.value.winerror == 87


def test_error_is_a_sessionio_error_and_defaults_missing_arguments_to_none() -> None:
    err = nt.error(5)
    assert (err.winerror, err.funcname, err.strerror) == (5, None, None)
    from sessionio import SessionioError

    assert isinstance(err, SessionioError)
