"""``sessionio enforce`` on the real kernel (root): a real daemon subprocess guarding a temporary
tree, with children in real audit sessions (they write a uid to /proc/self/loginuid) opening
files in it.

Proved here: the opens of one session get EPERM and another's succeed, by session id, by user
and by ``none = true``; --dry-run denies nothing and logs the would-be deny; SIGHUP with a bad
file keeps the old rules, with a good one changes the decision; a log inside the guarded tree
(reopened there on SIGHUP) does not deadlock; SIGKILL of the daemon in the middle of a stream
of opens leaves no opener blocked; the ignore-mark cache is visible (a file no rule concerns is
decided once, however often it is opened, while an audited one is decided every time); SIGINT
exits 130 and SIGTERM 0; without CAP_SYS_ADMIN it exits 77.

The test process never touches the guarded tree while a daemon runs (its own opens would be
judged too): only its children do, and every answer from them, every line from the daemon and
every exit is awaited with a bound. Daemons are SIGKILLed in ``finally`` (the kernel then
allows whatever is pending) before the children are killed.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sessionio.runtime.linux_kernel import user_name

WAIT = 10.0  # seconds: an upper bound against hangs, never a synchronisation
UNSET = 4294967295  # /proc/PID/sessionid of a process without an audit session

# A child in its own audit session ("session UID"), or in none ("none"): it prints its
# /proc/self/sessionid, then runs one command per stdin line and answers one line each:
#   "open PATH"      -> "ok" or "errno N"
#   "loop PATH N"    -> "started" after the first open, then "done OK FAILED" after N opens
CHILD = r"""
import os, sys
mode = sys.argv[1]
if mode == "session":
    with open("/proc/self/loginuid", "w") as f:
        f.write(sys.argv[2])
elif mode == "none":
    with open("/proc/self/sessionid") as f:
        unset = f.read().strip() == "4294967295"
    if not unset:
        with open("/proc/self/loginuid", "w") as f:
            f.write("4294967295")
with open("/proc/self/sessionid") as f:
    print(f.read().strip(), flush=True)

def try_open(path):
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as err:
        return err.errno
    return 0

for line in sys.stdin:
    words = line.split()
    if words[0] == "open":
        code = try_open(words[1])
        print("ok" if code == 0 else f"errno {code}", flush=True)
    elif words[0] == "loop":
        done = failed = 0
        for i in range(int(words[2])):
            if try_open(words[1]) == 0:
                done += 1
            else:
                failed += 1
            if i == 0:
                print("started", flush=True)
        print(f"done {done} {failed}", flush=True)
