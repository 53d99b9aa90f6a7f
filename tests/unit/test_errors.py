from __future__ import annotations

import pytest

from sessionio.errors import AccessDenied, NoSuchProcess, RuleError, SessionioError


def test_rule_error_names_file_line_and_column() -> None:
    err = RuleError("unknown action 'permit'", path="rules.toml", line=7, column=10)
    assert str(err) == "rules.toml:7:10: unknown action 'permit'"
    assert (err.path, err.line, err.column) == ("rules.toml", 7, 10)


def test_access_denied_is_a_permission_error_and_a_sessionio_error() -> None:
    with pytest.raises(PermissionError):
        raise AccessDenied(1, "init")
    with pytest.raises(SessionioError):
        raise NoSuchProcess(12345)


def test_process_errors_carry_pid_and_name() -> None:
    err = NoSuchProcess(4242, "cat")
    assert err.pid == 4242
    assert "pid=4242" in str(err) and "'cat'" in str(err)
