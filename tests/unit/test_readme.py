"""Every ```python block of README.md runs as written (a tour that rots is worse than none)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_runnable_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(source: str) -> None:
    exec(compile(source, str(README), "exec"), {"__name__": "readme"})


def test_readme_rule_file_loads_and_denies_session_7_and_remote_sessions() -> None:
    from sessionio.rules.loader import parse_rules
    from sessionio.rules.match import RequestFacts, evaluate
    from sessionio.rules.schema import Action, Operation, Verdict

    [toml] = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    ruleset = parse_rules(toml, "README.md")

    def decide(session_id: int, remote: bool | None) -> tuple[Verdict, Action | None]:
        facts = RequestFacts(
            operation=Operation.OPEN,
            path="/srv/payroll/2026.csv",
            pid=100,
            comm="cat",
            exe="/usr/bin/cat",
            uid=1000,
            session_id=session_id,
            session_user="alice",
            session_remote=remote,
        )
        decision = evaluate(ruleset, facts)
        return decision.verdict, decision.action

    assert decide(7, False) == (Verdict.DENY, Action.DENY)
    assert decide(8, True) == (Verdict.DENY, Action.DENY)
    assert decide(8, False) == (Verdict.ALLOW, Action.AUDIT)
