"""RuleFilter on the simulated kernel: real IRPs through ``kernel.filters``, the issue's example
file as written and with ``remote = true`` on its own line, dry-run, the ignore-mark predicate,
and the atomic rule swap."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionio.errors import RuleError
from sessionio.model.ids import NO_SESSION, Pid, SessionId, Tid
from sessionio.model.io_objects import FileObject
from sessionio.model.process import Process, Thread
from sessionio.model.request import CallbackData, IoRequest
from sessionio.ntdef.status import NTSTATUS
from sessionio.ntdef.values import FLT_PREOP_CALLBACK_STATUS, IRP_MJ
from sessionio.rules.filter import RuleDecision, RuleFilter, request_operation
from sessionio.rules.loader import parse_rules
from sessionio.rules.schema import Action, Operation, RuleSet, Verdict
from sessionio.sim.kernel import SimKernel
from tests.unit.rules.test_loader import EXAMPLE

# The example with remote = true on its own line: what its first rule's name says it does.
CORRECTED = EXAMPLE.replace("id = [7]  ", "id = [7]\nremote = true  ")
PAYROLL = "/srv/payroll/2026/march.csv"
DENIED = NTSTATUS.STATUS_ACCESS_DENIED
OK = NTSTATUS.STATUS_SUCCESS


class Machine:
    """A SimKernel with sessions 7 (local), 8 (remote) and 9 (local), a process in each, a
    daemon with no session, and the RuleFilter registered on its filter manager."""

    def __init__(self, text: str, *, dry_run: bool = False) -> None:
        self.kernel = SimKernel()
        for sid, local in ((7, True), (8, False), (9, True)):
            self.kernel.create_session(sid, local=local)
            self.kernel.connect(sid)
        self.threads = {
            sid: self.kernel.create_thread(self.kernel.create_process(f"app{sid}", sid))
            for sid in (7, 8, 9)
        }
        self.daemon = self.kernel.create_thread(self.kernel.create_process("cron"))
        self.filter = RuleFilter(parse_rules(text, "payroll.toml"), dry_run=dry_run)
        self.kernel.filters.register_filter(self.filter, 320000)

    def status(
        self, thread: Thread | None, path: str = PAYROLL, major: IRP_MJ = IRP_MJ.IRP_MJ_CREATE
    ) -> NTSTATUS:
        """What SimKernel.issue answers for one IRP: the final status of every filter."""
        return self.kernel.issue(self.kernel.build_irp(thread, major, path))

    def issue(
        self, thread: Thread | None, path: str = PAYROLL, major: IRP_MJ = IRP_MJ.IRP_MJ_CREATE
    ) -> tuple[NTSTATUS, RuleDecision | None]:
        """Send one IRP through the filters; its final status and the filter's decision."""
        data = CallbackData.for_request(self.kernel.build_irp(thread, major, path))
        status = self.kernel.filters.run(data, lambda _data: OK)
        return status, self.filter.take_decision(data)


def test_example_as_written_denies_session_7_and_audits_the_rest_of_payroll() -> None:
    machine = Machine(EXAMPLE)

    status, decision = machine.issue(machine.threads[7])
    assert status == DENIED
    assert decision is not None and decision.denied and decision.enforced
    assert decision.decision.rule is not None
    assert decision.decision.rule.name == "payroll is not for session 7 or remote sessions"
    assert decision.facts.session_id == 7
    assert decision.facts.operation is Operation.OPEN

    # As written, remote = true is only a comment: the remote session 8 is audited, not denied.
    status, decision = machine.issue(machine.threads[8])
    assert status == OK
    assert decision is not None and decision.decision.audited and not decision.would_deny
    assert decision.facts.session_remote is True

    for thread in (machine.threads[9], machine.daemon):
        status, decision = machine.issue(thread)
        assert status == OK
        assert decision is not None and decision.decision.action is Action.AUDIT


def test_example_corrected_also_denies_remote_sessions() -> None:
    machine = Machine(CORRECTED)

    assert machine.issue(machine.threads[7])[0] == DENIED
    status, decision = machine.issue(machine.threads[8])
    assert status == DENIED
    assert decision is not None and decision.denied
    assert decision.facts.session_id == 8 and decision.facts.session_remote is True
    # A local session and a process without a session are only audited.
    assert machine.issue(machine.threads[9])[0] == OK
    status, decision = machine.issue(machine.daemon)
    assert status == OK
    assert decision is not None and decision.facts.session_id == NO_SESSION
    assert decision.facts.session_remote is None and decision.decision.audited


