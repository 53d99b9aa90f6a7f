"""Rule files: TOML text in, a complete RuleSet out, or one RuleError naming file, line and column.

The language, exactly (first match wins, as in fapolicyd)::

    default = "allow"          # no rule matched: "allow" | "deny"           (default "allow")
    decision_timeout_ms = 200  # a positive integer                          (default 200)
    on_timeout = "allow"       # a filter ran past the timeout: "allow" | "deny" (default "allow")

    [[rule]]                   # rules are tried in file order; the first that matches decides
    name = "..."               # required, unique, non-empty
    action = "deny"            # required: "allow" | "deny" | "audit" (audit = allow, and log it)
    operations = ["open"]      # open, read, exec, modify, close_write, create, delete, rename
    paths = ["/srv/payroll/**"]    # path globs (sessionio.rules.schema has the dialect)
    [rule.session]             # which sessions: id = [ints], user = [names], none, remote
    [rule.process]             # which processes: exe = [globs], comm = [globs], uid = [ints]

How conditions combine:

- A rule matches a request when **every condition it has** holds: ``operations``, ``paths``,
  ``[rule.session]`` and ``[rule.process]`` are AND-ed. A condition that is absent does not
  constrain (a rule without ``paths`` concerns every path).
- Inside any list, the values are OR-ed: ``operations = ["open", "exec"]`` is "open or exec",
  ``paths`` matches if any pattern does, ``id = [7, 9]`` is "session 7 or 9".
- In ``[rule.session]`` the keys are **selectors, OR-ed with each other**: ``id``, ``user``,
  ``none`` and ``remote`` are alternative ways to name sessions, and a request's session is
  selected when any of them selects it. ``id = [7]`` with ``remote = true`` is "session 7, or any
  remote session". ``none = true`` selects requests that have no session (id -1: daemons, kernel
  threads); ``none = false`` would select nothing and is an error. ``remote = true`` selects
  sessions known to be remote, ``remote = false`` sessions known to be local; a session whose
  remoteness is unknown, and the no-session case, are selected by neither. ``user`` names the
  session's user (the loginuid's name); a session whose user is unknown is not selected by it.
  "Alice's remote sessions" cannot be written in one rule: the table is a union, on purpose, so
  that adding a selector only ever widens what it names.
- In ``[rule.process]`` the keys are **restrictions, AND-ed**: ``exe``, ``comm`` and ``uid`` must
  all hold (each one with its list OR-ed). ``exe = ["/usr/bin/*"]`` with ``uid = [0]`` is "a
  root process running a program from /usr/bin". A fact the kernel could not tell (the exe or
  uid of a process already gone) fails the key that needs it.
- ``session`` and ``process`` may also be written as inline tables (``session = { id = [7] }``).

What is an error (raised as :class:`sessionio.errors.RuleError` with the file, and the line and
column of the offending key or value; nothing is ever half-loaded):
TOML syntax; an unknown key anywhere (a typo must not silently widen a policy); a value of the
wrong type (``true`` is not an integer, ``"open"`` is not a list); an unknown verdict, action or
operation; an empty list or an empty table (it would match nothing, or hide a typo); a path
pattern that is relative, not canonical or misuses ``**``/``[``; a ``comm`` longer than the 15
bytes the kernel keeps; a session id or uid out of range (``-1`` is written ``none = true``); a
non-positive timeout; a rule without ``name`` or ``action``; a ``[[rule]]`` with nothing in it;
two rules with the same name; and a rule after a rule without any condition (it could never
match).

The locator behind the line numbers is a small scanner for TOML that tomllib has already
accepted; tomllib itself reports positions only for syntax errors. When it cannot place a key
(an exotic but valid spelling), the error points at the enclosing table's header instead.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import enum
import os
import re
import tomllib
from collections.abc import Callable
from typing import Literal, TypeVar

from sessionio.errors import RuleError
from sessionio.rules.schema import (
    Action,
    NameMatcher,
    Operation,
    PathMatcher,
    ProcessCondition,
    Rule,
    RuleSet,
    SessionCondition,
    Verdict,
    glob_to_regex,
    is_glob,
    name_glob_to_regex,
)

__all__ = [
    "DEFAULT_DECISION_TIMEOUT_MS",
    "DEFAULT_ON_TIMEOUT",
    "DEFAULT_VERDICT",
    "load_rules",
    "parse_rules",
]

DEFAULT_VERDICT = Verdict.ALLOW
DEFAULT_DECISION_TIMEOUT_MS = 200
DEFAULT_ON_TIMEOUT = Verdict.ALLOW

_TOP_KEYS = ("default", "decision_timeout_ms", "on_timeout", "rule")
_RULE_KEYS = ("name", "action", "operations", "paths", "session", "process")
_SESSION_KEYS = ("id", "user", "none", "remote")
_PROCESS_KEYS = ("exe", "comm", "uid")

# Audit session ids and uids are u32; 4294967295 is the kernel's "unset" (AUDIT_SID_UNSET).
_ID_MAX = 4294967294
# TASK_COMM_LEN is 16 with the NUL: the kernel keeps 15 bytes of a process name.
_COMM_MAX = 15

KeyPath = tuple[str | int, ...]
_E = TypeVar("_E", bound=enum.StrEnum)
_T = TypeVar("_T")


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Read and validate a rule file; raise RuleError (never half-load) if anything is wrong."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            data = stream.read()
    except OSError as err:
        raise RuleError(f"cannot read the rule file: {err.strerror}", path=source) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        column = len(data[line_start : err.start].decode("utf-8", "replace")) + 1
        raise RuleError(
            "the file is not UTF-8 text",
            path=source,
            line=data.count(b"\n", 0, err.start) + 1,
            column=column,
        ) from err
    return parse_rules(text, source)


def parse_rules(text: str, source: str) -> RuleSet:
    """Validate the TOML text of a rule file; ``source`` names it in errors and in the RuleSet."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _syntax_error(err, text, source) from err
    return _Builder(text, source).ruleset(document)


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_error(err: tomllib.TOMLDecodeError, text: str, source: str) -> RuleError:
    """Turn tomllib's message, which carries the position as text, into a located RuleError."""
    message = str(err)
    line: int | None = None
    column: int | None = None
    if match := _TOML_AT.search(message):
        line, column = int(match[1]), int(match[2])
        message = message[: match.start()]
    elif match := _TOML_AT_END.search(message):
        line, column = _position(text, len(text))
        message = message[: match.start()] + " at the end of the file"
    return RuleError(f"TOML syntax error: {message}", path=source, line=line, column=column)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _render(path: KeyPath) -> str:
    """``rule[1].session.id``: a key path the way a TOML reader would write it."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _type_name(value: object) -> str:
    names: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime.datetime, "a date-time"),
        (datetime.date, "a date"),
        (datetime.time, "a time"),
    ]
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _ScanError(Exception):
    """The scanner met something it does not understand; the locator keeps what it found."""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Locator:
    """Where each key and value of a TOML text is: key path -> character offset.

    A small scanner, not a parser: it only has to be right for text that tomllib accepted, so it
    skips values without checking them and records where keys, values and array elements start.
    Paths follow tomllib's result (``("rule", 1, "session", "id", 0)``); a ``[[rule]]`` header
    counts the array's elements, and ``[rule.session]`` resolves to the latest one, as TOML says.
    If the scan stops early on a spelling it does not know, what it found so far is kept.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self.keys: dict[KeyPath, int] = {}
        self.values: dict[KeyPath, int] = {}
        self._arrays_of_tables: dict[KeyPath, int] = {}
        with contextlib.suppress(_ScanError, IndexError, ValueError):
            self._document()

    def find(self, path: KeyPath, at: Literal["key", "value"]) -> tuple[int | None, int | None]:
        """Line and column of the path's key (or value), else of its nearest located ancestor."""
        first = (self.values, self.keys) if at == "value" else (self.keys, self.values)
        for table in first:
            if path in table:
                return _position(self._text, table[path])
        for end in range(len(path) - 1, 0, -1):
            for table in (self.keys, self.values):
                if path[:end] in table:
                    return _position(self._text, table[path[:end]])
        return None, None

    def line_of(self, path: KeyPath) -> int:
        """The line where exactly this path's key (or value) starts; 0 when it is not known."""
        for table in (self.keys, self.values):
            if path in table:
                return _position(self._text, table[path])[0]
        return 0

    # -- the scanner -------------------------------------------------------------------------

    def _peek(self, size: int = 1) -> str:
        return self._text[self._pos : self._pos + size]

    def _skip_spaces(self) -> None:
        while self._peek() in (" ", "\t"):
            self._pos += 1

    def _skip_blank(self) -> None:
        """Spaces, newlines and comments: what may separate statements and array elements."""
        while True:
            char = self._peek()
            if char in (" ", "\t", "\r", "\n"):
                self._pos += 1
            elif char == "#":
                end = self._text.find("\n", self._pos)
                self._pos = len(self._text) if end < 0 else end
            else:
                return

    def _expect(self, token: str) -> None:
        if self._peek(len(token)) != token:
            raise _ScanError(token)
        self._pos += len(token)

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip_blank()
            if self._pos >= len(self._text):
                return
            start = self._pos
            if self._peek(2) == "[[":
                self._pos += 2
                keys = self._key()
                self._skip_spaces()
                self._expect("]]")
                array = (*self._resolve(keys[:-1]), keys[-1][0])
                self.keys.setdefault(array, keys[-1][1])
                index = self._arrays_of_tables.get(array, 0)
                self._arrays_of_tables[array] = index + 1
                table = (*array, index)
                self.keys[table] = start
            elif self._peek() == "[":
                self._pos += 1
                keys = self._key()
                self._skip_spaces()
                self._expect("]")
                table = self._resolve(keys)
            else:
                self._key_value(table)

    def _resolve(self, keys: list[tuple[str, int]]) -> KeyPath:
        """A header's dotted key as a path, stepping into the latest element of each array."""
        path: KeyPath = ()
        for name, offset in keys:
            path = (*path, name)
            self.keys.setdefault(path, offset)
            if path in self._arrays_of_tables:
                path = (*path, self._arrays_of_tables[path] - 1)
        return path

    def _key(self) -> list[tuple[str, int]]:
        """A dotted key: each part's decoded name and offset."""
        parts: list[tuple[str, int]] = []
        while True:
            self._skip_spaces()
            offset = self._pos
            if self._peek() in ('"', "'"):
                self._string()
                raw = self._text[offset : self._pos]
                name = tomllib.loads(f"k = {raw}")["k"]
                if not isinstance(name, str):
                    raise _ScanError(raw)
            else:
                match = _BARE_KEY.match(self._text, self._pos)
                if match is None:
                    raise _ScanError("key")
                name = match[0]
                self._pos = match.end()
            parts.append((name, offset))
            self._skip_spaces()
            if self._peek() != ".":
                return parts
            self._pos += 1

    def _key_value(self, table: KeyPath) -> None:
        path = table
        for name, offset in self._key():
            path = (*path, name)
            self.keys.setdefault(path, offset)
        self._skip_spaces()
        self._expect("=")
        self._skip_spaces()
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        self.values.setdefault(path, self._pos)
        char = self._peek()
        if char in ('"', "'"):
            self._string()
        elif char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        elif char == "":
            raise _ScanError("value")
        else:
            # Numbers, booleans and dates (a date-time may hold a space): up to a delimiter.
            while self._peek() not in ("", ",", "]", "}", "\n", "#"):
                self._pos += 1

    def _array(self, path: KeyPath) -> None:
        self._pos += 1
        index = 0
        while True:
            self._skip_blank()
            if self._peek() == "]":
                self._pos += 1
                return
            self._value((*path, index))
            index += 1
            self._skip_blank()
            if self._peek() == ",":
                self._pos += 1
            elif self._peek() != "]":
                raise _ScanError("array")

    def _inline_table(self, path: KeyPath) -> None:
        self._pos += 1
        while True:
            self._skip_blank()
            if self._peek() == "}":
                self._pos += 1
                return
            self._key_value(path)
            self._skip_blank()
            if self._peek() == ",":
                self._pos += 1
            elif self._peek() != "}":
                raise _ScanError("inline table")

    def _string(self) -> None:
        quote = self._peek()
        escapes = quote == '"'
        delimiter = quote * 3
        if self._peek(3) == delimiter:
            self._pos += 3
            while self._pos < len(self._text):
                if escapes and self._peek() == "\\":
                    self._pos += 2
                elif self._peek(3) == delimiter:
                    self._pos += 3
                    # Up to two more quotes belong to the content, just before the delimiter.
                    for _ in range(2):
                        if self._peek() == quote:
                            self._pos += 1
                    return
                else:
                    self._pos += 1
            raise _ScanError("string")
        self._pos += 1
        while self._pos < len(self._text):
            char = self._peek()
            if escapes and char == "\\":
                self._pos += 2
            elif char == quote:
                self._pos += 1
                return
            else:
                self._pos += 1
        raise _ScanError("string")


