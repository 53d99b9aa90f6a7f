"""The pure matcher: first match wins, the session/process semantics, the ignore-mark predicate
and the glob dialect (checked against a per-component fnmatch reference)."""

from __future__ import annotations

import fnmatch
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sessionio.rules.loader import parse_rules
from sessionio.rules.match import (
    Decision,
    RequestFacts,
    concerns_path,
    evaluate,
    session_independent,
)
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
)
from tests.unit.rules.test_loader import EXAMPLE

# The example with remote = true written as a key, not only in its comment: what its rule's name
# ("session 7 or remote sessions") says it does.
EXAMPLE_WITH_REMOTE = EXAMPLE.replace("id = [7]  ", "id = [7]\nremote = true  ")

LOCAL_8 = RequestFacts(
    operation=Operation.OPEN,
    path="/srv/payroll/2026/march.csv",
    pid=4242,
    comm="cat",
    exe="/usr/bin/cat",
    uid=1000,
    session_id=8,
    session_user="bob",
    session_remote=False,
)


def facts(**changes: object) -> RequestFacts:
    """LOCAL_8 with some facts changed."""
    return replace(LOCAL_8, **changes)  # type: ignore[arg-type]


def ruleset(*rules: Rule, default: Verdict = Verdict.ALLOW) -> RuleSet:
    return RuleSet(default, 200, Verdict.ALLOW, rules, "<test>")


# -- the example file ------------------------------------------------------------------------


def test_example_denies_session_7_an_open_under_payroll() -> None:
    rules = parse_rules(EXAMPLE, "payroll.toml")

    decision = evaluate(rules, facts(session_id=7))

    assert decision == Decision(Verdict.DENY, Action.DENY, rules.rules[0])


def test_example_audits_an_open_by_local_session_8() -> None:
    rules = parse_rules(EXAMPLE, "payroll.toml")

    decision = evaluate(rules, LOCAL_8)

    assert decision == Decision(Verdict.ALLOW, Action.AUDIT, rules.rules[1])
    assert decision.audited


def test_example_audits_a_read_by_session_7_which_is_not_an_open() -> None:
    rules = parse_rules(EXAMPLE, "payroll.toml")

    decision = evaluate(rules, facts(session_id=7, operation=Operation.READ))

    assert (decision.verdict, decision.rule) == (Verdict.ALLOW, rules.rules[1])
    assert decision.audited


def test_example_allows_a_path_outside_payroll_by_default() -> None:
    rules = parse_rules(EXAMPLE, "payroll.toml")

    for path in ("/srv/other/file", "/srv/payroll", "/srv/payrollx/a"):
        decision = evaluate(rules, facts(session_id=7, path=path))
        assert decision == Decision(Verdict.ALLOW, None, None), path


def test_example_as_written_only_audits_a_remote_session() -> None:
    # "remote = true" is in a comment of the example, so its rule does not name remote sessions.
    rules = parse_rules(EXAMPLE, "payroll.toml")

    decision = evaluate(rules, facts(session_id=9, session_remote=True))

    assert decision.action is Action.AUDIT


def test_example_with_remote_denies_a_remote_session_and_session_7() -> None:
    rules = parse_rules(EXAMPLE_WITH_REMOTE, "payroll.toml")
    assert rules.rules[0].session == SessionCondition(ids=frozenset({7}), remote=True)

    remote = evaluate(rules, facts(session_id=9, session_remote=True))
    seven = evaluate(rules, facts(session_id=7, session_remote=False))
    local = evaluate(rules, LOCAL_8)
    unknown = evaluate(rules, facts(session_remote=None))
    no_session = evaluate(rules, facts(session_id=-1, session_user=None, session_remote=None))

    assert (remote.verdict, remote.rule) == (Verdict.DENY, rules.rules[0])
    assert (seven.verdict, seven.rule) == (Verdict.DENY, rules.rules[0])
    assert [local.action, unknown.action, no_session.action] == [Action.AUDIT] * 3


def test_none_true_selects_the_request_without_a_session() -> None:
    rules = parse_rules(EXAMPLE.replace("id = [7]  ", "none = true"), "payroll.toml")

    daemon = evaluate(rules, facts(session_id=-1, session_user=None, session_remote=None))
    session_8 = evaluate(rules, LOCAL_8)

    assert daemon.verdict is Verdict.DENY
    assert session_8.action is Action.AUDIT