def test_only_opens_under_payroll_are_denied() -> None:
    machine = Machine(CORRECTED)
    seven = machine.threads[7]

    # Outside the tree: the default, not audited.
    status, decision = machine.issue(seven, "/srv/other/march.csv")
    assert status == OK
    assert decision is not None and decision.decision.rule is None
    assert decision.decision.verdict is Verdict.ALLOW and not decision.decision.audited
    # Not an open: the first rule does not concern it, the audit rule does.
    for major, operation in (
        (IRP_MJ.IRP_MJ_READ, Operation.READ),
        (IRP_MJ.IRP_MJ_WRITE, Operation.MODIFY),
        (IRP_MJ.IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION, Operation.EXEC),
        (IRP_MJ.IRP_MJ_CLEANUP, Operation.CLOSE_WRITE),
    ):
        status, decision = machine.issue(seven, major=major)
        assert status == OK
        assert decision is not None and decision.facts.operation is operation
        assert decision.decision.audited
    # A major function no rule can name passes untouched and leaves no decision.
    assert machine.issue(seven, major=IRP_MJ.IRP_MJ_QUERY_INFORMATION) == (OK, None)


def test_an_irp_without_a_thread_is_session_minus_one_and_pid_zero() -> None:
    text = 'default = "allow"\n[[rule]]\nname = "x"\naction = "deny"\n[rule.session]\nnone = true\n'
    machine = Machine(text)

    status, decision = machine.issue(None)
    assert status == DENIED
    assert decision is not None
    assert decision.facts.session_id == NO_SESSION and decision.facts.pid == 0
    assert decision.facts.exe is None and decision.facts.uid is None
    assert decision.decision.rule is not None and decision.decision.rule.name == "x"
    assert machine.issue(machine.daemon)[0] == DENIED  # no session: the same rule
    assert machine.issue(machine.threads[9])[0] == OK


def test_dry_run_allows_and_records_the_would_be_deny() -> None:
    machine = Machine(CORRECTED, dry_run=True)

    for sid in (7, 8):
        status, decision = machine.issue(machine.threads[sid])
        assert status == OK
        assert decision is not None
        assert decision.would_deny and not decision.denied and not decision.enforced
    status, decision = machine.issue(machine.threads[9])
    assert status == OK
    assert decision is not None and not decision.would_deny


def test_a_filter_above_sees_the_deny_in_its_post_operation() -> None:
    machine = Machine(CORRECTED)
    seen: list[NTSTATUS] = []
    machine.kernel.filters.register(
        "above",
        400000,
        pre=lambda _data: FLT_PREOP_CALLBACK_STATUS.FLT_PREOP_SUCCESS_WITH_CALLBACK,
        post=lambda data, _ctx: seen.append(data.IoStatus.Status),
    )
    assert machine.status(machine.threads[8]) == DENIED
    assert seen == [DENIED]


def test_injected_session_facts_name_the_user_and_remoteness() -> None:
    rules = parse_rules(
        '[[rule]]\nname = "alice"\naction = "deny"\n[rule.session]\nuser = ["alice"]\n', "u.toml"
    )
    asked: list[int] = []

    def facts(session_id: int) -> tuple[str | None, bool | None]:
        asked.append(session_id)
        return ("alice" if session_id == 7 else None), None

    machine = Machine(EXAMPLE)
    rule_filter = RuleFilter(rules, facts, name="users")
    machine.kernel.filters.register_filter(rule_filter, 330000)

    assert machine.status(machine.threads[7], "/x", IRP_MJ.IRP_MJ_READ) == DENIED
    assert machine.status(machine.threads[9], "/x", IRP_MJ.IRP_MJ_READ) == OK
    # A request without a session is not a session: the facts are never asked for it.
    assert machine.status(machine.daemon, "/x", IRP_MJ.IRP_MJ_READ) == OK
    assert asked == [7, 9]


def test_process_conditions_see_the_requestor_process() -> None:
    rules = parse_rules(
        '[[rule]]\nname = "root cat"\naction = "deny"\n'
        '[rule.process]\nexe = ["/usr/bin/*"]\ncomm = ["cat"]\nuid = [0]\n',
        "p.toml",
    )
    kernel = SimKernel()
    rule_filter = RuleFilter(rules)
    kernel.filters.register_filter(rule_filter, 1)

    def status(process: Process) -> NTSTATUS:
        irp = IoRequest(kernel, IRP_MJ.IRP_MJ_CREATE, Thread(Tid(1), process), FileObject("/a"))
        return kernel.issue(irp)

    cat = Process(Pid(10), SessionId(3), name="cat", exe="/usr/bin/cat", uid=0)
    assert status(cat) == DENIED
    assert status(Process(Pid(11), SessionId(3), name="cat", exe="/usr/bin/cat", uid=1000)) == OK
    assert status(Process(Pid(12), SessionId(3), name="cat", exe="/opt/cat", uid=0)) == OK
    assert status(Process(Pid(13), SessionId(3), name="cat", exe=None, uid=0)) == OK


