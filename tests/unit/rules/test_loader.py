"""The rule-file loader: the example works as written, and every error names its line and column.

Expected positions are not written as numbers: each bad file marks the offending spot with
``@@`` (removed before parsing), and the test computes the line and column of the mark.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionio.errors import RuleError
from sessionio.rules.loader import (
    DEFAULT_DECISION_TIMEOUT_MS,
    DEFAULT_ON_TIMEOUT,
    DEFAULT_VERDICT,
    load_rules,
    parse_rules,
)
from sessionio.rules.schema import Action, Operation, Verdict

# The rule file of the brief, verbatim.
EXAMPLE = """\
default = "allow"            # verdict when no rule matches
decision_timeout_ms = 200    # a filter that takes longer gets on_timeout
on_timeout = "allow"         # or "deny" (fail closed)

[[rule]]
name = "payroll is not for session 7 or remote sessions"
action = "deny"              # allow | deny | audit
operations = ["open"]        # open | read | exec | modify | close_write | create | delete | rename
paths = ["/srv/payroll/**"]
[rule.session]
id = [7]                     # also: user = ["alice"], none = true (no session), remote = true
                             # conditions in one table are OR-ed within a key list, AND-ed across keys

[[rule]]
name = "audit the rest of payroll"
action = "audit"
paths = ["/srv/payroll/**"]
"""  # noqa: E501

MARK = "@@"


def marked(text: str) -> tuple[str, int, int]:
    """The text without its mark, and the 1-based line and column where the mark was."""
    assert text.count(MARK) == 1, "a case marks exactly one spot"
    offset = text.index(MARK)
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return text.replace(MARK, ""), line, column


def error_of(text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "policy.toml")
    return caught.value


def test_the_example_loads_as_written() -> None:
    ruleset = parse_rules(EXAMPLE, "payroll.toml")

    assert ruleset.source == "payroll.toml"
    assert ruleset.default is Verdict.ALLOW
    assert ruleset.decision_timeout_ms == 200
    assert ruleset.on_timeout is Verdict.ALLOW
    deny, audit = ruleset.rules
    assert deny.name == "payroll is not for session 7 or remote sessions"
    assert deny.action is Action.DENY
    assert deny.operations == frozenset({Operation.OPEN})
    assert deny.paths is not None and deny.paths.patterns == ("/srv/payroll/**",)
    assert deny.session is not None
    assert deny.session.ids == frozenset({7})
    # remote = true is only in a comment: the file as written does not name remote sessions.
    assert deny.session.remote is None
    assert deny.process is None
    assert audit.action is Action.AUDIT
    assert audit.operations is None and audit.session is None and audit.process is None
    headers = [number for number, line in enumerate(EXAMPLE.splitlines(), 1) if line == "[[rule]]"]
    assert [deny.line, audit.line] == headers


def test_top_level_keys_have_documented_defaults() -> None:
    ruleset = parse_rules('[[rule]]\nname = "a"\naction = "deny"\npaths = ["/x"]\n', "p")

    assert ruleset.default is DEFAULT_VERDICT is Verdict.ALLOW
    assert ruleset.decision_timeout_ms == DEFAULT_DECISION_TIMEOUT_MS == 200
    assert ruleset.on_timeout is DEFAULT_ON_TIMEOUT is Verdict.ALLOW


def test_an_empty_file_is_a_ruleset_without_rules() -> None:
    ruleset = parse_rules("# nothing yet\n", "p")

    assert ruleset.rules == ()


def test_every_key_of_the_language_loads() -> None:
    text = """
default = "deny"
decision_timeout_ms = 50
on_timeout = "deny"

