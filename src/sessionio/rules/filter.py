"""RuleFilter: a rule file as a minifilter, the same object on the simulated and the live kernel.

It gathers the facts of one request from the model (the requestor process, its session as
FltGetRequestorSessionId sees it, the operation), asks :func:`sessionio.rules.match.evaluate`,
and completes a pre-operation with STATUS_ACCESS_DENIED when the verdict is deny. Nothing here
knows whether the request came from fanotify or from ``SimKernel.issue``.

A filter must not log while the requester waits (the logger may be the blocked opener; DESIGN.md,
"Filter manager"), so each decision is kept in a small side table for whoever answers the
kernel first and logs after: :meth:`RuleFilter.take_decision`.

The rules are swapped by one attribute assignment of an immutable RuleSet
(:meth:`RuleFilter.replace_rules`): a decision reads the attribute once, so a decision in flight
finishes on the rules it started with, and none ever sees half of each.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from sessionio.errors import NoSuchSession
from sessionio.model.ids import NO_SESSION
from sessionio.model.request import CallbackData
from sessionio.ntdef.values import FLT_POSTOP_CALLBACK_STATUS, FLT_PREOP_CALLBACK_STATUS, IRP_MJ
from sessionio.rules.loader import load_rules
from sessionio.rules.match import Decision, RequestFacts, evaluate, session_independent
from sessionio.rules.schema import Operation, RuleSet, Verdict

__all__ = [
    "DEFAULT_NAME",
    "MAJOR_FUNCTION_OPERATIONS",
    "RuleDecision",
    "RuleFilter",
    "SessionFacts",
    "request_operation",
]

DEFAULT_NAME: Final = "sessionio.rules"

SessionFacts = Callable[[int], tuple[str | None, bool | None]]
"""``session_facts(session_id) -> (user, remote)``; None where the session service cannot tell."""

MAJOR_FUNCTION_OPERATIONS: Final[dict[IRP_MJ, Operation]] = {
    IRP_MJ.IRP_MJ_CREATE: Operation.OPEN,
    IRP_MJ.IRP_MJ_READ: Operation.READ,
    IRP_MJ.IRP_MJ_WRITE: Operation.MODIFY,
    IRP_MJ.IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION: Operation.EXEC,
    IRP_MJ.IRP_MJ_CLEANUP: Operation.CLOSE_WRITE,
}
"""The operation a rule sees for an IRP of the simulated kernel, which names no Linux operation.