def test_the_live_operation_name_wins_over_the_major_function() -> None:
    rules = parse_rules(
        '[[rule]]\nname = "no creates"\naction = "deny"\noperations = ["create"]\n', "c.toml"
    )
    kernel = SimKernel()
    process = kernel.create_process("p")
    rule_filter = RuleFilter(rules)
    kernel.filters.register_filter(rule_filter, 1)

    def request(operation: str | None) -> CallbackData:
        irp = IoRequest(
            kernel,
            IRP_MJ.IRP_MJ_CREATE,
            kernel.create_thread(process),
            FileObject("/tmp/new"),
            origin_pid=process.pid,
            operation=operation,
        )
        return CallbackData.for_request(irp)

    assert request_operation(request("create")) is Operation.CREATE
    assert request_operation(request(None)) is Operation.OPEN
    assert request_operation(request("frobnicate")) is None
    assert kernel.filters.run(request("create"), lambda _d: OK) == DENIED
    assert kernel.filters.run(request("open"), lambda _d: OK) == OK

    # Reported after the fact (a notification event): recorded, never enforced.
    done = request("create")
    kernel.filters.run_post_only(done)
    decision = rule_filter.take_decision(done)
    assert decision is not None
    assert decision.stage == "post" and decision.would_deny and not decision.denied
    assert rule_filter.take_decision(done) is None  # taken once


def test_cacheable_only_for_session_independent_allows() -> None:
    rule_filter = RuleFilter(parse_rules(EXAMPLE, "payroll.toml"))

    assert rule_filter.cacheable("open", "/etc/passwd")  # no rule concerns it: default allow
    assert rule_filter.cacheable("exec", "/usr/bin/cat")
    assert not rule_filter.cacheable("open", PAYROLL)  # depends on the session
    assert not rule_filter.cacheable("read", PAYROLL)  # audited: must reach the logger
    assert not rule_filter.cacheable("frobnicate", "/etc/passwd")

    deny_all = RuleFilter(parse_rules('default = "deny"\n', "d.toml"))
    assert not deny_all.cacheable("open", "/etc/passwd")  # a deny is never cached
    allow_etc = RuleFilter(
        parse_rules(
            'default = "deny"\n[[rule]]\nname = "etc"\naction = "allow"\npaths = ["/etc/**"]\n',
            "e.toml",
        )
    )
    assert allow_etc.cacheable("open", "/etc/passwd")
    assert not allow_etc.cacheable("open", "/srv/x")


def test_dry_run_does_not_make_a_deny_cacheable() -> None:
    rule_filter = RuleFilter(parse_rules('default = "deny"\n', "d.toml"), dry_run=True)
    assert not rule_filter.cacheable("open", "/etc/passwd")


def test_replace_rules_lets_a_decision_in_flight_finish_on_the_old_rules() -> None:
    old = parse_rules(EXAMPLE, "old.toml")
    new = parse_rules('[[rule]]\nname = "everything"\naction = "deny"\n', "new.toml")
    swapped: list[RuleSet] = []
    rule_filter: RuleFilter

    def facts(_session_id: int) -> tuple[str | None, bool | None]:
        # The swap happens while a decision is gathering its facts (a SIGHUP mid-decision).
        if not swapped:
            rule_filter.replace_rules(new)
            swapped.append(new)
        return None, None

    machine = Machine(EXAMPLE)
    rule_filter = RuleFilter(old, facts, name="swapping")
    machine.kernel.filters.unregister(machine.kernel.filters.filters[0])
    machine.kernel.filters.register_filter(rule_filter, 1)

    # Decided by the old rules, which allow it; the next request meets the new ones.
    assert machine.status(machine.threads[9], "/srv/other") == OK
    assert rule_filter.ruleset is new
    assert machine.status(machine.threads[9], "/srv/other") == DENIED


def test_reload_keeps_the_old_rules_when_the_new_file_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(EXAMPLE)
    machine = Machine(EXAMPLE)
    rule_filter = machine.filter
    rule_filter.replace_rules(parse_rules(EXAMPLE, str(path)))
    before = rule_filter.ruleset

    path.write_text(CORRECTED.replace('action = "deny"', 'action = "deni"'))
    with pytest.raises(RuleError) as caught:
        rule_filter.reload()
    assert (caught.value.path, caught.value.line, caught.value.column) == (str(path), 7, 10)
    assert rule_filter.ruleset is before
    assert machine.issue(machine.threads[8])[0] == OK

    path.write_text(CORRECTED)
    loaded = rule_filter.reload()
    assert rule_filter.ruleset is loaded and loaded.source == str(path)
    assert machine.issue(machine.threads[8])[0] == DENIED