class _Builder:
    """Validates a tomllib document into a RuleSet; every check raises at the exact spot."""

    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source
        self._locator: _Locator | None = None

    @property
    def locator(self) -> _Locator:
        if self._locator is None:
            self._locator = _Locator(self._text)
        return self._locator

    def error(
        self, path: KeyPath, message: str, *, at: Literal["key", "value"] = "value"
    ) -> RuleError:
        line, column = self.locator.find(path, at)
        where = _render(path)
        return RuleError(
            f"{where}: {message}" if where else message,
            path=self._source,
            line=line,
            column=column,
        )

    # -- the document ------------------------------------------------------------------------

    def ruleset(self, document: dict[str, object]) -> RuleSet:
        self.check_keys(document, (), _TOP_KEYS, "at the top level")
        default = self.optional(document, (), "default", self.verdict)
        timeout = self.optional(document, (), "decision_timeout_ms", self.timeout)
        on_timeout = self.optional(document, (), "on_timeout", self.verdict)
        return RuleSet(
            default=DEFAULT_VERDICT if default is None else default,
            decision_timeout_ms=DEFAULT_DECISION_TIMEOUT_MS if timeout is None else timeout,
            on_timeout=DEFAULT_ON_TIMEOUT if on_timeout is None else on_timeout,
            rules=self.rules(document.get("rule", [])),
            source=self._source,
        )

    def rules(self, value: object) -> tuple[Rule, ...]:
        path: KeyPath = ("rule",)
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(
                path,
                f"expected an array of tables (write each rule under its own [[rule]] header), "
                f"got {_type_name(value)}",
                at="key",
            )
        rules: list[Rule] = []
        names: dict[str, Rule] = {}
        for index, item in enumerate(value):
            rule = self.rule(item, (*path, index))
            if rule.name in names:
                raise self.error(
                    (*path, index, "name"),
                    f"duplicate rule name {rule.name!r} (first used at line "
                    f"{names[rule.name].line})",
                )
            names[rule.name] = rule
            if rules and rules[-1].unconditional:
                raise self.error(
                    (*path, index),
                    f"rule {rule.name!r} can never match: rule {rules[-1].name!r} "
                    f"(line {rules[-1].line}) before it has no condition and matches everything",
                    at="key",
                )
            rules.append(rule)
        return tuple(rules)

    def rule(self, table: dict[str, object], path: KeyPath) -> Rule:
        if not table:
            raise self.error(path, "empty rule: a rule needs at least a name and an action")
        self.check_keys(table, path, _RULE_KEYS, "in a rule")
        name = self.required(table, path, "name", self.string)
        action = self.required(table, path, "action", self.action)
        return Rule(
            name=name,
            action=action,
            operations=self.optional(table, path, "operations", self.operations),
            paths=self.optional(table, path, "paths", self.paths),
            session=self.optional(table, path, "session", self.session),
            process=self.optional(table, path, "process", self.process),
            line=self.locator.line_of(path),
        )

    def session(self, value: object, path: KeyPath) -> SessionCondition:
        table = self.table(value, path, "session")
        self.check_keys(table, path, _SESSION_KEYS, "in [rule.session]")
        none = self.optional(table, path, "none", self.boolean)
        if none is False:
            raise self.error(
                (*path, "none"),
                "none = false selects no session; remove the key (selectors are OR-ed, and an "
                "absent one adds nothing)",
            )
        return SessionCondition(
            ids=self.optional(table, path, "id", self.session_ids),
            users=self.optional(table, path, "user", self.users),
            none=none is True,
            remote=self.optional(table, path, "remote", self.boolean),
        )

    def process(self, value: object, path: KeyPath) -> ProcessCondition:
        table = self.table(value, path, "process")
        self.check_keys(table, path, _PROCESS_KEYS, "in [rule.process]")
        return ProcessCondition(
            exe=self.optional(table, path, "exe", self.paths),
            comm=self.optional(table, path, "comm", self.comm),
            uids=self.optional(table, path, "uid", self.uids),
        )

    # -- typed values ------------------------------------------------------------------------

    def check_keys(
        self, table: dict[str, object], path: KeyPath, allowed: tuple[str, ...], where: str
    ) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    (*path, key),
                    f"unknown key {key!r} {where}{_did_you_mean(key, allowed)}; "
                    f"expected {', '.join(allowed)}",
                    at="key",
                )

    def required(
        self,
        table: dict[str, object],
        path: KeyPath,
        key: str,
        convert: Callable[[object, KeyPath], _T],
    ) -> _T:
        if key not in table:
            raise self.error(path, f"missing required key {key!r}", at="key")
        return convert(table[key], (*path, key))

    def optional(
        self,
        table: dict[str, object],
        path: KeyPath,
        key: str,
        convert: Callable[[object, KeyPath], _T],
    ) -> _T | None:
        return convert(table[key], (*path, key)) if key in table else None

    def table(self, value: object, path: KeyPath, name: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a table ([rule.{name}]), got {_type_name(value)}")
        if not value:
            raise self.error(
                path,
                f"empty [rule.{name}] table: give it a condition or remove it",
                at="key",
            )
        return value

    def array(
        self, value: object, path: KeyPath, convert: Callable[[object, KeyPath], _T]
    ) -> list[_T]:
        if not isinstance(value, list):
            raise self.error(path, f"expected an array, got {_type_name(value)}")
        if not value:
            raise self.error(
                path, "an empty array matches nothing; remove the key to leave it unconstrained"
            )
        return [convert(item, (*path, index)) for index, item in enumerate(value)]

    def string(self, value: object, path: KeyPath) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {_type_name(value)}")
        if not value:
            raise self.error(path, "must not be empty")
        return value

    def boolean(self, value: object, path: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {_type_name(value)}")
        return value

    def integer(self, value: object, path: KeyPath) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected an integer, got {_type_name(value)}")
        return value

    def choice(self, value: object, path: KeyPath, kind: type[_E], what: str) -> _E:
        text = self.string(value, path)
        try:
            return kind(text)
        except ValueError:
            allowed = tuple(member.value for member in kind)
            raise self.error(
                path,
                f"unknown {what} {text!r}{_did_you_mean(text, allowed)}; "
                f"expected {', '.join(allowed)}",
            ) from None

    def verdict(self, value: object, path: KeyPath) -> Verdict:
        return self.choice(value, path, Verdict, "verdict")

    def action(self, value: object, path: KeyPath) -> Action:
        return self.choice(value, path, Action, "action")

    def operations(self, value: object, path: KeyPath) -> frozenset[Operation]:
        return frozenset(
            self.array(value, path, lambda v, p: self.choice(v, p, Operation, "operation"))
        )

    def timeout(self, value: object, path: KeyPath) -> int:
        milliseconds = self.integer(value, path)
        if milliseconds <= 0:
            raise self.error(path, f"must be a positive number of milliseconds, got {value}")
        return milliseconds

    def session_ids(self, value: object, path: KeyPath) -> frozenset[int]:
        return frozenset(self.array(value, path, self.session_id))

    def session_id(self, value: object, path: KeyPath) -> int:
        if value == -1 and not isinstance(value, bool):
            raise self.error(path, "-1 is not a session id; write none = true for no session")
        return self.u32(value, path)

    def users(self, value: object, path: KeyPath) -> frozenset[str]:
        return frozenset(self.array(value, path, self.string))

    def uids(self, value: object, path: KeyPath) -> frozenset[int]:
        return frozenset(self.array(value, path, self.u32))

    def u32(self, value: object, path: KeyPath) -> int:
        """A session id or uid: 0 to 2**32 - 2 (the top value is the kernel's "unset")."""
        number = self.integer(value, path)
        if not 0 <= number <= _ID_MAX:
            raise self.error(path, f"{number} is out of range (0 to {_ID_MAX})")
        return number

    def glob(self, value: object, path: KeyPath) -> str:
        pattern = self.string(value, path)
        try:
            glob_to_regex(pattern)
        except ValueError as err:
            raise self.error(path, str(err)) from None
        return pattern

    def paths(self, value: object, path: KeyPath) -> PathMatcher:
        return PathMatcher(tuple(self.array(value, path, self.glob)))

    def name_glob(self, value: object, path: KeyPath) -> str:
        pattern = self.string(value, path)
        if not is_glob(pattern) and len(pattern.encode()) > _COMM_MAX:
            raise self.error(
                path,
                f"{pattern!r} is longer than the {_COMM_MAX} bytes the kernel keeps of a "
                "process name (comm), so it could never match",
            )
        try:
            name_glob_to_regex(pattern)
        except ValueError as err:
            raise self.error(path, str(err)) from None
        return pattern

    def comm(self, value: object, path: KeyPath) -> NameMatcher:
        return NameMatcher(tuple(self.array(value, path, self.name_glob)))
