"""``sessionio watch`` as users run it: a real process, real audit sessions, real signals.

The watched tree is a fresh tmpfs (tests.live.test_file_monitor_live.mounted_tmpfs), so only
these tests' operations are seen there; the one test of the default (every filesystem) mode
watches creations only, which needs no permission group: nobody on the machine waits for it.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sessionio.cli.main import main
from tests.live.test_file_monitor_live import WAIT, Children, mounted_tmpfs

SESSIONIO = [sys.executable, "-m", "sessionio"]


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def tree() -> Iterator[Path]:
    with mounted_tmpfs() as path:
        yield path


@contextmanager
def watching(*args: str, prefix: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[str]]:
    """``sessionio watch ARGS``, started and ready (its marks are in place)."""
    watch = subprocess.Popen(
        [*prefix, *SESSIONIO, "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(watch.stderr, selectors.EVENT_READ)
            if not selector.select(WAIT):
                pytest.fail(f"sessionio watch said nothing in {WAIT} s")
        ready = watch.stderr.readline()
        assert "watching" in ready, ready + watch.stderr.read()
        yield watch
    finally:
        if watch.poll() is None:
            watch.kill()
        watch.communicate(timeout=WAIT)


def stop(watch: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    watch.send_signal(signum)
    out, _err = watch.communicate(timeout=WAIT)
    return watch.returncode, out


def session_child_ops(tree: Path, tag: str) -> tuple[list[str], dict[str, set[str]]]:
    """Writes, an open, a rename and a delete; the last write ends the process. Returns the
    operations and, per path, what watch must report for it."""
    first, kept, renamed, last = (tree / f"{tag}.{n}" for n in ("first", "kept", "renamed", "last"))
    ops = [
        f"w:{first}",
        f"r:{tree / 'shared'}",
        f"w:{kept}",
        f"mv:{kept}:{renamed}",
        f"rm:{first}",
        f"w:{last}",
    ]
    expected = {
        str(first): {"create", "open", "modify", "close_write", "delete"},
        str(tree / "shared"): {"open"},
        str(kept): {"create", "open", "modify", "close_write", "rename"},
        str(renamed): {"rename"},
        str(last): {"create", "open", "modify", "close_write"},
    }
    return ops, expected


def test_watch_json_attributes_every_operation_to_its_session_and_pid(
    tree: Path, children: Children
) -> None:
    (tree / "shared").write_text("shared\n")
    with watching("--json", str(tree)) as watch:
        sessions: dict[int, int] = {}
        expected: dict[int, dict[str, set[str]]] = {}
        for uid in ("1000", "1001"):
            ops, wanted = session_child_ops(tree, uid)
            child = children.start(uid, *ops)
            sessions[child.pid] = int(Children.line(child))
            expected[child.pid] = wanted
        for child in children.running:
            Children.finish(child)  # exited (right after its last write) and reaped
        code, out = stop(watch, signal.SIGINT)

    assert code == 130
    records = [json.loads(line) for line in out.splitlines()]
    assert records, "watch reported nothing"
    assert len(set(sessions.values())) == 2
    seen: dict[int, dict[str, set[str]]] = {pid: {} for pid in sessions}
    for record in records:
        assert {"op", "path", "pid", "session", "tid", "comm", "user", "time", "attribution"} <= (
            record.keys()
        )
        assert record["pid"] in sessions, record  # nobody else touches this tmpfs
        assert record["session"] == sessions[record["pid"]], record
        assert record["attribution"] in ("exact", "remembered"), record
        seen[record["pid"]].setdefault(record["path"], set()).add(record["op"])
    for pid, wanted in expected.items():
        for path, operations in wanted.items():
            assert operations <= seen[pid].get(path, set()), (pid, path, seen[pid])


def test_watch_filters_and_never_reports_its_own_output_file(
    tree: Path, children: Children
) -> None:
    log = tree / "watch.jsonl"
    args = ["--json", "--output", str(log), "--op", "modify", "--op", "close_write"]
    with watching(*args, str(tree)) as watch:
        sessions = {}
        for uid in ("1000", "1001"):
            child = children.start(uid, f"w:{tree / uid}", f"r:{tree / uid}")
            sessions[int(Children.line(child))] = child.pid
            Children.finish(child)
        code, out = stop(watch, signal.SIGTERM)
        watch_pid = watch.pid

    assert (code, out) == (0, "")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["op"] for r in records} == {"modify", "close_write"}
    assert {(r["session"], r["pid"]) for r in records} == set(sessions.items())
    assert all(r["pid"] != watch_pid and r["path"] != str(log) for r in records)

    # --session keeps one session's operations only (sessions known before watch starts).
    waiting = [children.start(uid, "hold", f"w:{tree / ('again' + uid)}") for uid in ("1", "2")]
    ids = [int(Children.line(child)) for child in waiting]
    with watching("--json", "--session", str(ids[0]), str(tree)) as watch:
        for child in waiting:
            Children.finish(child)
        _code, out = stop(watch, signal.SIGINT)
    kept = [json.loads(line) for line in out.splitlines()]
    assert kept and {(r["session"], r["pid"]) for r in kept} == {(ids[0], waiting[0].pid)}


def test_watch_human_lines_are_aligned(tree: Path, children: Children) -> None:
    target = tree / "human"
    with watching(str(tree)) as watch:
        child = children.start("1000", f"w:{target}")
        session = Children.line(child)
        Children.finish(child)
        _code, out = stop(watch, signal.SIGINT)
    header, *lines = out.splitlines()
    assert header.split() == ["TIME", "OPERATION", "PID", "SESSION", "USER", "COMMAND", "PATH"]
    assert lines
    for line in lines:
        fields = line.split()
        # "~": the process had exited when its event was read; the session is remembered.
        assert [fields[2], fields[3].rstrip("~")] == [str(child.pid), session]
        assert fields[-1] == str(target)
        assert line.index(str(target)) == header.index("PATH")
    assert {line.split()[1] for line in lines} == {"create", "open", "modify", "close_write"}


def test_watch_marks_every_filesystem_by_default(children: Children) -> None:
    directory = tempfile.mkdtemp(prefix="sessionio-watch-all-")
    try:
        target = Path(directory) / "created"
        with watching("--json", "--op", "create") as watch:
            child = children.start("1000", f"w:{target}")
            session = int(Children.line(child))
            Children.finish(child)
            _code, out = stop(watch, signal.SIGINT)
        mine = [r for r in map(json.loads, out.splitlines()) if r["path"] == str(target)]
        assert [(r["op"], r["pid"], r["session"]) for r in mine] == [("create", child.pid, session)]
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_watch_without_cap_sys_admin_exits_77_naming_it(tree: Path) -> None:
    drop = ("setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--")
    done = subprocess.run(
        [*drop, *SESSIONIO, "watch", str(tree)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 77
    assert "CAP_SYS_ADMIN" in done.stderr


def test_watch_of_a_missing_path_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "/nonexistent/sessionio-test"]) == 1
    assert "/nonexistent/sessionio-test" in capsys.readouterr().err