# -- session selectors are OR-ed; process keys are AND-ed ------------------------------------

PAYROLL = PathMatcher(("/srv/payroll/**",))


def deny_for(
    session: SessionCondition | None = None, process: ProcessCondition | None = None
) -> RuleSet:
    return ruleset(Rule("r", Action.DENY, None, PAYROLL, session, process, 1))


@pytest.mark.parametrize(
    ("changes", "denied"),
    [
        ({"session_id": 7, "session_user": "bob"}, True),  # by id
        ({"session_id": 8, "session_user": "alice"}, True),  # by user
        ({"session_id": 8, "session_user": "bob"}, False),  # by neither
        ({"session_id": 8, "session_user": None}, False),  # user unknown
        ({"session_id": -1, "session_user": None}, False),  # no session, none not set
    ],
)
def test_session_selectors_are_ored(changes: dict[str, object], denied: bool) -> None:
    rules = deny_for(SessionCondition(ids=frozenset({7}), users=frozenset({"alice"})))

    decision = evaluate(rules, facts(**changes))

    assert (decision.verdict is Verdict.DENY) is denied


@pytest.mark.parametrize(
    ("remote", "session_remote", "session_id", "denied"),
    [
        (True, True, 8, True),
        (True, False, 8, False),
        (True, None, 8, False),  # unknown remoteness is selected by neither value
        (False, False, 8, True),
        (False, True, 8, False),
        (False, None, 8, False),
        (False, None, -1, False),  # no session is not a local session
    ],
)
def test_remote_selects_known_remoteness_only(
    remote: bool, session_remote: bool | None, session_id: int, denied: bool
) -> None:
    rules = deny_for(SessionCondition(remote=remote))

    decision = evaluate(rules, facts(session_remote=session_remote, session_id=session_id))

    assert (decision.verdict is Verdict.DENY) is denied


@pytest.mark.parametrize(
    ("changes", "denied"),
    [
        ({}, True),
        ({"uid": 0}, False),  # uid fails
        ({"exe": "/opt/cat"}, False),  # exe fails
        ({"exe": None}, False),  # exe unknown: the key that needs it fails
        ({"uid": None}, False),
        ({"comm": "dog"}, False),
        ({"comm": "cp"}, True),
    ],
)
def test_process_keys_are_anded(changes: dict[str, object], denied: bool) -> None:
    condition = ProcessCondition(
        exe=PathMatcher(("/usr/bin/*",)),
        comm=NameMatcher(("cat", "c?")),
        uids=frozenset({1000}),
    )

    decision = evaluate(deny_for(process=condition), facts(**changes))

    assert (decision.verdict is Verdict.DENY) is denied


def test_session_and_process_tables_are_anded() -> None:
    rules = deny_for(SessionCondition(ids=frozenset({8})), ProcessCondition(uids=frozenset({1000})))

    assert evaluate(rules, LOCAL_8).verdict is Verdict.DENY
    assert evaluate(rules, facts(uid=0)).verdict is Verdict.ALLOW
    assert evaluate(rules, facts(session_id=9)).verdict is Verdict.ALLOW


def test_first_match_wins_and_an_audit_match_stops_the_search() -> None:
    audit = Rule("audit", Action.AUDIT, frozenset({Operation.OPEN}), PAYROLL, line=1)
    deny = Rule("deny", Action.DENY, None, PAYROLL, line=2)
    rules = ruleset(audit, deny)

    assert evaluate(rules, LOCAL_8) == Decision(Verdict.ALLOW, Action.AUDIT, audit)
    read = evaluate(rules, facts(operation=Operation.READ))
    assert read == Decision(Verdict.DENY, Action.DENY, deny)


def test_no_match_gives_the_default_verdict() -> None:
    rules = ruleset(Rule("r", Action.ALLOW, None, PAYROLL), default=Verdict.DENY)

    assert evaluate(rules, facts(path="/etc/passwd")) == Decision(Verdict.DENY, None, None)


# -- session_independent and concerns_path ---------------------------------------------------


def test_session_independent_in_the_example() -> None:
    rules = parse_rules(EXAMPLE, "payroll.toml")
    inside = "/srv/payroll/a"

    assert session_independent(rules, Operation.OPEN, inside) is None  # session 7 differs
    assert session_independent(rules, Operation.READ, inside) is None  # audited: must be seen
    assert session_independent(rules, Operation.OPEN, "/etc/passwd") is Verdict.ALLOW
    assert concerns_path(rules, inside)
    assert not concerns_path(rules, "/etc/passwd")