"""


class Lines:
    """Lines from a pipe, each awaited with a deadline (never a blocking readline)."""

    def __init__(self, fd: int, what: str) -> None:
        self.fd = fd
        self.what = what
        self.buffer = b""
        self.seen: list[str] = []

    def next(self, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, remaining))
            if not ready:
                raise AssertionError(f"{self.what}: no line within {timeout} s: {self.seen}")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError(f"{self.what}: closed; lines so far: {self.seen}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        text = line.decode()
        self.seen.append(text)
        return text

    def until(self, prefix: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(max(0.0, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line


class Child:
    """An opener in a session of its own (``uid``) or in none (``uid=None``)."""

    def __init__(self, uid: int | None) -> None:
        args = ["session", str(uid)] if uid is not None else ["none"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stdout is not None
        self.pid = self.proc.pid
        self.lines = Lines(self.proc.stdout.fileno(), f"child {self.pid}")
        self.session = -1

    def started(self) -> Child:
        """Wait for its session id (the child has made its session by then)."""
        self.session = int(self.lines.next())
        return self

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")

    def open(self, path: str) -> str:
        """``ok`` or ``errno N``."""
        self.send(f"open {path}")
        return self.lines.next()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@dataclass
class Tree:
    """A temporary directory: the guarded ``tree`` inside, the rules and the log beside it."""

    base: str
    tree: str
    rules: str
    log: str

    def file(self, relative: str, content: bytes = b"data\n") -> str:
        path = os.path.join(self.tree, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        return path

    def write_rules(self, text: str) -> None:
        with open(self.rules + ".new", "w") as f:
            f.write(text)
        os.replace(self.rules + ".new", self.rules)

    def records(self, log: str | None = None) -> list[dict[str, Any]]:
        with open(log or self.log) as f:
            return [json.loads(line) for line in f]


class Daemon:
    """A running ``sessionio enforce``; its stderr is read line by line."""

    def __init__(self, tree: Tree, *options: str, log: str | None = None) -> None:
        command = [sys.executable, "-m", "sessionio", "enforce", tree.rules, tree.tree]
        self.proc = subprocess.Popen(
            [*command, "--log", log or tree.log, *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stderr is not None
        self.stderr = Lines(self.proc.stderr.fileno(), "enforce stderr")
        self.ready = ""

    def started(self) -> Daemon:
        """Wait for the ready line: the marks are in place and the reader runs."""
        self.ready = self.stderr.until("sessionio enforce: ready")
        return self

    def send(self, signo: int) -> None:
        self.proc.send_signal(signo)

    def stop(self, signo: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signo)
        return self.proc.wait(WAIT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def tree() -> Iterator[Tree]:
    base = os.path.realpath(tempfile.mkdtemp(prefix="sessionio-enforce-"))
    try:
        os.mkdir(os.path.join(base, "tree"))
        yield Tree(
            base,
            os.path.join(base, "tree"),
            os.path.join(base, "rules.toml"),
            os.path.join(base, "log.jsonl"),
        )
    finally:
        shutil.rmtree(base)


class Processes:
    """What a test started; on the way out the daemons are killed first (that unblocks any
    child waiting for an answer), then the children."""

    def __init__(self) -> None:
        self.daemons: list[Daemon] = []
        self.children: list[Child] = []

    def child(self, uid: int | None) -> Child:
        child = Child(uid)
        self.children.append(child)
        return child.started()

    def daemon(self, tree: Tree, *options: str, log: str | None = None) -> Daemon:
        daemon = Daemon(tree, *options, log=log)
        self.daemons.append(daemon)
        return daemon.started()

    def kill(self) -> None:
        for daemon in self.daemons:
            daemon.kill()
        for child in self.children:
            child.kill()


@pytest.fixture
def procs() -> Iterator[Processes]:
    processes = Processes()
    try:
        yield processes
    finally:
        processes.kill()


def deny_rules(tree: Tree, session: str, *, also: str = "") -> str:
    """Deny opens under tree/secret to the sessions ``session`` names; audit the rest there."""
    return f"""\
