"""A private system bus with a mock systemd-logind on it, for tests that need logind.

``LogindMock`` starts a private ``dbus-daemon`` (system-bus type, allow-all policy, a unix
socket in a temporary directory) and python-dbusmock's ``logind`` template on it, then drives
the mock through its ``org.freedesktop.DBus.Mock`` interface with typed methods, so that no test
writes the mock's method-code strings itself. It fills the template's gaps (see
linux-mechanisms.md §4): the template announces no SessionNew / SessionRemoved, and has no
GetSessionByPID.

The mock runs under the system Python (``/usr/bin/python3``, which has dbus-python and gi from
python3-dbusmock); the test process only talks to it over D-Bus. Nothing here needs root.

::

    with LogindMock() as logind:
        logind.add_session("1", uid=1000, user="alice")
        logind.set_session_properties("1", Remote=True, RemoteHost="198.51.100.7")
        client = LogindClient.connect(logind.address)
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from jeepney import (  # type: ignore[import-untyped, unused-ignore]
    DBusAddress,
    MatchRule,
    MessageType,
    message_bus,
    new_method_call,
)

from sessionio.errors import SessionServiceError, UnsupportedPlatformError
from sessionio.linux.logind import BusConnection
from sessionio.linux.resource import Resource
from sessionio.protocols.logind import (
    LOGIND_BUS_NAME,
    MANAGER_INTERFACE,
    MANAGER_PATH,
    SESSION_INTERFACE,
    SESSION_PATH_PREFIX,
    SESSION_PROPERTY_SIGNATURES,
)

__all__ = ["MOCK_INTERFACE", "SYSTEM_PYTHON", "LogindMock", "PrivateSystemBus"]

MOCK_INTERFACE: Final = "org.freedesktop.DBus.Mock"
SYSTEM_PYTHON: Final = "/usr/bin/python3"

_BUS_CONFIG: Final = """<!DOCTYPE busconfig
 PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

