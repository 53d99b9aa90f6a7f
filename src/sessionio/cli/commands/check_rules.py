"""``sessionio check-rules RULES``: validate a rule file the way ``enforce`` would load it.

Errors go to stderr as ``FILE:LINE:COL: message``, the compiler convention editors and CI
annotators jump to, and exit 1; a good file prints a summary and exits 0.
"""

from __future__ import annotations

import argparse
import sys

from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.cli.output import Output
from sessionio.errors import RuleError
from sessionio.rules.loader import load_rules
from sessionio.rules.schema import RuleSet

__all__ = ["COMMAND", "summary"]


def summary(ruleset: RuleSet) -> dict[str, object]:
    """The ``--json`` object: the settings, and each rule's name, action and line."""
    return {
        "file": ruleset.source,
        "default": str(ruleset.default),
        "decision_timeout_ms": ruleset.decision_timeout_ms,
        "on_timeout": str(ruleset.on_timeout),
        "rules": [
            {"name": rule.name, "action": str(rule.action), "line": rule.line}
            for rule in ruleset.rules
        ],
    }


def _human(ruleset: RuleSet) -> str:
    count = len(ruleset.rules)
    lines = [
        f"{ruleset.source}: OK, {count} rule{'' if count == 1 else 's'}",
        f"  default: {ruleset.default}",
        f"  decision_timeout_ms: {ruleset.decision_timeout_ms}",
        f"  on_timeout: {ruleset.on_timeout}",
    ]
    width = max((len(str(rule.action)) for rule in ruleset.rules), default=0)
    for index, rule in enumerate(ruleset.rules, 1):
        where = f" (line {rule.line})" if rule.line else ""
        lines.append(f"  {index}. {str(rule.action).ljust(width)}  {rule.name}{where}")
    return "\n".join(lines)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rules", metavar="RULES", help="the rule file (TOML) to check")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _run(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.rules)
    except RuleError as err:
        print(err, file=sys.stderr)
        return ExitCode.FAILURE
    Output(json_lines=args.json).record(summary(ruleset), _human(ruleset))
    return ExitCode.OK


COMMAND = Command(
    name="check_rules",
    help="check a rule file and summarise it",
    description=(
        "Load a rule file as enforce would. A valid file prints a summary (its rules, default "
        "verdict, decision timeout and on_timeout verdict; --json as one object) and exits 0; "
        "an invalid one prints FILE:LINE:COL: message on stderr and exits 1."
    ),
    configure=_configure,
    run=_run,
)
