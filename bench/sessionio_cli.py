"""Running the ``sessionio`` commands under test exactly as a user would: the installed script.

The benchmark never imports the engine to drive it; it starts ``sessionio enforce`` and
``sessionio watch`` as processes, so that what is measured includes the interpreter, the CLI and
the output, like the C programs it is compared with.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

from bench.errors import Unavailable
from bench.processes import Daemon, pinned
from bench.workspace import Workspace

__all__ = [
    "enforce_rules",
    "enforce_stats",
    "require_subcommand",
    "sessionio_script",
    "start_enforce",
]


def sessionio_script() -> Path:
    """The ``sessionio`` console script of the interpreter running the benchmark (the venv's)."""
    return Path(sys.executable).with_name("sessionio")


def require_subcommand(name: str) -> None:
    """Unavailable unless ``sessionio NAME --help`` works (the command may not be written yet)."""
    script = sessionio_script()
    if not script.exists():
        raise Unavailable(f"{script} is not installed (pip install -e .)")
    done = subprocess.run(
        [str(script), name, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"`sessionio {name}` is not available: {reason}")


def enforce_rules(workspace: Workspace) -> str:
    """The rule file: session-aware for ``hot/`` (never cacheable), silent about ``cold/``.

    Processes without a login session (daemons) or from a remote session may not open the hot
    tree. The verdict depends on the requester's session, so no kernel ignore mark can answer
    for it and every open there is evaluated; the opener runs in a local audit session of its
    own and is allowed. Nothing names ``cold/``: its allow is the same for everyone.
    """
    hot = workspace.hot_dir
    return (
        "# sessionio benchmark rules (bench/sessionio_cli.py)\n"
        'default = "allow"\n'
        "\n"
        "[[rule]]\n"
        'name = "daemons and remote sessions may not open the hot tree"\n'
        'action = "deny"\n'
        'operations = ["open"]\n'
        f'paths = ["{hot}", "{hot}/**"]\n'
        "session = { none = true, remote = true }\n"
    )


def start_enforce(workspace: Workspace, name: str, cpu: int | None) -> Daemon:
    """Start ``sessionio enforce RULES TREE`` (not yet waited for: see :func:`ready`)."""
    require_subcommand("enforce")
    rules = workspace.scratch / "bench-rules.toml"
    rules.write_text(enforce_rules(workspace), encoding="utf-8")
    argv = [str(sessionio_script()), "enforce", str(rules), str(workspace.enforce.path)]
    # SIGTERM: the documented clean stop (exit 0), after which it logs its final counters.
    return Daemon(name, pinned(argv, cpu), workspace.scratch, stop_signal=signal.SIGTERM)


def enforce_stats(daemon: Daemon) -> dict[str, object]:
    """The last ``{"event": "stats"}`` record ``sessionio enforce`` logged (its counters).

    Its stdout is the decision log (JSON lines); the final stats record is written on exit.
    Empty if there is none.
    """
    found: dict[str, object] = {}
    with open(daemon.stdout_path, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            if '"stats"' not in line:
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == "stats":
                    found = record
    return found