_SESSION_ID: Final = re.compile(r"[A-Za-z0-9]+")
# Fixed for a session's life in logind; the template also stores User/Seat as structs that its
# UpdateProperties cannot re-wrap.
_CONSTANT_PROPERTIES: Final = frozenset({"Id", "User", "Name", "Seat"})


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it is still running after ``timeout``; always reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PrivateSystemBus(Resource):
    """A private ``dbus-daemon`` of the system type, on a unix socket in a temporary directory.

    Its ``address`` is what ``DBUS_SYSTEM_BUS_ADDRESS`` would hold. The daemon and the
    directory are removed on ``close()`` (or leaving the ``with`` block).
    """

    def __init__(self, *, dbus_daemon: str = "dbus-daemon", timeout: float = 10.0) -> None:
        executable = shutil.which(dbus_daemon)
        if executable is None:
            raise UnsupportedPlatformError(f"{dbus_daemon} is not installed", feature="dbus-daemon")
        self.directory = Path(tempfile.mkdtemp(prefix="sessionio-dbus-"))
        self._daemon: subprocess.Popen[bytes] | None = None
        try:
            self.address = self._start(executable, timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, executable: str, timeout: float) -> str:
        config = self.directory / "system.conf"
        config.write_text(_BUS_CONFIG.format(socket=self.directory / "system_bus_socket"))
        with open(self.directory / "dbus-daemon.log", "wb") as log:
            self._daemon = subprocess.Popen(
                [
                    executable,
                    f"--config-file={config}",
                    "--nofork",
                    "--nopidfile",
                    "--nosyslog",
                    "--print-address=1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self._daemon.stdout is not None
        # The daemon prints its address once it listens: that line is the readiness signal.
        line = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._daemon.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise SessionServiceError(f"dbus-daemon printed no address in {timeout} s")
                chunk = os.read(self._daemon.stdout.fileno(), 4096)
                if not chunk:
                    raise SessionServiceError(f"dbus-daemon exited: {self.log('dbus-daemon')}")
                line += chunk
        self._daemon.stdout.close()
        return line.decode().strip()

    def log(self, name: str) -> str:
        """The tail of a process's log in the bus directory (for failure messages)."""
        try:
            return (self.directory / f"{name}.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self._daemon is not None:
            _stop(self._daemon, 5.0)
            self._daemon = None
        shutil.rmtree(self.directory, ignore_errors=True)


def _variant(name: str, value: object) -> tuple[str, object]:
    """A Session property value as a jeepney variant, typed by its logind signature."""
    signature = SESSION_PROPERTY_SIGNATURES.get(name)
    if signature is None:
        raise TypeError(f"{name!r} is not an org.freedesktop.login1.Session property")
    if name in _CONSTANT_PROPERTIES:
        raise ValueError(f"{name} does not change during a logind session")
    expected: type = {"s": str, "b": bool, "u": int, "t": int}[signature]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise TypeError(f"{name} ({signature}) cannot be {value!r}")
    return signature, value


class LogindMock(Resource):
    """dbusmock's logind template on a private system bus, with typed controls.

    ``address`` is the bus to give ``LogindClient.connect``. Session ids must be logind-valid
    (``[A-Za-z0-9]+``): the template puts session ID at ``.../session/ID`` without escaping,
    which equals real logind's escaped path for such ids except a leading digit ("1" is
    ``_31`` there), and every path-to-id decoding agrees on both.
    """

    def __init__(
        self,
        *,
        python: str = SYSTEM_PYTHON,
        parameters: Mapping[str, object] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not os.access(python, os.X_OK):
            raise UnsupportedPlatformError(f"{python} cannot run dbusmock", feature="dbusmock")
        self._bus = PrivateSystemBus(timeout=timeout)
        self._mock: subprocess.Popen[bytes] | None = None
        self._control: BusConnection | None = None
        try:
            self._start(python, parameters, timeout)
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> str:
        return self._bus.address

    def _start(self, python: str, parameters: Mapping[str, object] | None, timeout: float) -> None:
        self._control = BusConnection.open(self.address, timeout)
        if self._control is None:
            raise SessionServiceError(f"cannot connect to the private bus at {self.address}")
        owner_changed = MatchRule(
            type="signal",
            sender="org.freedesktop.DBus",
            interface="org.freedesktop.DBus",
            member="NameOwnerChanged",
        )
        owner_changed.add_arg_condition(0, LOGIND_BUS_NAME)
        self._control.call(message_bus.AddMatch(owner_changed))

        directory = self._bus.directory
        argv = [python, "-m", "dbusmock", "--system", "--template", "logind"]
        argv += ["--logfile", str(directory / "calls.log")]
        if parameters:
            argv += ["--parameters", json.dumps(dict(parameters))]
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "PYTHONHOME")}
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        with open(directory / "dbusmock.log", "wb") as log:
            self._mock = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        self._wait_for_name(timeout)

    def _wait_for_name(self, timeout: float) -> None:
        """Block until the mock owns org.freedesktop.login1 (its NameOwnerChanged signal)."""
        assert self._control is not None and self._mock is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if self._mock.poll() is not None:
                raise SessionServiceError(f"dbusmock exited: {self._bus.log('dbusmock')}")
            # A short wait so that a mock that dies is noticed; the signal is the real event.
            message = self._control.receive(min(remaining, 0.2))
            if (
                message is not None
                and message.header.message_type is MessageType.signal
                and message.body[0] == LOGIND_BUS_NAME
                and message.body[2]
            ):
                return
        raise SessionServiceError(f"dbusmock did not own {LOGIND_BUS_NAME} within {timeout} s")

    def close(self) -> None:
        """Stop the mock and the bus, and remove their directory."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._mock is not None:
            _stop(self._mock, 5.0)
            self._mock = None
        self._bus.close()

    # -- driving the mock -------------------------------------------------------------------------

    def _call(
        self, path: str, interface: str, method: str, signature: str, body: tuple[Any, ...]
    ) -> tuple[object, ...]:
        if self._control is None:
            raise SessionServiceError("the logind mock is closed")
        target = DBusAddress(path, bus_name=LOGIND_BUS_NAME, interface=interface)
        return self._control.call(new_method_call(target, method, signature, body))

    def session_path(self, session_id: str) -> str:
        """Where the template puts a session (its id appended, not escaped)."""
        if _SESSION_ID.fullmatch(session_id) is None:
            raise ValueError(f"{session_id!r} is not a logind session id ([A-Za-z0-9]+)")
        return SESSION_PATH_PREFIX + session_id

    def add_session(
        self,
        session_id: str,
        seat: str = "seat0",
        uid: int = 1000,
        user: str = "user",
        active: bool = True,
    ) -> str:
        """Create a session (and its seat and user if new); returns its object path.

        The template sends no SessionNew (real logind does): call ``emit_session_new``.
        """
        self.session_path(session_id)
        (path,) = self._call(
            MANAGER_PATH,
            MOCK_INTERFACE,
            "AddSession",
            "ssusb",
            (session_id, seat, uid, user, active),
        )
        if not isinstance(path, str):
            raise SessionServiceError(f"AddSession answered {path!r}")
        return path

    def set_session_properties(self, session_id: str, **properties: object) -> None:
        """Change Session properties by their D-Bus names, in one PropertiesChanged signal.

        ``set_session_properties("1", Remote=True, RemoteHost="198.51.100.7", State="closing")``.
        Values are checked against logind's signatures; Id, User, Name and Seat are refused
        (they never change in logind).
        """
        changes = {name: _variant(name, value) for name, value in properties.items()}
        self._call(
            self.session_path(session_id),
            MOCK_INTERFACE,
            "UpdateProperties",
            "sa{sv}",
            (SESSION_INTERFACE, changes),
        )

    def _emit_manager_signal(self, member: str, session_id: str) -> None:
        args = [("s", session_id), ("o", self.session_path(session_id))]
        self._call(
            MANAGER_PATH,
            MOCK_INTERFACE,
            "EmitSignal",
            "sssav",
            (MANAGER_INTERFACE, member, "so", args),
        )

    def emit_session_new(self, session_id: str) -> None:
        """Send Manager.SessionNew for a session (after ``add_session``)."""
        self._emit_manager_signal("SessionNew", session_id)

    def remove_session(self, session_id: str) -> None:
        """Remove the session object and send Manager.SessionRemoved, as logind does."""
        self._call(
            MANAGER_PATH, MOCK_INTERFACE, "RemoveObject", "s", (self.session_path(session_id),)
        )
        self._emit_manager_signal("SessionRemoved", session_id)

    def add_method(
        self,
        name: str,
        in_signature: str,
        out_signature: str,
        code: str = "",
        *,
        interface: str = MANAGER_INTERFACE,
        path: str = MANAGER_PATH,
    ) -> None:
        """dbusmock's AddMethod: ``code`` is Python run in the mock (``args``, ``ret``)."""
        self._call(
            path,
            MOCK_INTERFACE,
            "AddMethod",
            "sssss",
            (interface, name, in_signature, out_signature, code),
        )

    def set_sessions_by_pid(self, sessions: Mapping[int, str]) -> None:
        """Install Manager.GetSessionByPID answering from ``{pid: session_id}``.

        Unknown pids get logind's org.freedesktop.login1.NoSessionForPID error.
        """
        table = {int(pid): self.session_path(sid) for pid, sid in sessions.items()}
        code = (
            f"table = {table!r}\n"
            "if int(args[0]) not in table:\n"
            "    raise dbus.exceptions.DBusException(\n"
            "        'PID %d does not belong to any known session' % args[0],\n"
            "        name='org.freedesktop.login1.NoSessionForPID')\n"
            "ret = dbus.ObjectPath(table[int(args[0])])\n"
        )
        self.add_method("GetSessionByPID", "u", "o", code)
