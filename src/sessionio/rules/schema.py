"""The typed values a rule file loads into, and the glob dialect its patterns are written in.

A rule file is TOML (see :mod:`sessionio.rules.loader` for the grammar and the matching semantics);
these classes are what is left once it has been validated: frozen, hashable, free of TOML. Every
pattern is compiled to one regular expression here, once, when the rule set is built, because the
matcher runs on every permission event while a process waits for the answer.

Glob dialect, for paths and ``exe`` (``PathMatcher``): a pattern is absolute and canonical (no
``//``, ``.``, ``..`` or trailing ``/``, because the kernel reports canonical paths and such a
pattern could never match). ``*`` matches any run of characters inside one path component,
``?`` exactly one character of a component, ``[abc]``, ``[a-z]`` and ``[!abc]`` one character
of a component from (or not from) the set; ``*`` and ``?`` match a leading dot too (a deny on
``/srv/payroll/*`` covers ``.secret``). ``**`` must be a whole component: in the middle or at
the start it matches zero or more components (``/a/**/b`` matches ``/a/b`` and ``/a/x/y/b``); at
the end it matches one or more (``/srv/payroll/**`` matches ``/srv/payroll/a`` and
``/srv/payroll/x/y/z`` but **not** ``/srv/payroll`` itself, as in gitignore and rsync: list both
``"/srv/payroll"`` and ``"/srv/payroll/**"`` to cover the directory too). No pattern but ``/``
matches ``/``. Matching is case-sensitive; there is no escape character, write ``[*]`` for a
literal ``*`` and ``[[]`` for a literal ``[``.

The name dialect, for ``comm`` (``NameMatcher``), is the same without path components: ``*``
matches any run of characters (``/`` included: ``kworker/*``), ``?`` one character.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

__all__ = [
    "Action",
    "NameMatcher",
    "Operation",
    "PathMatcher",
    "ProcessCondition",
    "Rule",
    "RuleSet",
    "SessionCondition",
    "Verdict",
    "glob_to_regex",
    "is_glob",
    "name_glob_to_regex",
]


class Verdict(enum.StrEnum):
    """The answer given to the kernel for a permission event (FAN_ALLOW / FAN_DENY)."""

    ALLOW = "allow"
    DENY = "deny"


class Action(enum.StrEnum):
    """What a matching rule does; AUDIT allows and asks for the operation to be logged."""

    ALLOW = "allow"
    DENY = "deny"
    AUDIT = "audit"

    @property
    def verdict(self) -> Verdict:
        """The verdict this action gives: only DENY denies."""
        return Verdict.DENY if self is Action.DENY else Verdict.ALLOW


class Operation(enum.StrEnum):
    """The file operations a rule can name (DESIGN.md, "Linux mapping": major functions).

    On Linux, OPEN, READ and EXEC are pre-operations (FAN_OPEN_PERM, FAN_ACCESS_PERM,
    FAN_OPEN_EXEC_PERM) that can be denied; the others are post-operations (FAN_MODIFY,
    FAN_CLOSE_WRITE, FAN_CREATE, FAN_DELETE, FAN_MOVED_FROM/TO) reported after the fact, so a
    deny verdict for them has nothing left to stop. The rule language does not forbid it, because
    the simulated kernel can deny them as pre-operations (IRP_MJ_SET_INFORMATION).
    """

    OPEN = "open"
    READ = "read"
    EXEC = "exec"
    MODIFY = "modify"
    CLOSE_WRITE = "close_write"
    CREATE = "create"
    DELETE = "delete"
    RENAME = "rename"


_GLOB_SPECIAL = frozenset("*?[")


def _translate(text: str, *, one_char: str) -> str:
    """Translate ``*``, ``?`` and ``[...]`` in one component (or name) to a regex source.

    ``one_char`` is the regex for "any one character" (``[^/]`` inside a path component).
    Raises ValueError on an unclosed ``[`` or a reversed range, which fnmatch would silently
    read as literal text: a policy pattern that means something else than it seems is an error.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        i += 1
        if char == "*":
            out.append(one_char + "*")
        elif char == "?":
            out.append(one_char)
        elif char == "[":
            j = i
            if j < n and text[j] == "!":
                j += 1
            if j < n and text[j] == "]":
                j += 1
            while j < n and text[j] != "]":
                j += 1
            if j >= n:
                raise ValueError("unclosed '[' (write '[[]' for a literal '[')")
            out.append(_translate_class(text[i:j], one_char=one_char))
            i = j + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _translate_class(body: str, *, one_char: str) -> str:
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    items: list[str] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            low, high = body[k], body[k + 2]
            if low > high:
                raise ValueError(f"empty range '{low}-{high}' in '[{body}]'")
            items.append(f"{re.escape(low)}-{re.escape(high)}")
            k += 3
        else:
            items.append(re.escape(body[k]))
            k += 1
    members = "".join(items)
    if one_char == "[^/]":
        # A set never matches the separator, whatever range it spans.
        return f"[^/{members}]" if negate else f"(?!/)[{members}]"
    return f"[^{members}]" if negate else f"[{members}]"


def glob_to_regex(pattern: str) -> str:
    """Translate an absolute path glob to a regex source for ``re.fullmatch``.

    Raises ValueError, with a message meant for the rule author, when the pattern is not
    absolute and canonical or misuses ``**``, ``[`` or a range.
    """
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern {pattern!r} is not absolute (it must start with '/')")
    if "\0" in pattern:
        raise ValueError("path pattern contains a NUL character")
    if pattern == "/":
        return "/"
    parts = pattern.split("/")[1:]
    if parts[-1] == "":
        raise ValueError(
            f"path pattern {pattern!r} ends with '/', which no path does: write "
            f"{pattern.rstrip('/')!r} for the directory or {pattern + '**'!r} for what is under it"
        )
    out: list[str] = []
    for index, part in enumerate(parts):
        if part == "":
            raise ValueError(f"path pattern {pattern!r} has an empty component ('//')")
        if part in (".", ".."):
            raise ValueError(
                f"path pattern {pattern!r} has a {part!r} component; paths are matched in "
                "canonical form, so it could never match"
            )
        if part == "**":
            last = index == len(parts) - 1
            out.append("(?:/[^/]+)+" if last else "(?:/[^/]+)*")
        elif "**" in part:
            raise ValueError(
                f"'**' must be a whole path component in {pattern!r} (use '*' inside a component)"
            )
        else:
            # The lookahead keeps '*' from matching the empty component of '/'.
            out.append("/(?=[^/])" + _translate(part, one_char="[^/]"))
    return "".join(out)


def name_glob_to_regex(pattern: str) -> str:
    """Translate a process-name glob (``comm``) to a regex source for ``re.fullmatch``."""
    if pattern == "":
        raise ValueError("empty name pattern")
    return _translate(pattern, one_char=".")


def is_glob(pattern: str) -> bool:
    """True when the pattern has a wildcard, False when it only matches itself."""
    return not _GLOB_SPECIAL.isdisjoint(pattern)


def _compile(sources: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{source})" for source in sources), re.DOTALL)


@dataclass(frozen=True, slots=True)
class PathMatcher:
    """A list of path globs (OR-ed), compiled into one regular expression at construction.

    Constructing it raises ValueError for a bad pattern (see :func:`glob_to_regex`).
    """

    patterns: tuple[str, ...]
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile([glob_to_regex(p) for p in self.patterns]))

    def matches(self, path: str) -> bool:
        """True when any pattern matches the whole path."""
        return self._regex.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class NameMatcher:
    """A list of process-name globs (OR-ed) for ``comm``, compiled once like PathMatcher."""

    patterns: tuple[str, ...]
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile([name_glob_to_regex(p) for p in self.patterns]))

    def matches(self, name: str) -> bool:
        """True when any pattern matches the whole name."""
        return self._regex.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class SessionCondition:
    """``[rule.session]``: which sessions a rule selects. The selectors are OR-ed.

    A request's session is selected when it is one of ``ids``, or its user is one of
    ``users``, or ``none`` is set and the request has no session (id -1), or ``remote`` is set
    and the session's remoteness is known and equal to it. An absent selector selects nothing;
    at least one is present in a loaded file.
    """

    ids: frozenset[int] | None = None
    users: frozenset[str] | None = None
    none: bool = False
    remote: bool | None = None


