"""ps, sessions, session-of and ProcessIdToSessionId on the real kernel (root).

Audit sessions are made by children that write a uid to /proc/self/loginuid, print the
session the kernel gave them and wait on their stdin (tests.live.test_procfs_live's
LOGIN_CHILD). The commands run as real subprocesses (``python -m sessionio``), with the system
bus pointed at a socket that does not exist, so that /proc alone answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sessionio
from sessionio import nt
from sessionio.linux.procfs import ProcFS
from sessionio.runtime.linux_kernel import LinuxKernel, user_name
from tests.live.test_procfs_live import LOGIN_CHILD, THREAD_CHILD, TIMEOUT, Children

UNSET = 4294967295

CLEARED_CHILD = r"""
import os, sys
fd = os.open("/proc/self/loginuid", os.O_WRONLY)
os.write(fd, b"4294967295")  # root may clear its loginuid: the session becomes unset
os.close(fd)
with open("/proc/self/sessionid") as f:
    print(f.read(), flush=True)
sys.stdin.read()
"""

CHURN_CHILD = r"""
import os, subprocess, sys, threading
fd = os.open("/proc/self/loginuid", os.O_WRONLY)
os.write(fd, b"1000")
os.close(fd)
with open("/proc/self/sessionid") as f:
    print(f.read(), flush=True)
stop = threading.Event()
announced = threading.Event()

def churn():
    # Keep a few short-lived children in flight: each exits and is reaped while listed.
    running = []
    while not stop.is_set():
        while len(running) < 4:
            running.append(subprocess.Popen(["sleep", "0.01"]))
        running.pop(0).wait()
        if not announced.is_set():
            print("spawned", flush=True)
            announced.set()
    for child in running:
        child.wait()

thread = threading.Thread(target=churn)
thread.start()
sys.stdin.read()
stop.set()
thread.join()
"""

HIDEPID_CHILD = r"""
import json, os, sys
import sessionio
from sessionio import nt
from sessionio.cli.main import build_parser, main

build_parser()  # imports every command while still root: the tree may not be nobody's to read
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
try:
    nt.ProcessIdToSessionId(1)
except nt.error as err:
    print(json.dumps(list(err.args)), flush=True)
