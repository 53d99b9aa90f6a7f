"""``sessionio check-rules`` in-process: a good file's summary (human and --json), and every kind
of rule-file error reported as ``FILE:LINE:COL: message`` on stderr with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessionio.cli.main import main
from tests.unit.rules.test_loader import ERRORS, EXAMPLE, marked


def write(tmp_path: Path, text: str | bytes, name: str = "payroll.toml") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return str(path)


def test_a_good_file_prints_its_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, EXAMPLE)

    assert main(["check-rules", path]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        f"{path}: OK, 2 rules",
        "  default: allow",
        "  decision_timeout_ms: 200",
        "  on_timeout: allow",
        "  1. deny   payroll is not for session 7 or remote sessions (line 5)",
        "  2. audit  audit the rest of payroll (line 14)",
    ]


def test_json_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.replace('default = "allow"', 'default = "deny"').replace(
        "decision_timeout_ms = 200", "decision_timeout_ms = 50"
    )
    path = write(tmp_path, text.replace('on_timeout = "allow"', 'on_timeout = "deny"'))

    assert main(["check-rules", "--json", path]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "file": path,
        "default": "deny",
        "decision_timeout_ms": 50,
        "on_timeout": "deny",
        "rules": [
            {
                "name": "payroll is not for session 7 or remote sessions",
                "action": "deny",
                "line": 5,
            },
            {"name": "audit the rest of payroll", "action": "audit", "line": 14},
        ],
    }


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_each_error_is_file_line_col_on_stderr_and_exit_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marked_text, words = ERRORS[case]
    text, line, column = marked(marked_text)
    path = write(tmp_path, text)

    assert main(["check-rules", path]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1
    prefix = f"{path}:{line}:{column}: "
    assert err.startswith(prefix), err
    assert words in err


def test_json_does_not_change_how_errors_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[[rule]]\nname = "a"\naction = "reject"\n')

    assert main(["check-rules", "--json", path]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{path}:3:10: ") and "unknown action 'reject'" in err


def test_a_file_that_is_not_utf8_names_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, b'default = "allow"\n[[rule]]\nname = "caf\xe9"\n')

    assert main(["check-rules", path]) == 1

    assert capsys.readouterr().err.startswith(f"{path}:3:12: the file is not UTF-8 text")


def test_a_missing_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "nowhere.toml")

    assert main(["check-rules", path]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}: cannot read the rule file: No such file or directory\n"


def test_without_a_file_it_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-rules"])
    assert exited.value.code == 2
    assert "RULES" in capsys.readouterr().err