[[rule]]
name = "root tools from /usr/bin may exec"
action = "allow"
operations = ["exec", "open"]
paths = ["/usr/bin/*"]
process = { exe = ["/usr/bin/*"], comm = ["ba?h", "kworker/*"], uid = [0, 1000] }
session = { user = ["alice"], none = true, remote = false, id = [1, 2] }
"""
    ruleset = parse_rules(text, "p")

    (rule,) = ruleset.rules
    assert ruleset.default is Verdict.DENY and ruleset.on_timeout is Verdict.DENY
    assert ruleset.decision_timeout_ms == 50
    assert rule.operations == frozenset({Operation.EXEC, Operation.OPEN})
    assert rule.process is not None and rule.session is not None
    assert rule.process.exe is not None and rule.process.exe.patterns == ("/usr/bin/*",)
    assert rule.process.comm is not None and rule.process.comm.patterns == ("ba?h", "kworker/*")
    assert rule.process.uids == frozenset({0, 1000})
    assert rule.session.users == frozenset({"alice"})
    assert rule.session.ids == frozenset({1, 2})
    assert rule.session.none is True and rule.session.remote is False
    assert rule.line == 6


# Each case: the file with the offending spot marked, and words the message must contain.
ERRORS: dict[str, tuple[str, str]] = {
    "syntax: missing value": ("x = @@\n", "TOML syntax error: Invalid value"),
    "syntax: unterminated header": ("[[rule@@]\n", "Expected ']]'"),
    "syntax: unclosed array at the end": (
        '[[rule]]\nname = "a"\npaths = ["/a",\n@@',
        "at the end of the file",
    ),
    "unknown top-level key": ('default = "deny"\n@@defualt = "allow"\n', "did you mean 'default'"),
    "unknown key in a rule": (
        '[[rule]]\nname = "a"\n  @@actoin = "deny"\n',
        "unknown key 'actoin' in a rule (did you mean 'action'?)",
    ),
    "unknown table in a header": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.@@sesion]\nid = [1]\n',
        "did you mean 'session'?",
    ),
    "unknown key in a session table": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.session]\n@@uid = [1]\n',
        "unknown key 'uid' in [rule.session]",
    ),
    "unknown key in a process table": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.process]\n@@session = [1]\n',
        "unknown key 'session' in [rule.process]",
    ),
    "unknown key in an inline table": (
        '[[rule]]\nname = "a"\naction = "deny"\nsession = { id = [1], @@users = ["a"] }\n',
        "did you mean 'user'?",
    ),
    "unknown key after a dot": (
        '[[rule]]\nname = "a"\naction = "deny"\nsession.@@ids = [1]\n',
        "unknown key 'ids'",
    ),
    "action of the wrong type": ('[[rule]]\nname = "a"\naction = @@5\n', "expected a string"),
    "unknown action": (
        '[[rule]]\nname = "a"\naction = @@"reject"\n',
        "unknown action 'reject'; expected allow, deny, audit",
    ),
    "audit is not a verdict": ('default = @@"audit"\n', "unknown verdict 'audit'"),
    "operations not a list": (
        '[[rule]]\nname = "a"\naction = "deny"\noperations = @@"open"\n',
        "expected an array, got a string",
    ),
    "unknown operation, in a multi-line array": (
        '[[rule]]\nname = "a"\naction = "deny"\noperations = [\n  "open",  # ok\n  @@"opne",\n]\n',
        "unknown operation 'opne' (did you mean 'open'?)",
    ),
    "empty array": (
        '[[rule]]\nname = "a"\naction = "deny"\noperations = @@[]\n',
        "an empty array matches nothing",
    ),
    "relative path pattern": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = ["/ok/**", @@"srv/x"]\n',
        "is not absolute",
    ),
    "'**' inside a component": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = [@@"/srv/pay**"]\n',
        "'**' must be a whole path component",
    ),
    "unclosed bracket": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = [@@"/srv/[ab"]\n',
        "unclosed '['",
    ),
    "trailing slash": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = [@@"/srv/payroll/"]\n',
        "'/srv/payroll/**'",
    ),
    "dot-dot component": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = [@@"/srv/../etc"]\n',
        "could never match",
    ),
    "bad exe glob": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.process]\nexe = [@@"bash"]\n',
        "is not absolute",
    ),
    "comm longer than the kernel keeps": (
        '[[rule]]\nname = "a"\naction = "deny"\nprocess.comm = [@@"a-very-long-daemon-name"]\n',
        "longer than the 15 bytes",
    ),
    "negative timeout": ("decision_timeout_ms = @@-5\n", "must be a positive number"),
    "zero timeout": ("decision_timeout_ms = @@0\n", "must be a positive number"),
    "boolean timeout": ("decision_timeout_ms = @@true\n", "expected an integer, got a boolean"),
    "float timeout": ("decision_timeout_ms = @@2.5\n", "expected an integer, got a float"),
    "session id of the wrong type": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.session]\nid = [7, @@"8"]\n',
        "expected an integer, got a string",
    ),
    "session id -1": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.session]\nid = [@@-1]\n',
        "write none = true",
    ),
    "uid out of range": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.process]\nuid = [@@4294967295]\n',
        "out of range",
    ),
    "none = false": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.session]\nnone = @@false\n',
        "selects no session",
    ),
    "remote not a boolean": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.session]\nremote = @@"yes"\n',
        "expected true or false",
    ),
    "empty session table": (
        '[[rule]]\nname = "a"\naction = "deny"\n[rule.@@session]\n\n[[rule]]\nname = "b"\n',
        "empty [rule.session]",
    ),
    "session is not a table": (
        '[[rule]]\nname = "a"\naction = "deny"\nsession = @@7\n',
        "expected a table",
    ),
    "empty rule": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = ["/a"]\n\n@@[[rule]]\n\n[[rule]]\n',
        "empty rule",
    ),
    "rule without a name": ('@@[[rule]]\naction = "deny"\n', "missing required key 'name'"),
    "rule without an action": ('@@[[rule]]\nname = "a"\n', "missing required key 'action'"),
    "empty name": ('[[rule]]\nname = @@""\naction = "deny"\n', "must not be empty"),
    "duplicate rule names": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = ["/a"]\n'
        '[[rule]]\nname = @@"a"\naction = "allow"\n',
        "duplicate rule name 'a' (first used at line 1)",
    ),
    "rule after an unconditional rule": (
        '[[rule]]\nname = "all"\naction = "audit"\n\n@@[[rule]]\nname = "b"\naction = "deny"\n',
        "rule 'b' can never match: rule 'all' (line 1)",
    ),
    "rule written as a table": ('[@@rule]\nname = "a"\n', "expected an array of tables"),
    "rule written as a number": ("@@rule = 5\n", "expected an array of tables"),
    "inline array of rules": (
        'rule = [\n  { name = "a", action = "deny", paths = ["/a"] },\n'
        '  { name = "b", @@acton = "allow" },\n]\n',
        "did you mean 'action'?",
    ),
    "after tricky strings and comments": (
        '# [[rule]] in a comment does not count\n[[rule]]\nname = """two\n[[rule]]\nlines"""\n'
        "action = 'deny' # a 'comment'\npaths = [\"/a#b\", '/c\"d', \"/e\\\"[f]\"]\n"
        '[rule.session]\n"id" = [1]\n[rule.process]\n@@typo = 1\n',
        "unknown key 'typo'",
    ),
    "in the third rule": (
        '[[rule]]\nname = "a"\naction = "deny"\npaths = ["/a"]\n[[rule]]\nname = "b"\n'
        'action = "deny"\npaths = ["/b"]\n[[rule]]\nname = "c"\naction = @@"nope"\n',
        "rule[2].action: unknown action 'nope'",
    ),
    "with CRLF line endings": (
        '[[rule]]\r\nname = "a"\r\naction = "deny"\r\n@@path = ["/a"]\r\n',
        "did you mean 'paths'?",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_an_error_names_its_line_and_column(case: str) -> None:
    marked_text, words = ERRORS[case]
    text, line, column = marked(marked_text)

    error = error_of(text)

    assert (error.path, error.line, error.column) == ("policy.toml", line, column)
    assert words in error.message
    assert str(error).startswith(f"policy.toml:{line}:{column}: ")


def test_a_rule_error_is_a_value_error_with_the_key_path() -> None:
    error = error_of('[[rule]]\nname = "a"\naction = "deny"\n[rule.session]\nid = [1, true]\n')

    assert isinstance(error, ValueError)
    assert error.message.startswith("rule[0].session.id[1]: expected an integer, got a boolean")


def test_a_bad_file_raises_and_returns_nothing(tmp_path: Path) -> None:
    # Two valid rules and a bad third: nothing of the first two escapes the failed load.
    path = tmp_path / "policy.toml"
    path.write_text(EXAMPLE + '\n[[rule]]\nname = "late"\naction = "deny"\npaths = ["rel"]\n')
    results = []

    with pytest.raises(RuleError) as caught:
        results.append(load_rules(path))

    assert results == []
    assert caught.value.path == str(path)
    assert caught.value.line == EXAMPLE.count("\n") + 5


def test_load_rules_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.encode())  # a BOM, as some editors write

    ruleset = load_rules(path)

    assert ruleset.source == str(path)
    assert ruleset == parse_rules(EXAMPLE, str(path))


def test_a_missing_file_is_a_rule_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(RuleError) as caught:
        load_rules(path)

    assert caught.value.path == str(path)
    assert caught.value.line is None
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_file_that_is_not_utf8_names_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('default = "allow"\n# r\xe9sum\xe9\n'.encode("latin-1"))

    with pytest.raises(RuleError) as caught:
        load_rules(path)

    assert (caught.value.line, caught.value.column) == (2, 4)


# -- hypothesis: any text either loads or raises RuleError ------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "[[rule]]\n",
        "[rule.session]\n",
        "[rule.process]\n",
        'name = "n"\n',
        'action = "deny"\n',
        'action = "audit"\n',
        'paths = ["/a/**"]\n',
        'paths = ["a"]\n',
        'operations = ["open"]\n',
        "id = [7]\n",
        "none = true\n",
        "remote = true\n",
        "uid = [0]\n",
        'comm = ["x*"]\n',
        'default = "deny"\n',
        "decision_timeout_ms = -1\n",
        "session = { id = [1] }\n",
        'rule = [{ name = "x" }]\n',
        "x = \n",
        "# comment\n",
        '"quoted" = 1\n',
    ]
)


@settings(max_examples=300)
@given(st.lists(FRAGMENTS, max_size=12))
def test_rule_like_text_loads_or_raises_rule_error(fragments: list[str]) -> None:
    text = "".join(fragments)
    try:
        ruleset = parse_rules(text, "fuzz.toml")
    except RuleError as error:
        assert error.path == "fuzz.toml"
        if error.line is not None:
            assert 1 <= error.line <= text.count("\n") + 1
    else:
        assert all(rule.line >= 1 for rule in ruleset.rules)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_loads_or_raises_rule_error(text: str) -> None:
    # Anything but a RuleError escaping (an IndexError from the locator, say) fails the test.
    with contextlib.suppress(RuleError):
        parse_rules(text, "fuzz.toml")


# -- hypothesis: the locator finds a typo however the file is spelled --------------------------


@st.composite
def rule_files_with_one_typo(draw: st.DrawFn) -> str:
    """Valid rules in assorted spellings, one unknown key marked somewhere among them."""
    styles = ["header", "dotted", "inline"]
    rules = []
    count = draw(st.integers(min_value=1, max_value=4))
    typo_rule = draw(st.integers(min_value=0, max_value=count - 1))
    for index in range(count):
        style = draw(st.sampled_from(styles))
        blank = draw(st.sampled_from(["", "\n", "# note = 1\n", "\n# [[rule]]\n"]))
        spellings = [
            '"r{i}"',
            "'r{i}'",
            '"""r{i}\n"""',
            '"""r{i} ""x"""""',  # quotes just before the closing delimiter
            "'''r{i} ''x'''''",
            '"r{i} \\"[[rule]]\\""',
        ]
        name = draw(st.sampled_from(spellings)).format(i=index)
        paths = draw(st.sampled_from(['["/a/**"]', '[\n  "/a",  # x\n  "/b/*",\n]', "['/c']"]))
        typo = "@@bogus = 1\n" if index == typo_rule else ""
        where = draw(st.sampled_from(["rule", "session"])) if typo else ""
        rule = f'{blank}[[rule]]\nname = {name}\naction = "deny"\npaths = {paths}\n'
        if where == "rule":
            rule += typo
        if style == "header":
            rule += "[rule.session]\nid = [1, 2]\n"
            rule += typo if where == "session" else ""
        elif style == "dotted":
            rule += "session.id = [1]\n"
            rule += typo.replace("@@bogus", "session.@@bogus") if where == "session" else ""
        else:
            inner = "@@bogus = 1, " if where == "session" else ""
            rule += f"session = {{ {inner}id = [1] }}\n"
        rules.append(rule)
    return "".join(rules)


@settings(max_examples=200)
@given(rule_files_with_one_typo())
def test_the_locator_finds_the_typo_in_any_spelling(marked_text: str) -> None:
    text, line, column = marked(marked_text)

    error = error_of(text)

    assert "unknown key 'bogus'" in error.message
    assert (error.line, error.column) == (line, column)
