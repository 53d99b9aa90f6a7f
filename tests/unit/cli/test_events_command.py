"""``sessionio events``: its arguments and how one event is rendered (the live run is in
tests/live/test_session_events_live.py)."""

from __future__ import annotations

import argparse
import datetime
import json

import pytest

from sessionio.cli.commands import events
from sessionio.model.ids import SessionId
from sessionio.model.session import EVENT_NAMES, SessionEvent
from sessionio.ntdef.values import IO_SESSION_EVENT as E
from sessionio.ntdef.values import IO_SESSION_STATE as S

WHEN = datetime.datetime(2026, 3, 1, 12, 0, 1, 250000, tzinfo=datetime.UTC)


def parser() -> argparse.ArgumentParser:
    built = argparse.ArgumentParser(prog="sessionio events")
    events.COMMAND.configure(built)
    return built


@pytest.mark.parametrize(
    ("state", "name"),
    [
        (S.IoSessionStateCreated, "created"),
        (S.IoSessionStateLoggedOn, "logged_on"),
        (S.IoSessionStateDisconnectedLoggedOn, "disconnected_logged_on"),
        (S.IoSessionStateTerminated, "terminated"),
    ],
)
def test_state_names_are_snake_case_without_the_windows_prefix(state: S, name: str) -> None:
    assert events.state_name(state) == name


def test_every_event_name_parses_back_to_its_event() -> None:
    text = ",".join(EVENT_NAMES.values())
    assert events.parse_event_names(text) == frozenset(EVENT_NAMES)
    assert events.parse_event_names(" Logon , created ") == {
        E.IoSessionEventLogon,
        E.IoSessionEventCreated,
    }


@pytest.mark.parametrize("text", ["", ",", "login", "created,bogus"])
def test_unknown_event_names_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        events.parse_event_names(text)


def test_arguments() -> None:
    args = parser().parse_args(
        ["--json", "--session", "3", "--session", "4", "--events", "logon", "--no-audit"]
    )
    assert (args.json, args.session, args.events) == (True, [3, 4], {E.IoSessionEventLogon})
    assert (args.no_audit, args.no_logind, args.existing) == (True, False, False)
    assert args.rescan_interval > 0
    with pytest.raises(SystemExit):
        parser().parse_args(["--session", "x"])


def test_json_row_has_the_documented_fields() -> None:
    event = SessionEvent(
        41, SessionId(7), E.IoSessionEventLogoff, S.IoSessionStateLoggedOff, True, True, "d=1"
    )
    row = events.event_row(event, WHEN)
    assert json.loads(json.dumps(row)) == {
        "time": "2026-03-01T12:00:01.250000+00:00",
        "sequence": 41,
        "session": 7,
        "event": "logoff",
        "state": "logged_off",
        "synthesized": True,
        "local": True,
        "detail": "d=1",
    }


def test_human_line_shows_time_session_event_state_marker_and_detail() -> None:
    event = SessionEvent(
        2, SessionId(12), E.IoSessionEventConnected, S.IoSessionStateConnected, True, True, "x=y"
    )
    line = events.human_line(events.event_row(event, WHEN))
    local = WHEN.astimezone().strftime("%H:%M:%S.250")
    assert line.startswith(local + "  session 12 ")
    assert line.split()[3:] == ["connected", "connected", "synthesized", "x=y"]
    observed = SessionEvent(3, SessionId(12), E.IoSessionEventLogon, S.IoSessionStateLoggedOn, True)
    assert "observed" in events.human_line(events.event_row(observed, WHEN)).split()