The live kernel sets ``IoRequest.operation`` itself, because one major function stands for
several Linux operations there (open and create are both IRP_MJ_CREATE).
"""

# Decisions waiting for the logger; bounded so that one nobody takes cannot grow without end.
_SIDE_TABLE_SIZE: Final = 4096


def request_operation(data: CallbackData) -> Operation | None:
    """The rule operation of a request: the live kernel's own name, else the major function's."""
    named = data.request.operation
    if named is not None:
        try:
            return Operation(named)
        except ValueError:
            return None
    return MAJOR_FUNCTION_OPERATIONS.get(data.Iopb.MajorFunction)


@dataclass(frozen=True, slots=True)
class RuleDecision:
    """What the filter decided for one request, for the log written after the answer.

    ``stage`` is "pre" when the filter could still stop the operation (a permission event, an
    IRP's pre-operation) and "post" when it only saw it done (a notification event).
    ``enforced`` is False when a deny verdict was not applied: in dry-run mode, or after the fact.
    """

    facts: RequestFacts
    decision: Decision
    stage: Literal["pre", "post"]
    enforced: bool

    @property
    def would_deny(self) -> bool:
        """The rules say deny (whether or not the filter could, or was allowed to, deny)."""
        return self.decision.verdict is Verdict.DENY

    @property
    def denied(self) -> bool:
        """The filter completed the operation with STATUS_ACCESS_DENIED."""
        return self.would_deny and self.enforced


class RuleFilter:
    """Rules as a minifilter: register it with ``kernel.filters.register_filter(f, altitude)``.

    ``session_facts(session_id)`` names the user of a session and whether it is remote; without
    it the kernel's own session table answers (``Session.user``, ``not Session.local``): exact
    on the simulated kernel, and on the live one only as good as the session services that
    fill it, which is why ``sessionio enforce`` injects its own. A request without a session
    (-1) has neither.
    ``dry_run`` allows what the rules would deny, and records it as such.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        session_facts: SessionFacts | None = None,
        *,
        dry_run: bool = False,
        name: str = DEFAULT_NAME,
    ) -> None:
        self.name = name
        self.dry_run = dry_run
        self._ruleset = ruleset
        self._session_facts = session_facts
        self._decisions: OrderedDict[CallbackData, RuleDecision] = OrderedDict()
        self._lock = threading.Lock()

    # -- the rules -------------------------------------------------------------------------

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def replace_rules(self, ruleset: RuleSet) -> None:
        """Swap the rules at once; decisions already running finish on the old set."""
        self._ruleset = ruleset

    def reload(self, path: str | os.PathLike[str] | None = None) -> RuleSet:
        """Load ``path`` (default: the file the rules came from) and swap it in.

        A file that does not load raises RuleError and the old rules stay in force: a bad edit
        followed by SIGHUP must never leave the daemon without a policy.
        """
        ruleset = load_rules(self._ruleset.source if path is None else path)
        self.replace_rules(ruleset)
        return ruleset

    def cacheable(self, operation: str, path: str) -> bool:
        """True when allowing ``operation`` on ``path`` may go into a kernel ignore mark.

        Only an allow that no requester or session could change, and that no rule wants
        logged: an ignore mark answers for everyone, silently.
        """
        try:
            op = Operation(operation)
        except ValueError:
            return False
        return session_independent(self._ruleset, op, path) is Verdict.ALLOW

    # -- the facts of a request ------------------------------------------------------------

    def facts(self, data: CallbackData) -> RequestFacts | None:
        """The facts the rules ask about; None for an operation no rule can name."""
        operation = request_operation(data)
        if operation is None:
            return None
        # FltGetRequestorSessionId's answer: -1 for no session, and for no thread at all.
        session_id = NO_SESSION if data.Thread is None else data.session_id
        user, remote = self._describe_session(data, session_id)
        process = data.requestor_process
        if process is None:
            origin = data.request.origin_pid
            return RequestFacts(
                operation=operation,
                path=data.path,
                pid=0 if origin is None else int(origin),
                comm="",
                exe=None,
                uid=None,
                session_id=session_id,
                session_user=user,
                session_remote=remote,
            )
        return RequestFacts(
            operation=operation,
            path=data.path,
            pid=int(process.pid),
            comm=process.name,
            exe=process.exe,
            uid=process.uid,
            session_id=session_id,
            session_user=user,
            session_remote=remote,
        )

    def _describe_session(
        self, data: CallbackData, session_id: int
    ) -> tuple[str | None, bool | None]:
        if session_id == NO_SESSION:
            return None, None
        if self._session_facts is not None:
            return self._session_facts(session_id)
        try:
            session = data.kernel.session(session_id)
        except NoSuchSession:
            return None, None
        return session.user, not session.local

    # -- the minifilter --------------------------------------------------------------------

    def pre_operation(self, data: CallbackData) -> FLT_PREOP_CALLBACK_STATUS:
        """Decide; deny by completing with STATUS_ACCESS_DENIED (not in dry-run)."""
        outcome = self._decide(data, "pre")
        if outcome is not None and outcome.denied:
            return data.deny()
        return FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_NO_CALLBACK

    def post_operation(self, data: CallbackData, context: object) -> FLT_POSTOP_CALLBACK_STATUS:
        """An operation reported after the fact (the pre-operation never asks for this call).

        Its decision is recorded for the log (an audit, a deny that came too late) but
        changes nothing: the operation is done.
        """
        self._decide(data, "post")
        return FLT_POSTOP_CALLBACK_STATUS.FLT_POSTOP_FINISHED_PROCESSING

    def _decide(self, data: CallbackData, stage: Literal["pre", "post"]) -> RuleDecision | None:
        ruleset = self._ruleset  # read once: a reload mid-decision does not mix two rule sets
        facts = self.facts(data)
        if facts is None:
            return None
        decision = evaluate(ruleset, facts)
        outcome = RuleDecision(facts, decision, stage, enforced=stage == "pre" and not self.dry_run)
        with self._lock:
            self._decisions[data] = outcome
            if len(self._decisions) > _SIDE_TABLE_SIZE:
                self._decisions.popitem(last=False)
        return outcome

    def take_decision(self, data: CallbackData) -> RuleDecision | None:
        """The decision made for ``data`` (and forget it); None if the filter did not decide."""
        with self._lock:
            return self._decisions.pop(data, None)