def test_session_independent_takes_the_first_unconditional_match() -> None:
    etc = PathMatcher(("/etc/**",))
    rules = ruleset(
        Rule("other op", Action.AUDIT, frozenset({Operation.EXEC}), etc),
        Rule("other path", Action.ALLOW, None, PAYROLL, SessionCondition(none=True)),
        Rule("deny etc", Action.DENY, None, etc),
        Rule("late", Action.ALLOW, None, etc, SessionCondition(ids=frozenset({1}))),
    )

    assert session_independent(rules, Operation.OPEN, "/etc/shadow") is Verdict.DENY
    assert session_independent(rules, Operation.EXEC, "/etc/shadow") is None
    assert session_independent(rules, Operation.OPEN, "/srv/payroll/a") is None
    assert session_independent(rules, Operation.OPEN, "/home/a") is Verdict.ALLOW


OPS = list(Operation)
SOME_PATHS = ["/a", "/a/b", "/a/b/c", "/x/b", "/x"]
SOME_PATTERNS = ["/a/**", "/a", "/*/b", "/x", "/**"]


@st.composite
def rules_strategy(draw: st.DrawFn) -> RuleSet:
    rules = []
    for index in range(draw(st.integers(0, 5))):
        operations = draw(st.none() | st.frozensets(st.sampled_from(OPS), min_size=1))
        patterns = draw(st.none() | st.lists(st.sampled_from(SOME_PATTERNS), min_size=1))
        session = draw(
            st.none()
            | st.builds(
                SessionCondition,
                ids=st.none() | st.frozensets(st.integers(0, 3), min_size=1),
                users=st.none() | st.frozensets(st.sampled_from(["alice", "bob"]), min_size=1),
                none=st.booleans(),
                remote=st.none() | st.booleans(),
            )
        )
        process = draw(
            st.none() | st.builds(ProcessCondition, uids=st.frozensets(st.integers(0, 2)))
        )
        paths = None if patterns is None else PathMatcher(tuple(patterns))
        action = draw(st.sampled_from(list(Action)))
        rules.append(Rule(f"r{index}", action, operations, paths, session, process, index + 1))
    return ruleset(*rules, default=draw(st.sampled_from(list(Verdict))))


requesters = st.builds(
    RequestFacts,
    operation=st.just(Operation.OPEN),
    path=st.just("/"),
    pid=st.integers(1, 100),
    comm=st.sampled_from(["cat", "sh"]),
    exe=st.none() | st.sampled_from(["/usr/bin/cat", "/bin/sh"]),
    uid=st.none() | st.integers(0, 2),
    session_id=st.integers(-1, 3),
    session_user=st.none() | st.sampled_from(["alice", "bob", "carol"]),
    session_remote=st.none() | st.booleans(),
)


@settings(max_examples=300)
@given(
    rules_strategy(),
    st.sampled_from(OPS),
    st.sampled_from(SOME_PATHS),
    st.lists(requesters, min_size=1, max_size=8),
)
def test_a_session_independent_verdict_is_what_every_requester_gets(
    rules: RuleSet, operation: Operation, path: str, people: list[RequestFacts]
) -> None:
    verdict = session_independent(rules, operation, path)
    decisions = [evaluate(rules, replace(p, operation=operation, path=path)) for p in people]

    if verdict is not None:
        assert all(d.verdict is verdict and not d.audited for d in decisions)
    if not concerns_path(rules, path):
        assert verdict is rules.default
        assert all(d == Decision(rules.default, None, None) for d in decisions)


