"""``sessionio watch`` without root: its options, its line format and its record filter."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sessionio.cli.commands.watch import HEADER, RecordFilter, human_line
from sessionio.cli.main import build_parser
from sessionio.rules.schema import Verdict
from sessionio.runtime.attribution import Attribution
from sessionio.runtime.file_monitor import OVERFLOW, FileOperation, Outcome

BASE = FileOperation(
    time=1_795_262_585.5,
    operation="modify",
    path="/srv/payroll/march.csv",
    pid=4242,
    tid=4242,
    comm="vim",
    exe="/usr/bin/vim",
    uid=1000,
    euid=1000,
    session_id=7,
    attribution=Attribution.EXACT,
    verdict=None,
    outcome=Outcome.REPORTED,
    user="alice",
)


def record(**changes: Any) -> FileOperation:
    return replace(BASE, **changes)


def test_the_options_parse() -> None:
    argv = "watch --json --session 7 --session -1 --user alice --pid 42 --op open --op rename"
    args = build_parser().parse_args([*argv.split(), "--output", "/tmp/x", "/srv", "/home"])
    assert args.paths == ["/srv", "/home"]
    assert (args.session, args.user, args.pid) == ([7, -1], ["alice"], [42])
    assert args.op == ["open", "rename"]
    assert args.json and args.output == "/tmp/x" and not args.notify_only


def test_an_unknown_operation_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["watch", "--op", "chmod"])
    assert exit_info.value.code == 2


def test_lines_align_under_the_header() -> None:
    lines = [
        human_line(record()),
        human_line(record(pid=7, comm="a-much-longer-command-name-than-fits", session_id=-1)),
        human_line(record(attribution=Attribution.REMEMBERED, user=None)),
        human_line(record(attribution=Attribution.UNIDENTIFIED, session_id=-1, comm="")),
    ]
    path_column = HEADER.index("PATH")

    assert all(line.endswith("/srv/payroll/march.csv") for line in lines)
    assert [line.split()[1:4] for line in lines] == [
        ["modify", "4242", "7"],
        ["modify", "7", "-1"],
        ["modify", "4242", "7~"],
        ["modify", "4242", "?"],
    ]
    assert lines[0].index("/srv") == lines[2].index("/srv") == path_column
    assert lines[2].split()[4] == "-"  # no user name


def test_denials_renames_and_lost_events_say_so() -> None:
    denied = human_line(record(operation="open", verdict=Verdict.DENY, outcome=Outcome.DECIDED))
    renamed = human_line(record(operation="rename", detail="to"))
    lost = human_line(
        record(operation=OVERFLOW, outcome=Outcome.OVERFLOW, detail="events were lost")
    )

    assert denied.endswith("/srv/payroll/march.csv (denied)")
    assert renamed.endswith("/srv/payroll/march.csv (to)")
    assert lost.split()[1:] == ["overflow", "events", "were", "lost"]


def test_the_record_filter_combines_its_options() -> None:
    keep = RecordFilter(sessions=[7], users=["alice"], operations=["modify"])

    assert keep(record())
    assert not keep(record(session_id=8))
    assert not keep(record(user="bob", euid=1001))
    assert keep(record(user=None, euid=None, uid=1000)) is False  # no user known: not alice
    assert not keep(record(operation="open"))
    assert keep(record(operation=OVERFLOW, session_id=-1, outcome=Outcome.OVERFLOW))
    assert RecordFilter(users=["1000"])(record(user="alice"))  # a uid matches too
    assert RecordFilter(pids=[4243])(record(tid=4243))  # a thread id matches too
    assert not RecordFilter(pids=[1])(record())