print(json.dumps(main(["session-of", "--json", "1"])), flush=True)
print(json.dumps(main(["ps", "--json"])), flush=True)
"""


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def no_bus(tmp_path: Path) -> dict[str, str]:
    """The environment for the commands: no system bus (its socket does not exist)."""
    return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"}


def sessionio_cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionio", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def json_rows(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def own_session() -> int:
    with open("/proc/self/sessionid") as f:
        value = int(f.read())
    return -1 if value == UNSET else value


def test_three_audit_sessions_agree_in_every_command(
    children: Children, no_bus: dict[str, str]
) -> None:
    uids = (1000, 1001, 1002)
    started = [children.start(LOGIN_CHILD, str(uid), "wait") for uid in uids]
    told = {child.pid: int(children.read_line(child)) for child in started}
    assert len(set(told.values())) == 3
    login_uid = dict(zip(told, uids, strict=True))

    ps_rows = {row["pid"]: row for row in json_rows(sessionio_cli(no_bus, "ps", "--json"))}
    sessions = {row["id"]: row for row in json_rows(sessionio_cli(no_bus, "sessions", "--json"))}
    pids = [str(pid) for pid in told]
    of = json_rows(sessionio_cli(no_bus, "session-of", "--json", *pids))

    assert [(row["pid"], row["session"]) for row in of] == list(told.items())
    for pid, session in told.items():
        assert (ps_rows[pid]["session"], ps_rows[pid]["login_uid"]) == (session, login_uid[pid])
        assert ps_rows[pid]["ppid"] == os.getpid()
        row = sessions[session]
        assert (row["user"], row["uid"], row["leader"]) == (
            user_name(login_uid[pid]),
            login_uid[pid],
            pid,
        )
        assert (row["processes"], row["state"], row["logind"]) == (1, "online", False)
        assert nt.ProcessIdToSessionId(pid) == sessionio.session_id_of(pid) == session
        only = json_rows(sessionio_cli(no_bus, "ps", "--json", "--session", str(session)))
        assert [r["pid"] for r in only] == [pid]
    # The rest of the machine is there too: our own process, in our own session.
    me = os.getpid()
    assert ps_rows[me]["session"] == own_session() == nt.ProcessIdToSessionId(me)
    assert sessions[own_session()]["processes"] >= 1
    assert all(isinstance(row["session"], int) for row in ps_rows.values())
    listed = {int(p.pid): p for p in sessionio.processes()}  # the Pythonic surface agrees
    assert {pid: listed[pid].session_id for pid in told} == told
    assert all(sessionio.process(pid) == listed[pid] for pid in told)


def test_a_process_without_a_session_is_minus_one(
    children: Children, no_bus: dict[str, str]
) -> None:
    child = children.start(CLEARED_CHILD)
    assert int(children.read_line(child)) == UNSET
    for pid in (child.pid, 2):  # the child, and kthreadd, a kernel thread
        assert nt.ProcessIdToSessionId(pid) == sessionio.session_id_of(pid) == -1
    (row,) = json_rows(sessionio_cli(no_bus, "session-of", "--json", str(child.pid)))
    assert (row["session"], row["user"]) == (-1, None)
    listed = json_rows(sessionio_cli(no_bus, "ps", "--json", "--session", "-1"))
    assert {child.pid, 2} <= {r["pid"] for r in listed}
    (no_session,) = (
        r for r in json_rows(sessionio_cli(no_bus, "sessions", "--json")) if r["id"] == -1
    )
    assert no_session["processes"] >= 2 and no_session["user"] is None


def test_an_unknown_pid_and_pid_0_are_error_87(no_bus: dict[str, str]) -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        beyond = int(f.read()) + 1  # no process can have it
    for pid in (0, beyond):
        with pytest.raises(nt.error) as caught:
            nt.ProcessIdToSessionId(pid)
        assert caught.value.args == (87, "ProcessIdToSessionId", "The parameter is incorrect.")
    result = sessionio_cli(no_bus, "session-of", "--json", str(beyond), "1")
    assert result.returncode == 1
    assert f"pid {beyond}" in result.stderr
    assert [json.loads(line)["pid"] for line in result.stdout.splitlines()] == [1]
    assert sessionio_cli(no_bus, "session-of", "0").returncode == 2


def test_a_refused_read_is_error_5(no_bus: dict[str, str]) -> None:
    """As nobody, under a private /proc mounted hidepid=1: other users' processes are refused.

    Since Linux 5.8 every proc mount has its own options, so the private mount leaves the
    machine's /proc as it was; on an older kernel it would not, and the test refuses to run.
    """
    major, minor = re.match(r"(\d+)\.(\d+)", os.uname().release).groups()  # type: ignore[union-attr]
    if (int(major), int(minor)) < (5, 8):
        pytest.skip("proc mount options are per superblock before Linux 5.8: not run here")
    script = f'mount -t proc -o hidepid=1 proc /proc && exec {sys.executable} -c "$0"'
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, HIDEPID_CHILD],
        capture_output=True,
        text=True,
        env=no_bus,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert json.loads(lines[0]) == [5, "ProcessIdToSessionId", "Access is denied."]
    assert json.loads(lines[1]) == 1  # session-of 1: exits 1 ...
    assert "pid 1: access denied" in result.stderr  # ... and says why
    # ps leaves out what it may not see, and lists its own process (nobody's) without error.
    rows = [json.loads(line) for line in lines[2:-1]]
    assert json.loads(lines[-1]) == 0
    assert rows and all(row["uid"] == 65534 for row in rows)
    assert "hidepid" not in _proc_mount_options()  # the machine's /proc is untouched


def _proc_mount_options() -> str:
    with open("/proc/self/mounts") as f:
        return next(line.split()[3] for line in f if line.split()[1] == "/proc")


def test_a_thread_in_its_own_session_is_listed_with_it(
    children: Children, no_bus: dict[str, str]
) -> None:
    child = children.start(THREAD_CHILD)
    process_session = int(children.read_line(child))
    tid_text, thread_text = children.read_line(child).split()
    tid, thread_session = int(tid_text), int(thread_text)
    rows = json_rows(sessionio_cli(no_bus, "ps", "--json", "--session", str(thread_session)))
    (row,) = (r for r in rows if r["pid"] == child.pid)
    assert row["session"] == process_session
    assert row["threads"] == [{"tid": tid, "session": thread_session}]
    assert nt.ProcessIdToSessionId(child.pid) == process_session


def test_processes_exiting_mid_listing_never_crash_or_get_a_wrong_session(
    children: Children, no_bus: dict[str, str]
) -> None:
    churn = children.start(CHURN_CHILD)
    session = int(children.read_line(churn))
    spawned = children.read_line(churn)  # the churn is running
    assert spawned == "spawned"
    seen = 0
    for _ in range(8):
        rows = json_rows(sessionio_cli(no_bus, "ps", "--json"))
        mine = [r for r in rows if r["ppid"] == churn.pid]
        assert all((r["session"], r["login_uid"]) == (session, 1000) for r in mine), mine
        seen += len(mine)
        for info in sessionio.processes():  # in-process too: never raises, never mixes
            if info.ppid == churn.pid:
                assert info.session_id == session
    assert seen > 0, "the churn children were never listed: the race was not exercised"
    sessions = {r["id"]: r for r in json_rows(sessionio_cli(no_bus, "sessions", "--json"))}
    assert sessions[session]["leader"] == churn.pid


def _current_tick() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def test_a_reused_pid_is_a_different_process(children: Children) -> None:
    """Force the kernel to give a dead child's pid to the next one (ns_last_pid), then compare."""
    kernel = LinuxKernel()
    old_child = children.start(LOGIN_CHILD, "1000", "wait")
    old_session = int(children.read_line(old_child))
    pid = old_child.pid
    old = kernel.process(pid)
    assert old.session_id == old_session
    old_ticks = kernel.procfs.stat(pid).starttime
    children.finish(old_child)
    # The identity is (pid, start time) at the kernel's tick resolution: start one tick later.
    deadline = time.monotonic() + TIMEOUT
    while _current_tick() <= old_ticks + 1 and time.monotonic() < deadline:
        time.sleep(1 / os.sysconf("SC_CLK_TCK"))
    for _ in range(50):  # another fork on the machine may take the pid first: try again
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        new_child = children.start(LOGIN_CHILD, "1001", "wait")
        if new_child.pid == pid:
            break
        children.finish(new_child)
    else:
        pytest.fail(f"pid {pid} was not reused in 50 attempts")
    new_session = int(children.read_line(new_child))
    new = kernel.process(pid)
    assert new.pid == old.pid
    assert new != old
    assert new.start_time > old.start_time
    assert (new.session_id, old.session_id) == (new_session, old_session)
    assert new_session != old_session
    assert nt.ProcessIdToSessionId(pid) == new_session
    assert ProcFS().process(pid).start_ticks > old_ticks
