"""Entry point of the ``sessionio`` command: the subcommand registry and the exit-code mapping."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import sessionio
from sessionio.cli.command import Command
from sessionio.cli.exit_codes import ExitCode
from sessionio.errors import PrivilegeError, RuleError, SessionioError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[str, ...] = (
    "ps",
    "sessions",
    "session_of",
    "watch",
    "enforce",
    "check_rules",
    "events",
)
"""Modules under ``sessionio.cli.commands``, in the order ``--help`` lists them."""


def _load_commands() -> list[Command]:
    commands = []
    for module_name in COMMANDS:
        try:
            module = importlib.import_module(f"sessionio.cli.commands.{module_name}")
        except ModuleNotFoundError as err:
            if err.name != f"sessionio.cli.commands.{module_name}":
                raise
            continue
        commands.append(module.COMMAND)
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionio",
        description=(
            "Which process, from which login session, asked for each file operation on this "
            "machine; allow or deny it by rules; follow session changes."
        ),
        epilog="Exit codes: 0 ok, 1 failure, 2 usage, 77 missing privilege, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"sessionio {sessionio.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _load_commands():
        sub = subparsers.add_parser(
            command.name.replace("_", "-"),
            help=command.help,
            description=command.description,
        )
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except PrivilegeError as err:
        print(f"sessionio: {err}", file=sys.stderr)
        return ExitCode.NO_PERMISSION
    except RuleError as err:
        print(f"sessionio: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    except SessionioError as err:
        print(f"sessionio: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    except BrokenPipeError:
        return ExitCode.FAILURE