decision_timeout_ms = 2000
[[rule]]
name = "secret is not for them"
action = "deny"
operations = ["open"]
paths = ["{tree.tree}/secret/**"]
[rule.session]
{session}
{also}
[[rule]]
name = "audit the secret"
action = "audit"
paths = ["{tree.tree}/secret/**"]
"""


def by_event(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == event]


def test_the_opens_of_one_session_are_denied_by_id_the_others_allowed(
    tree: Tree, procs: Processes
) -> None:
    secret = tree.file("secret/payroll.csv")
    public = tree.file("public/readme")
    denied, allowed = procs.child(1000), procs.child(1001)
    assert denied.session != allowed.session
    assert UNSET not in (denied.session, allowed.session)
    tree.write_rules(deny_rules(tree, f"id = [{denied.session}]"))
    daemon = procs.daemon(tree)

    assert denied.open(secret) == f"errno {errno.EPERM}"
    assert allowed.open(secret) == "ok"
    assert denied.open(public) == "ok"
    assert denied.open(secret) == f"errno {errno.EPERM}"  # every time, never cached

    assert daemon.stop(signal.SIGTERM) == 0
    records = tree.records()
    denies = by_event(records, "deny")
    assert [(r["pid"], r["session"], r["path"], r["verdict"]) for r in denies] == [
        (denied.pid, denied.session, secret, "deny")
    ] * 2
    assert {r["rule"] for r in denies} == {"secret is not for them"}
    assert all(r["op"] == "open" and r["dry_run"] is False for r in denies)
    audits = [r for r in by_event(records, "audit") if r["op"] == "open"]
    assert [(r["pid"], r["session"], r["path"]) for r in audits] == [
        (allowed.pid, allowed.session, secret)
    ]
    assert audits[0]["login_uid"] == 1001 and audits[0]["rule"] == "audit the secret"
    assert not by_event(records, "allow")  # allows are logged with --verbose only
    final = records[-1]
    assert final["event"] == "stats" and final["final"] is True
    assert final["denied"] == 2 and final["timeouts"] == 0 and final["filter_errors"] == 0


def test_a_session_user_rule_uses_the_sessions_loginuid(tree: Tree, procs: Processes) -> None:
    secret = tree.file("secret/payroll.csv")
    alice, bob = procs.child(1000), procs.child(1001)
    name = user_name(1001)
    tree.write_rules(deny_rules(tree, f'user = ["{name}"]'))
    daemon = procs.daemon(tree)

    assert bob.open(secret) == f"errno {errno.EPERM}"
    assert alice.open(secret) == "ok"

    assert daemon.stop() == 0
    (deny,) = by_event(tree.records(), "deny")
    assert (deny["pid"], deny["session"], deny["login_user"]) == (bob.pid, bob.session, name)


def test_none_true_denies_the_processes_without_a_session(tree: Tree, procs: Processes) -> None:
    secret = tree.file("secret/payroll.csv")
    sessionless, in_session = procs.child(None), procs.child(1000)
    assert sessionless.session == UNSET
    tree.write_rules(deny_rules(tree, "none = true"))
    daemon = procs.daemon(tree)

    assert sessionless.open(secret) == f"errno {errno.EPERM}"
    assert in_session.open(secret) == "ok"

    # SIGINT stops it as well; it exits 130, as an interrupted command.
    assert daemon.stop(signal.SIGINT) == 130
    (deny,) = by_event(tree.records(), "deny")
    assert (deny["pid"], deny["session"]) == (sessionless.pid, -1)


def test_dry_run_denies_nothing_and_logs_the_would_be_deny(tree: Tree, procs: Processes) -> None:
    secret = tree.file("secret/payroll.csv")
    target, other = procs.child(1000), procs.child(1001)
    tree.write_rules(deny_rules(tree, f"id = [{target.session}]"))
    daemon = procs.daemon(tree, "--dry-run")
    assert "dry run" in daemon.ready

    assert target.open(secret) == "ok"
    assert other.open(secret) == "ok"

    assert daemon.stop() == 0
    records = tree.records()
    assert not by_event(records, "deny")
    (would,) = by_event(records, "would_deny")
    assert (would["pid"], would["session"], would["verdict"]) == (
        target.pid,
        target.session,
        "allow",
    )
    assert would["dry_run"] is True and would["rule"] == "secret is not for them"
    assert records[-1]["denied"] == 0


def test_sighup_keeps_the_old_rules_on_a_bad_file_and_applies_a_good_one(
    tree: Tree, procs: Processes
) -> None:
    secret = tree.file("secret/payroll.csv")
    first, second = procs.child(1000), procs.child(1001)
    tree.write_rules(deny_rules(tree, f"id = [{first.session}]"))
    daemon = procs.daemon(tree)
    assert first.open(secret) == f"errno {errno.EPERM}"

    tree.write_rules(deny_rules(tree, f"id = [{second.session}]").replace("deny", "deni", 1))
    daemon.send(signal.SIGHUP)
    refused = daemon.stderr.until("sessionio: reload refused")
    assert f"{tree.rules}:4:10: " in refused and "unknown action 'deni'" in refused
    assert first.open(secret) == f"errno {errno.EPERM}"  # the old rules still hold
    assert second.open(secret) == "ok"

    tree.write_rules(deny_rules(tree, f"id = [{second.session}]"))
    daemon.send(signal.SIGHUP)
    daemon.stderr.until("sessionio: reloaded")
    assert first.open(secret) == "ok"
    assert second.open(secret) == f"errno {errno.EPERM}"

    assert daemon.stop() == 0
    records = tree.records()
    (failed,) = by_event(records, "reload_failed")
    assert (failed["file"], failed["line"], failed["column"]) == (tree.rules, 4, 10)
    (reloaded,) = by_event(records, "reload")
    assert reloaded["rules"] == 2
    assert [(r["pid"], r["session"]) for r in by_event(records, "deny")] == [
        (first.pid, first.session),
        (first.pid, first.session),
        (second.pid, second.session),
    ]


def test_logging_into_the_guarded_tree_does_not_deadlock(tree: Tree, procs: Processes) -> None:
    secret = tree.file("secret/payroll.csv")
    log = os.path.join(tree.tree, "secret", "enforce.log")
    child = procs.child(1000)
    # Every operation logged (--verbose), into a file the rules guard and audit: each write of
    # the daemon is an operation in the tree, which it must answer itself.
    tree.write_rules(deny_rules(tree, "none = true"))
    daemon = procs.daemon(tree, "--verbose", log=log)
    for _ in range(5):
        assert child.open(secret) == "ok"
    # SIGHUP reopens the log: an open of our own in the guarded tree, while the reader runs.
    daemon.send(signal.SIGHUP)
    daemon.stderr.until("sessionio: reloaded")
    for _ in range(5):
        assert child.open(secret) == "ok"
    assert daemon.stop() == 0

    records = tree.records(log)
    audits = [r for r in by_event(records, "audit") if r["op"] == "open"]
    assert len(audits) == 10 and {r["pid"] for r in audits} == {child.pid}
    # Its own writes to the log are never reported (they would feed back forever).
    assert all(r.get("pid") != daemon.proc.pid for r in records)
    assert records[-1]["event"] == "stats" and records[-1]["own_allowed"] >= 1


def test_sigkill_during_a_stream_of_opens_leaves_no_opener_blocked(
    tree: Tree, procs: Processes
) -> None:
    secret = tree.file("secret/payroll.csv")
    count = 20000
    openers = [procs.child(1000), procs.child(1001)]
    tree.write_rules(deny_rules(tree, "id = [1]"))  # audited: every open is a round trip
    daemon = procs.daemon(tree)
    for child in openers:
        child.send(f"loop {secret} {count}")
    for child in openers:
        assert child.lines.next() == "started"

    daemon.proc.kill()
    assert daemon.proc.wait(WAIT) == -signal.SIGKILL

    for child in openers:
        assert child.lines.next() == f"done {count} 0"
    # It was killed in the middle of the stream: not every open had been decided.
    assert len(by_event(tree.records(), "audit")) < 2 * count


def test_the_ignore_mark_cache_decides_an_unconcerned_file_once(
    tree: Tree, procs: Processes
) -> None:
    secret = tree.file("secret/payroll.csv")
    public = tree.file("public/readme")
    child = procs.child(1000)
    tree.write_rules(deny_rules(tree, "id = [1]"))
    daemon = procs.daemon(tree, "--verbose")
    for _ in range(5):
        assert child.open(public) == "ok"  # no rule concerns it: cacheable
        assert child.open(secret) == "ok"  # audited: never cacheable
    assert daemon.stop() == 0

    records = tree.records()
    opens = [r for r in records if r.get("op") == "open" and r["pid"] == child.pid]
    assert [r["event"] for r in opens if r["path"] == public] == ["allow"]
    assert [r["event"] for r in opens if r["path"] == secret] == ["audit"] * 5
    assert records[-1]["event"] == "stats" and records[-1]["ignore_marks"] >= 1


def test_stats_are_logged_every_interval(tree: Tree, procs: Processes) -> None:
    tree.write_rules(deny_rules(tree, "none = true"))
    daemon = procs.daemon(tree, "--stats-interval", "0.05")
    deadline = time.monotonic() + WAIT
    while len(by_event(tree.records(), "stats")) < 2:
        assert time.monotonic() < deadline, "no periodic stats within the bound"
        time.sleep(0.05)
    assert daemon.stop() == 0
    stats = by_event(tree.records(), "stats")
    assert stats[-1]["final"] is True
    assert all("ignore_marks" in r and "final" not in r for r in stats[:-1])


def test_a_bad_rule_file_exits_1_before_watching(tree: Tree) -> None:
    tree.write_rules('[[rule]]\nname = "a"\naction = "reject"\n')
    result = subprocess.run(
        [sys.executable, "-m", "sessionio", "enforce", tree.rules, tree.tree, "--log", tree.log],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 1
    assert f"{tree.rules}:3:10: " in result.stderr
    assert "unknown action 'reject'" in result.stderr
    assert "ready" not in result.stderr
    assert not os.path.exists(tree.log)  # refused before anything was opened


def test_without_cap_sys_admin_it_exits_77(tree: Tree) -> None:
    # Root without CAP_SYS_ADMIN (as in a container): setpriv drops it from the bounding set,
    # so the interpreter it runs never has it.
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop CAP_SYS_ADMIN"
    tree.write_rules(deny_rules(tree, "none = true"))
    drop = [setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]
    result = subprocess.run(
        [*drop, sys.executable, "-m", "sessionio", "enforce", tree.rules, tree.tree],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 77, result.stderr
    assert "CAP_SYS_ADMIN" in result.stderr
    assert "ready" not in result.stderr
