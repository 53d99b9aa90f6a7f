"""The pure matcher: a RuleSet and the facts of one request in, a Decision out.

It knows nothing of fanotify, the model or the filter manager: the caller gathers the facts
(operation, path, requesting process, its session) into :class:`RequestFacts` and turns the
Decision into an answer. First match wins; an ``audit`` match allows, stops the search like any
other match, and asks the caller to log; no match gives the rule set's default.

:func:`session_independent` serves the kernel ignore-mark cache: an ignore mark answers every
later request on the object without asking us, so it may only hold a verdict that no
requesting process or session could have changed, and never one that must be logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionio.model.ids import NO_SESSION
from sessionio.rules.schema import (
    Action,
    Operation,
    ProcessCondition,
    Rule,
    RuleSet,
    SessionCondition,
    Verdict,
)

__all__ = [
    "Decision",
    "RequestFacts",
    "concerns_path",
    "evaluate",
    "session_independent",
]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a rule can ask about one request; ``None`` where the kernel could not tell.

    ``session_id`` is -1 for a process without a session; ``session_user`` and
    ``session_remote`` come from the session service and are None when it does not know. No
    field has a default: a forgotten fact must not quietly read as "no session".
    """

    operation: Operation
    path: str
    pid: int
    comm: str
    exe: str | None
    uid: int | None
    session_id: int
    session_user: str | None
    session_remote: bool | None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: the verdict to give, and the action and rule behind it (None: the default)."""

    verdict: Verdict
    action: Action | None
    rule: Rule | None

    @property
    def audited(self) -> bool:
        """True when the matching rule asks for the request to be logged."""
        return self.action is Action.AUDIT


def _session_selects(condition: SessionCondition, facts: RequestFacts) -> bool:
    # The selectors are OR-ed (see sessionio.rules.loader): any one naming the session suffices.
    if facts.session_id == NO_SESSION:
        return condition.none
    if condition.ids is not None and facts.session_id in condition.ids:
        return True
    if condition.users is not None and facts.session_user in condition.users:
        return True
    return (
        condition.remote is not None
        and facts.session_remote is not None
        and facts.session_remote == condition.remote
    )


def _process_fits(condition: ProcessCondition, facts: RequestFacts) -> bool:
    # The keys are AND-ed; an unknown fact fails the key that needs it.
    if condition.exe is not None and (facts.exe is None or not condition.exe.matches(facts.exe)):
        return False
    if condition.comm is not None and not condition.comm.matches(facts.comm):
        return False
    return condition.uids is None or facts.uid in condition.uids


def _concerns(rule: Rule, operation: Operation, path: str) -> bool:
    """True when the rule's operation and path conditions hold (its others aside)."""
    if rule.operations is not None and operation not in rule.operations:
        return False
    return rule.paths is None or rule.paths.matches(path)


def evaluate(ruleset: RuleSet, facts: RequestFacts) -> Decision:
    """The decision for one request: the first rule whose every condition holds, else default."""
    for rule in ruleset.rules:
        if not _concerns(rule, facts.operation, facts.path):
            continue
        if rule.session is not None and not _session_selects(rule.session, facts):
            continue
        if rule.process is not None and not _process_fits(rule.process, facts):
            continue
        return Decision(rule.action.verdict, rule.action, rule)
    return Decision(ruleset.default, None, None)


def session_independent(ruleset: RuleSet, operation: Operation, path: str) -> Verdict | None:
    """The verdict for (operation, path) when no process or session could change it, else None.

    Walks the rules that could match the operation and path: the first one without session or
    process conditions decides, unless it audits; a conditional rule met before it, or an audit
    rule, makes the answer depend on who asks (or require a log line), so None. No rule
    concerning them at all: the default.
    """
    for rule in ruleset.rules:
        if not _concerns(rule, operation, path):
            continue
        if rule.session is not None or rule.process is not None:
            return None
        if rule.action is Action.AUDIT:
            return None
        return rule.action.verdict
    return ruleset.default


def concerns_path(ruleset: RuleSet, path: str) -> bool:
    """True when some rule could match a request on this path (for some operation and requester)."""
    return any(rule.paths is None or rule.paths.matches(path) for rule in ruleset.rules)
