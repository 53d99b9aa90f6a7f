"""Windows names and values, as the headers define them."""

from __future__ import annotations

import enum

import pytest

from sessionio import nt
from sessionio.ntdef import status, values

ENUMS: list[type[enum.IntEnum] | type[enum.IntFlag]] = [
    status.NTSTATUS,
    status.WinError,
    values.KIRQL,
    values.KAPC_ENVIRONMENT,
    values.IO_SESSION_EVENT,
    values.IO_SESSION_STATE,
    values.IO_SESSION_STATE_EVENT_MASK,
    values.IO_CONTAINER_NOTIFICATION_CLASS,
    values.IO_CONTAINER_INFORMATION_CLASS,
    values.WTS_CONNECTSTATE_CLASS,
    values.WTS_SESSION_CHANGE,
    values.FLT_PREOP_CALLBACK_STATUS,
    values.IRP_MJ,
]


@pytest.mark.parametrize("enum_type", ENUMS, ids=[e.__name__ for e in ENUMS])
def test_every_enum_member_is_a_module_attribute_of_nt(enum_type: type[enum.Enum]) -> None:
    for name, member in enum_type.__members__.items():
        assert getattr(nt, name) == member.value, name


def test_documented_values() -> None:
    assert nt.IoSessionEventLogoff == 6
    assert [int(e) for e in nt.IO_SESSION_EVENT] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert nt.IoSessionStateInitialized == 2 and nt.IoSessionStateTerminated == 8
    assert nt.IO_SESSION_STATE_ALL_EVENTS == 0xFFFFFFFF
    assert nt.IO_SESSION_STATE_VALID_EVENT_MASK == 0x3F
    assert nt.IO_SESSION_STATE_LOGOFF_EVENT == 0x20
    assert nt.IO_SESSION_MAX_PAYLOAD_SIZE == 256
    assert nt.STATUS_UNSUCCESSFUL == 0xC0000001
    assert nt.STATUS_INVALID_PARAMETER_1 == 0xC00000EF
    assert nt.STATUS_INVALID_PARAMETER_4 == 0xC00000F2
    assert nt.STATUS_ALREADY_COMMITTED == 0xC0000021
    assert (nt.ERROR_ACCESS_DENIED, nt.ERROR_GEN_FAILURE, nt.ERROR_INVALID_PARAMETER) == (5, 31, 87)
    assert (nt.PASSIVE_LEVEL, nt.APC_LEVEL, nt.DISPATCH_LEVEL) == (0, 1, 2)
    assert nt.WTSDisconnected == 4 and nt.WTS_SESSION_LOGOFF == 6
    assert nt.WM_WTSSESSION_CHANGE == 0x02B1


def test_event_mask_bit_is_one_shifted_by_event_minus_one() -> None:
    masks = [values.event_mask_bit(e) for e in nt.IO_SESSION_EVENT]
    assert masks == [0, 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0]


def test_structure_sizes_are_the_x64_ones() -> None:
    assert nt.IO_SESSION_STATE_NOTIFICATION.sizeof == 32
    assert nt.IO_SESSION_CONNECT_INFO.sizeof == len(nt.IO_SESSION_CONNECT_INFO(1, True).pack())
    info = nt.IO_SESSION_STATE_INFORMATION(1, nt.IO_SESSION_STATE.IoSessionStateConnected, True)
    assert nt.IO_SESSION_STATE_INFORMATION.sizeof == len(info.pack()) == 12


def test_ntstatus_to_win32_mapping_used_by_process_id_to_session_id() -> None:
    assert status.ntstatus_to_win32(nt.NTSTATUS.STATUS_INVALID_CID) == 87
    assert status.ntstatus_to_win32(nt.NTSTATUS.STATUS_ACCESS_DENIED) == 5
    assert status.ntstatus_to_win32(nt.NTSTATUS.STATUS_UNSUCCESSFUL) == 31
    assert status.ntstatus_to_win32(nt.NTSTATUS.STATUS_ALREADY_COMMITTED) == 5
    assert not nt.nt_success(nt.STATUS_UNSUCCESSFUL) and nt.nt_success(nt.STATUS_PENDING)
