"""The exception vocabulary of sessionio, small on purpose (as psutil's).

Every error the library raises on purpose derives from :class:`SessionioError`, so callers can
catch one name. Where a builtin already means the same thing the class also derives from it
(``AccessDenied`` is a ``PermissionError``), so ``except PermissionError`` keeps working.

::

    SessionioError
    ├── UnsupportedPlatformError          not Linux, or a kernel feature is missing (.feature)
    ├── PrivilegeError(PermissionError)   a capability is missing (.capability)
    ├── ProcessError                      about one process (.pid, .name)
    │   ├── NoSuchProcess                 it exited (or never was) while we looked
    │   └── AccessDenied(PermissionError) the kernel refused to tell us
    ├── NoSuchSession                     no session has that id
    ├── ProtocolError
    │   ├── MalformedEventError           bytes from the kernel that do not parse
    │   └── UsageError                    a caller misused a sans-I/O object
    ├── RequestorUnknown                  the operation has no requesting thread
    ├── IllegalTransitionError            a session event the state table does not allow
    ├── BugCheck                          what would stop a Windows machine (Driver Verifier)
    │   └── IrqlNotLessOrEqual            a routine called above its documented IRQL
    ├── RegistrationError                 duplicate altitude or IoObject, unknown filter
    ├── RuleError                         a rule file is invalid (.path, .line, .column)
    ├── SessionServiceError               logind / D-Bus failed (.dbus_error_name)
    ├── ClosedResourceError               we closed it ourselves
    └── BrokenResourceError               the kernel or the peer broke it (overflow, ENOBUFS)

The Windows surface keeps its own conventions on top of these: ``sessionio.nt`` routines return
NTSTATUS values, and ``sessionio.nt.error`` is pywin32's ``error`` shape.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BrokenResourceError",
    "ClosedResourceError",
    "BugCheck",
    "RegistrationError",
    "RequestorUnknown",
    "IllegalTransitionError",
    "IrqlNotLessOrEqual",
    "MalformedEventError",
    "NoSuchProcess",
    "NoSuchSession",
    "PrivilegeError",
    "ProcessError",
    "ProtocolError",
    "RuleError",
    "SessionServiceError",
    "SessionioError",
    "UnsupportedPlatformError",
    "UsageError",
]


class SessionioError(Exception):
    """Base of every error sessionio raises on purpose."""

    __module__ = "sessionio"


class UnsupportedPlatformError(SessionioError):
    """This machine cannot do it: not Linux, or a kernel feature is missing."""

    __module__ = "sessionio"

    def __init__(self, message: str, *, feature: str | None = None) -> None:
        super().__init__(message)
        self.feature = feature


class PrivilegeError(SessionioError, PermissionError):
    """A capability is missing (the CLI exits 77, EX_NOPERM)."""

    __module__ = "sessionio"

    def __init__(self, message: str, *, capability: str) -> None:
        super().__init__(message)
        self.capability = capability

    def __str__(self) -> str:
        return str(self.args[0])


class ProcessError(SessionioError):
    """Something about one process; carries its pid and, when known, its name."""

    __module__ = "sessionio"

    def __init__(self, pid: int, name: str | None = None, msg: str | None = None) -> None:
        self.pid = pid
        self.name = name
        self.msg = msg or self._default_msg()
        super().__init__(self.msg)

    def _default_msg(self) -> str:
        return "process error"

    def __str__(self) -> str:
        who = f"pid={self.pid}" + (f", name={self.name!r}" if self.name else "")
        return f"{self.msg} ({who})"


class NoSuchProcess(ProcessError):
    """The process does not exist, or exited (or was replaced) while we read it."""

    __module__ = "sessionio"

    def _default_msg(self) -> str:
        return "process no longer exists"


class AccessDenied(ProcessError, PermissionError):
    """The kernel refused to tell us about the process."""

    __module__ = "sessionio"

    def _default_msg(self) -> str:
        return "access denied"


class NoSuchSession(SessionioError, LookupError):
    """No session has that id."""

    __module__ = "sessionio"

    def __init__(self, session_id: int) -> None:
        super().__init__(f"no session with id {session_id}")
        self.session_id = session_id


class ProtocolError(SessionioError):
    """A wire format was violated; see the two subclasses for who violated it."""

    __module__ = "sessionio"


class MalformedEventError(ProtocolError, ValueError):
    """The kernel (or a peer) sent bytes that do not parse: short, inconsistent, unknown version."""

    __module__ = "sessionio"


class UsageError(ProtocolError):
    """A caller used a sans-I/O object in a way its protocol does not allow."""

    __module__ = "sessionio"


class IllegalTransitionError(SessionioError):
    """A session event that the documented state table does not allow from the current state.

    Raised instead of delivering it: no source, live or simulated, may deliver an illegal
    transition.
    """

    __module__ = "sessionio"

    def __init__(self, session_id: int, state: str, event: str) -> None:
        super().__init__(f"session {session_id}: event {event} is not allowed in state {state}")
        self.session_id = session_id
        self.state = state
        self.event = event


class RequestorUnknown(SessionioError, LookupError):
    """The operation is not associated with any thread, so it has no requestor.

    The Pythonic face of what the Windows routines report as NULL, 0 or STATUS_UNSUCCESSFUL.
    """

    __module__ = "sessionio"


class BugCheck(SessionioError):
    """What would stop a Windows machine: raised by the simulated kernel, as Driver Verifier would.

    ``code`` is the Windows bug check name (IRQL_NOT_LESS_OR_EQUAL, ...).
    """

    __module__ = "sessionio"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class IrqlNotLessOrEqual(BugCheck):
    """A routine was called above its documented IRQL."""

    __module__ = "sessionio"

    def __init__(self, routine: str, required: str, current: str) -> None:
        super().__init__(
            "IRQL_NOT_LESS_OR_EQUAL", f"{routine} requires IRQL <= {required}, called at {current}"
        )
        self.routine = routine
        self.required = required
        self.current = current


class RegistrationError(SessionioError, ValueError):
    """A registration was refused: an altitude is taken, an IoObject is already registered."""

    __module__ = "sessionio"


class RuleError(SessionioError, ValueError):
    """A rule file is invalid. Names the file, line and column; the file is never half-loaded."""

    __module__ = "sessionio"

    def __init__(
        self, message: str, *, path: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        where = path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


class SessionServiceError(SessionioError):
    """systemd-logind (or the D-Bus system bus) failed to answer as documented."""

    __module__ = "sessionio"

    def __init__(self, message: str, *, dbus_error_name: str | None = None) -> None:
        super().__init__(message)
        self.dbus_error_name = dbus_error_name


class ClosedResourceError(SessionioError):
    """We closed this resource ourselves and then used it."""

    __module__ = "sessionio"


class BrokenResourceError(SessionioError):
    """The kernel or the peer broke the resource (queue overflow, ENOBUFS, bus gone)."""

    __module__ = "sessionio"