# -- the glob dialect ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/srv/payroll/**", "/srv/payroll/a", True),
        ("/srv/payroll/**", "/srv/payroll/x/y/z", True),
        ("/srv/payroll/**", "/srv/payroll", False),  # the directory itself: list it on its own
        ("/srv/payroll/**", "/srv/payrollx/a", False),
        ("/srv/payroll/**", "/srv/payroll/.hidden", True),
        ("/a/**/b", "/a/b", True),  # zero directories between
        ("/a/**/b", "/a/x/y/b", True),
        ("/a/**/b", "/a/x/y/bc", False),
        ("/**/core", "/core", True),
        ("/**", "/anything/at/all", True),
        ("/**", "/", False),
        ("/", "/", True),
        ("/*", "/", False),
        ("/*", "/etc", True),
        ("/*", "/etc/passwd", False),  # '*' stays inside one component
        ("/etc/*.conf", "/etc/.conf", True),
        ("/etc/?", "/etc/a", True),
        ("/etc/?", "/etc/ab", False),
        ("/etc/[ab]c", "/etc/bc", True),
        ("/etc/[!ab]c", "/etc/bc", False),
        ("/etc/[!ab]c", "/etc/xc", True),
        ("/etc/[*]", "/etc/*", True),
        ("/etc/[*]", "/etc/x", False),
        ("/etc/[[]x", "/etc/[x", True),
        ("/e+t(c)/a.b", "/e+t(c)/a.b", True),  # regex characters are literal
        ("/e+t(c)/a.b", "/e+t(c)/aXb", False),
        ("/Etc", "/etc", False),
    ],
)
def test_path_globs(pattern: str, path: str, matches: bool) -> None:
    assert PathMatcher((pattern,)).matches(path) is matches


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("kworker/*", "kworker/0:1", True),
        ("ba?h", "bash", True),
        ("ba?h", "bassh", False),
        ("cat", "cat", True),
        ("cat", "cats", False),
    ],
)
def test_name_globs(pattern: str, name: str, matches: bool) -> None:
    assert NameMatcher((pattern,)).matches(name) is matches


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "relative",
        "/a/",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/a**",
        "/a/***",
        "/[ab",
        "/[b-a]",
        "/\0",
    ],
)
def test_bad_path_globs_raise_value_error(pattern: str) -> None:
    with pytest.raises(ValueError):
        glob_to_regex(pattern)


def reference_match(pattern: str, path: str) -> bool:
    """The glob semantics by recursion over components, with fnmatch for each component."""

    def components(text: str) -> list[str]:
        return [] if text == "/" else text[1:].split("/")

    def walk(pat: list[str], parts: list[str]) -> bool:
        if not pat:
            return not parts
        head, rest = pat[0], pat[1:]
        if head == "**":
            if not rest:
                return len(parts) >= 1
            return any(walk(rest, parts[skip:]) for skip in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and walk(rest, parts[1:])

    return walk(components(pattern), components(path))


TOKENS = ["a", "b", ".", "-", "*", "?", "[ab]", "[!a]", "[a-b]", "[.]"]
path_components = st.text(alphabet="ab.-", min_size=1, max_size=4).filter(
    lambda c: c not in (".", "..")
)
paths = st.lists(path_components, max_size=5).map(lambda parts: "/" + "/".join(parts))
pattern_components = st.one_of(
    st.just("**"), st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map("".join)
)
patterns = st.lists(pattern_components, max_size=5).map(lambda parts: "/" + "/".join(parts))


def valid(pattern: str) -> bool:
    try:
        glob_to_regex(pattern)
    except ValueError:
        return False
    return True


@settings(max_examples=1000)
@given(patterns, paths)
def test_path_globs_agree_with_the_reference(pattern: str, path: str) -> None:
    assume(valid(pattern))

    assert PathMatcher((pattern,)).matches(path) is reference_match(pattern, path)


@settings(max_examples=300)
@given(st.lists(patterns, min_size=1, max_size=3), paths)
def test_a_list_of_globs_is_ored(pattern_list: list[str], path: str) -> None:
    assume(all(valid(p) for p in pattern_list))

    expected = any(reference_match(p, path) for p in pattern_list)
    assert PathMatcher(tuple(pattern_list)).matches(path) is expected


@settings(max_examples=500)
@given(
    st.lists(st.sampled_from([*TOKENS, "/"]), min_size=1, max_size=6).map("".join),
    st.text(alphabet="ab.-/", max_size=6),
)
def test_name_globs_agree_with_fnmatch(pattern: str, name: str) -> None:
    assert NameMatcher((pattern,)).matches(name) is fnmatch.fnmatchcase(name, pattern)


@settings(max_examples=500)
@given(st.text(alphabet="/ab*?[]!-.\\", max_size=12))
def test_any_pattern_compiles_or_raises_value_error(pattern: str) -> None:
    try:
        PathMatcher((pattern,))
    except ValueError:
        return
    assert pattern.startswith("/")
