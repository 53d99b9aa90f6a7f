"""Test tiers: pure (tests/unit), live (tests/live: root, real kernel) and D-Bus (tests/dbus).

Live and D-Bus tests skip on a machine that cannot run them, unless ``SESSIONIO_LIVE=require``
(set by ``make test`` and CI): then a missing facility is an error, never a silent skip.
"""

from __future__ import annotations

import os
import shutil

import pytest


def _live_required() -> bool:
    return os.environ.get("SESSIONIO_LIVE") == "require"


def _missing_live_facility() -> str | None:
    if os.geteuid() != 0:
        return "live tests need root"
    if not os.path.exists("/proc/self/loginuid"):
        return "the kernel has no audit loginuid support"
    return None


def _missing_dbus_facility() -> str | None:
    if os.geteuid() != 0:
        return "D-Bus tests make real audit sessions and need root"
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed"
    if not os.path.exists("/usr/lib/python3/dist-packages/dbusmock"):
        return "python3-dbusmock is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live_missing = _missing_live_facility()
    dbus_missing = _missing_dbus_facility()
    for item in items:
        path = str(item.path)
        if os.sep + "live" + os.sep in path:
            item.add_marker(pytest.mark.live)
            missing = live_missing
        elif os.sep + "dbus" + os.sep in path:
            item.add_marker(pytest.mark.dbus)
            missing = dbus_missing
        else:
            continue
        if missing is None:
            continue
        if _live_required():
            item.add_marker(pytest.mark.usefixtures("_fail_missing_facility"))
        else:
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture
def _fail_missing_facility(request: pytest.FixtureRequest) -> None:
    path = str(request.node.path)
    missing = _missing_live_facility() if os.sep + "live" + os.sep in path else None
    missing = missing or _missing_dbus_facility()
    pytest.fail(f"SESSIONIO_LIVE=require but {missing}")
