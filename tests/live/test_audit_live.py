"""Audit on the real kernel: AUDIT_LOGIN from the multicast group, and the audit_enabled switch.

Every test that changes ``audit_enabled`` does it through the ``audit_control`` fixture, which
restores the machine's value afterwards, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sessionio.linux.audit import AuditControl, AuditMulticast
from sessionio.protocols.audit import (
    AUDIT_ID_UNSET,
    AuditEnabled,
    AuditLogin,
    AuditMessageType,
    AuditRecord,
)

DEADLINE = 10.0
"""Seconds an expected record may take to arrive (it normally takes milliseconds)."""

# Starts a new audit session the way pam_loginuid does: writes a uid to /proc/self/loginuid.
# If the test runner itself has a loginuid, it is first reset to unset (root may), so that the
# child always moves from "no session" to a new one. Prints the new session id.
NEW_AUDIT_SESSION = f"""
import os

def write(value):
    fd = os.open("/proc/self/loginuid", os.O_WRONLY)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)

with open("/proc/self/loginuid") as f:
    if f.read().strip() != "{AUDIT_ID_UNSET}":
        write(b"{AUDIT_ID_UNSET}")
write(b"1000")
with open("/proc/self/sessionid") as f:
    print(f.read().strip(), flush=True)
"""


@pytest.fixture
def audit_control() -> Iterator[AuditControl]:
    with AuditControl() as control:
        original = control.status().enabled
        assert original != AuditEnabled.LOCKED, "audit is locked on this machine"
        try:
            yield control
        finally:
            control.set_enabled(original)
            assert control.status().enabled == original


def start_audit_session() -> tuple[int, int]:
    """Run a child that starts an audit session; return its pid and its session id."""
    child = subprocess.Popen(
        [sys.executable, "-c", NEW_AUDIT_SESSION], stdout=subprocess.PIPE, text=True
    )
    try:
        out, _ = child.communicate(timeout=DEADLINE)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    return child.pid, int(out)


def logins_until(multicast: AuditMulticast, pid: int) -> list[AuditLogin]:
    """Every AUDIT_LOGIN read until one from ``pid`` arrives; fail after DEADLINE seconds."""
    logins: list[AuditLogin] = []
    deadline = time.monotonic() + DEADLINE
    while not any(login.pid == pid for login in logins):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no AUDIT_LOGIN from pid {pid} within {DEADLINE} s")
        logins.extend(multicast.read_logins(remaining))
    return logins


def test_set_enabled_returns_the_previous_value(audit_control: AuditControl) -> None:
    original = audit_control.status().enabled
    other = AuditEnabled.ON if original == AuditEnabled.OFF else AuditEnabled.OFF
    assert audit_control.set_enabled(other) == original
    assert audit_control.status().enabled == other
    assert audit_control.set_enabled(original) == other
    assert audit_control.status().enabled == original


def test_status_reports_the_features_of_a_current_kernel(audit_control: AuditControl) -> None:
    status = audit_control.status()
    # All fields through backlog_wait_time_actual (Linux 5.10) are present on 6.18.
    assert status.backlog_wait_time_actual is not None
    assert status.feature_bitmap is not None
    assert status.feature_bitmap & 0x1  # AUDIT_FEATURE_BITMAP_BACKLOG_LIMIT


def test_a_bad_enabled_value_is_refused_before_reaching_the_kernel(
    audit_control: AuditControl,
) -> None:
    with pytest.raises(ValueError):
        audit_control.set_enabled(3)


def test_login_record_names_the_childs_new_session(audit_control: AuditControl) -> None:
    audit_control.set_enabled(AuditEnabled.ON)
    with AuditMulticast() as multicast:
        pid, session = start_audit_session()
        logins = logins_until(multicast, pid)
    (login,) = [login for login in logins if login.pid == pid and login.auid == 1000]
    assert login.ses == session
    assert login.session_id == session
    assert login.old_ses == AUDIT_ID_UNSET
    assert login.old_session_id is None
    assert login.uid == 0
    assert login.success


def test_login_record_shares_its_stamp_with_the_syscall_record(
    audit_control: AuditControl,
) -> None:
    audit_control.set_enabled(AuditEnabled.ON)
    with AuditMulticast() as multicast:
        pid, session = start_audit_session()
        records: list[AuditRecord] = []
        deadline = time.monotonic() + DEADLINE
        while not any(
            r.type == AuditMessageType.SYSCALL and r.get("pid") == str(pid) for r in records
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no AUDIT_SYSCALL from pid {pid} within {DEADLINE} s")
            records.extend(multicast.read(remaining))
    (login,) = [r for r in records if r.type == AuditMessageType.LOGIN and r.get("pid") == str(pid)]
    (syscall,) = [
        r for r in records if r.type == AuditMessageType.SYSCALL and r.get("pid") == str(pid)
    ]
    assert syscall.stamp == login.stamp
    assert syscall.get("ses") == str(session)


def test_no_login_record_while_audit_is_disabled(audit_control: AuditControl) -> None:
    """A child starts a session with audit off; then, with audit on, a second child does.

    Records reach the group in the order the kernel queued them, so the second child's record
    arriving bounds the wait: had the first child produced one, it would have come before.
    """
    audit_control.set_enabled(AuditEnabled.OFF)
    with AuditMulticast() as multicast:
        silent_pid, _ = start_audit_session()
        audit_control.set_enabled(AuditEnabled.ON)
        marker_pid, marker_session = start_audit_session()
        logins = logins_until(multicast, marker_pid)
    assert [login.pid for login in logins if login.pid == silent_pid] == []
    (marker,) = [login for login in logins if login.pid == marker_pid]
    assert marker.ses == marker_session


def run_without_capability(capability: str, code: str) -> str:
    """Run ``code`` as root without ``capability`` (dropped from the bounding set at exec)."""
    result = subprocess.run(
        ["setpriv", f"--bounding-set=-{capability}", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_joining_the_group_without_cap_audit_read_is_a_privilege_error() -> None:
    code = (
        "from sessionio.errors import PrivilegeError\n"
        "from sessionio.linux.audit import AuditMulticast\n"
        "try:\n"
        "    AuditMulticast()\n"
        "except PrivilegeError as error:\n"
        "    print(error.capability)\n"
    )
    assert run_without_capability("audit_read", code) == "CAP_AUDIT_READ"


def test_audit_control_without_cap_audit_control_is_a_privilege_error() -> None:
    code = (
        "from sessionio.errors import PrivilegeError\n"
        "from sessionio.linux.audit import AuditControl\n"
        "with AuditControl() as control:\n"
        "    try:\n"
        "        control.status()\n"
        "    except PrivilegeError as error:\n"
        "        print(error.capability)\n"
    )
    assert run_without_capability("audit_control", code) == "CAP_AUDIT_CONTROL"