@dataclass(frozen=True, slots=True)
class ProcessCondition:
    """``[rule.process]``: which requesting processes a rule applies to. The keys are AND-ed.

    Each present key must hold (any value of its list may match); an absent key does not
    constrain. An unknown fact (exe or uid of a process already gone) fails a key that needs it.
    """

    exe: PathMatcher | None = None
    comm: NameMatcher | None = None
    uids: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rule]]``: its conditions are AND-ed; an absent condition does not constrain.

    ``line`` is the 1-based line of the rule's ``[[rule]]`` header (0 if it is not known, as for
    a rule built in Python), so that a logged decision can point at the rule that made it.
    """

    name: str
    action: Action
    operations: frozenset[Operation] | None = None
    paths: PathMatcher | None = None
    session: SessionCondition | None = None
    process: ProcessCondition | None = None
    line: int = 0

    @property
    def unconditional(self) -> bool:
        """True when the rule matches every request (it has no condition at all)."""
        return (
            self.operations is None
            and self.paths is None
            and self.session is None
            and self.process is None
        )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A whole rule file: the rules in order (first match wins) and what to do otherwise.

    ``default`` answers a request no rule matches; ``on_timeout`` answers a request whose filter
    did not decide within ``decision_timeout_ms``; ``source`` names the file it came from.
    """

    default: Verdict
    decision_timeout_ms: int
    on_timeout: Verdict
    rules: tuple[Rule, ...]
    source: str
