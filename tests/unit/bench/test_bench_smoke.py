"""The benchmark runner's pure parts: statistics, result schema, table, and the parsers of what
the C programs, the kernel (fdinfo, mountinfo), fatrace and ``sessionio watch`` print.

No speed is asserted anywhere: the benchmark measures, CI only checks that its arithmetic and its
parsers are right. Golden inputs are built here in the formats the programs print."""

from __future__ import annotations

import json
import math

import pytest
from bench.fapolicyd import RULE, fapolicyd_conf, parse_allowed
from bench.fdinfo import (
    FAN_OPEN_PERM,
    FanotifyMark,
    MarkKind,
    any_mark_on,
    covers_tree,
    open_perm_mark_on,
    parse_fanotify_fdinfo,
)
from bench.mounts import TreeIdentity, kernel_dev, parse_mountinfo
from bench.programs import parse_key_values, parse_opener_output, parse_writer_output
from bench.results import (
    FIGURES,
    SCHEMA,
    Target,
    build_result,
    format_value,
    render_table,
    validate_result,
)
from bench.runner import PROBES, select_probes
from bench.settings import Settings
from bench.stats import Figure, paired_ratios
from bench.watch_events import (
    COMPARED,
    FATRACE_NAMES,
    GENERATED,
    Generated,
    generated_file,
    parse_fatrace_line,
    parse_watch_line,
    tally,
)
from hypothesis import given
from hypothesis import strategies as st

# -- statistics ---------------------------------------------------------------------------------


def test_figure_summarises_repeats() -> None:
    figure = Figure((3.0, 1.0, 2.0, 10.0), "opens/s")
    assert figure.repeats == 4
    assert figure.median == 2.5
    assert (figure.minimum, figure.maximum) == (1.0, 10.0)
    assert figure.spread == pytest.approx(9.0 / 2.5)
    assert figure.to_json()["values"] == [3.0, 1.0, 2.0, 10.0]


def test_figure_with_zero_median_has_no_relative_spread() -> None:
    assert Figure((0.0, 0.0, 5.0), "operations").spread is None


@pytest.mark.parametrize("values", [(), (1.0, math.nan), (math.inf,)])
def test_figure_rejects_empty_or_non_finite(values: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Figure(values, "ratio")


def test_ratios_are_paired_within_a_repeat() -> None:
    assert paired_ratios([90.0, 50.0], [100.0, 100.0]) == (0.9, 0.5)


@pytest.mark.parametrize(("top", "bottom"), [([1.0], [1.0, 2.0]), ([1.0], [0.0])])
def test_unpaired_or_zero_denominator_ratios_are_refused(
    top: list[float], bottom: list[float]
) -> None:
    with pytest.raises(ValueError):
        paired_ratios(top, bottom)


@given(st.lists(st.floats(0.001, 1e9), min_size=1, max_size=9))
def test_median_lies_between_min_and_max(values: list[float]) -> None:
    figure = Figure(tuple(values), "ratio")
    assert figure.minimum <= figure.median <= figure.maximum


# -- the C programs' output ---------------------------------------------------------------------

OPENER_LINE = "opens=200000 errors=0 ns_per_open=6935.8 opens_per_s=144179.9 cpu=1 sessionid=262\n"


def test_opener_output_is_parsed() -> None:
    result = parse_opener_output("some warning on another line\n" + OPENER_LINE)
    assert result.opens == 200000
    assert result.errors == 0
    assert result.ns_per_open == 6935.8
    assert result.opens_per_s == 144179.9
    assert result.cpu == 1
    assert result.session_id == 262


@pytest.mark.parametrize(
    "text",
    [
        "",
        "opens=10 errors=0 ns_per_open=5.0 cpu=1 sessionid=-1",  # no opens_per_s
        "opens=ten errors=0 ns_per_open=5.0 opens_per_s=1.0 cpu=1 sessionid=-1",
        "opens=0 errors=0 ns_per_open=5.0 opens_per_s=1.0 cpu=1 sessionid=-1",
        "opens=1 errors=0 ns_per_open=nan opens_per_s=1.0 cpu=1 sessionid=-1",
        "opener: cannot pin to CPU 9: Invalid argument",
    ],
)
def test_bad_opener_output_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_opener_output(text)


@given(st.text())
def test_any_opener_output_parses_or_raises_value_error(text: str) -> None:
    try:
        result = parse_opener_output(text)
    except ValueError:
        return
    assert result.opens > 0 and result.ns_per_open > 0 and result.opens_per_s > 0


def test_writer_output_is_parsed() -> None:
    result = parse_writer_output("files=97728 elapsed_ns=1001110445\n")
    assert (result.files, result.elapsed_ns) == (97728, 1001110445)


def test_key_values_need_an_equals_sign() -> None:
    assert parse_key_values("events=5 a=b") == {"events": "5", "a": "b"}
    with pytest.raises(ValueError):
        parse_key_values("ready")


# -- the kernel's accounts: fdinfo and mountinfo ------------------------------------------------

FDINFO = (
    "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\n"
    "fanotify flags:15 event-flags:88000\n"
    "fanotify sdev:27 mflags:0 mask:10000 ignored_mask:0\n"
    "fanotify mnt_id:2c mflags:0 mask:50000 ignored_mask:0\n"
    "fanotify ino:1a sdev:27 mflags:4 mask:0 ignored_mask:10000 "
    "fhandle-bytes:8 fhandle-type:1 f_handle:1a00000000000000\n"
)


def test_fanotify_marks_are_read_from_fdinfo() -> None:
    marks = parse_fanotify_fdinfo(FDINFO)
    assert marks == [
        FanotifyMark(MarkKind.FILESYSTEM, 0x10000, 0, sdev=0x27),
        FanotifyMark(MarkKind.MOUNT, 0x50000, 0, mount_id=0x2C),
        FanotifyMark(MarkKind.INODE, 0, 0x10000, inode=0x1A, sdev=0x27),
    ]


def test_an_ordinary_fd_has_no_marks() -> None:
    assert parse_fanotify_fdinfo("pos:\t0\nflags:\t0100000\nmnt_id:\t44\nino:\t12\n") == []


def test_a_garbled_mark_line_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_fanotify_fdinfo("fanotify sdev:zz mflags:0 mask:1 ignored_mask:0\n")


def test_readiness_needs_a_permission_mark_on_the_tree() -> None:
    tree = TreeIdentity(mount_id=0x2C, sdev=0x27)
    other = TreeIdentity(mount_id=0x30, sdev=0x28)
    filesystem, mount, inode = parse_fanotify_fdinfo(FDINFO)
    assert covers_tree(filesystem, tree) and covers_tree(mount, tree) and covers_tree(inode, tree)
    assert not covers_tree(filesystem, other) and not covers_tree(mount, other)
    assert open_perm_mark_on(tree)(filesystem)
    assert not open_perm_mark_on(tree)(inode)  # an ignore mark does not make a listener ready
    assert not open_perm_mark_on(other)(filesystem)
    assert any_mark_on(tree)(mount) and not any_mark_on(tree)(inode)
    assert FAN_OPEN_PERM == 0x10000


def test_mountinfo_lines_are_parsed_with_escapes() -> None:
    text = (
        "44 43 0:39 / /tmp/fpt/tree rw,relatime - tmpfs tmpfs rw\n"
        "45 26 8:1 / /srv/with\\040space rw shared:1 - ext4 /dev/sda1 rw\n"
    )
    first, second = parse_mountinfo(text)
    assert (first.mount_id, first.major, first.minor) == (44, 0, 39)
    assert (first.mount_point, first.fstype) == ("/tmp/fpt/tree", "tmpfs")
    assert (second.mount_point, second.fstype) == ("/srv/with space", "ext4")
    with pytest.raises(ValueError):
        parse_mountinfo("44 43 0:39 / /x rw\n")  # no "-" separator


def test_kernel_dev_is_mkdev() -> None:
    assert kernel_dev(0, 39) == 0x27
    assert kernel_dev(8, 1) == (8 << 20) | 1


# -- notification listeners: fatrace and sessionio watch -------------------------------------


def test_fatrace_lines_are_parsed() -> None:
    record = parse_fatrace_line("1795263867.335978 writer(30578): CWO /t/w0/f00000000\n")
    assert record is not None
    assert record.time == 1795263867.335978
    assert set(record.operations) == {"close_write", "modify", "open"}
    assert record.path == "/t/w0/f00000000"
    created = parse_fatrace_line("1795263867.335978 my (odd) comm(7): +   /t")
    assert created is not None and created.operations == ("create",) and created.path == "/t"
    assert parse_fatrace_line("No more fanotify event (EOF)") is None


def test_watch_records_are_parsed() -> None:
    line = json.dumps(
        {"time": "2026-11-21T12:32:38.135772+00:00", "op": "open", "path": "/t/w0/f00000000"}
    )
    record = parse_watch_line(line)
    assert record is not None
    assert (record.operations, record.path) == (("open",), "/t/w0/f00000000")
    assert record.time == pytest.approx(1795263158.135772)
    assert parse_watch_line('{"op": "open", "path": "/t/x"}') is None  # no time
    assert parse_watch_line("sessionio watch: watching trees /t") is None


def test_generated_files_are_recognised_and_counted() -> None:
    generated = Generated((2, 1))
    assert generated_file("/t/w0/f00000001", "/t", generated) == (0, 1)
    assert generated_file("/t/w1/f00000000 (deleted)", "/t", generated) == (1, 0)
    assert generated_file("/t/w1/f00000001", "/t", generated) is None  # never generated
    assert generated_file("/t/w2/f00000000", "/t", generated) is None
    assert generated_file("/other/w0/f00000000", "/t", generated) is None
    lines = [
        "1.5 writer(1): CWO /t/w0/f00000000",
        "2.0 writer(1): O /t/w0/f00000001",
        "2.5 writer(1): CW /t/w0/f00000001",
        "3.0 writer(1): W /t/w1/f00000000",
        "9.0 writer(1): +   /t/w1",  # a directory: not a generated file, not the last record
    ]
    report = tally(lines, parse_fatrace_line, "/t", generated)
    assert report.count(COMPARED) == 5
    # w1/f00000000 lacks its open and its close; and fatrace never names a creation.
    assert report.lost(generated, FATRACE_NAMES) == 3 * 3 - 7
    assert report.lost(generated, GENERATED) == 4 * 3 - 7
    assert report.last_time == 3.0


# -- fapolicyd's configuration and report --------------------------------------------------------


def test_fapolicyd_conf_changes_only_the_benchmark_settings() -> None:
    shipped = "# comment uid = x\nuid = fapolicyd\nq_size = 640\nwatch_fs = ext4,tmpfs,xfs\n"
    conf = fapolicyd_conf(shipped)
    lines = conf.splitlines()
    assert "uid = root" in lines and "gid = root" in lines
    assert "watch_fs = tmpfs" in lines and "trust = file" in lines
    assert "q_size = 640" in lines and "# comment uid = x" in lines
    assert "uid = fapolicyd" not in lines
    assert RULE == "allow perm=any all : all"


def test_fapolicyd_allowed_count_is_read_from_its_report() -> None:
    report = "shutting down...\nInter-thread max queue depth 1\nAllowed accesses: 202000\n"
    assert parse_allowed(report + "Denied accesses: 0\n") == 202000
    assert parse_allowed("fapolicyd is already running\n") is None


# -- results, table, selection ------------------------------------------------------------------

HEADER: dict[str, object] = {
    "date": "2026-11-21T12:00:00+00:00",
    "mode": "quick",
    "machine": {"nproc": 2, "kernel": "6.18", "cpu_model": "x", "python": "3.11.7"},
    "settings": {"repeats": 2},
}


def _raw() -> dict[str, list[float]]:
    return {
        "enforce_opens_per_s": [95.0, 80.0],
        "c_responder_opens_per_s": [100.0, 100.0],
        "watch_lost": [0.0, 3.0],
    }


def test_result_document_has_the_issue_keys_and_validates() -> None:
    document = build_result(
        _raw(),
        units={"enforce_opens_per_s": "opens/s"},
        problems={"enforce_cached_opens_per_s": "enforce unavailable: not written yet"},
        header=HEADER,
        notes={"open_throughput": [{}]},
    )
    validate_result(document)
    json.loads(json.dumps(document))  # plain JSON all the way down
    assert document["schema"] == SCHEMA
    assert document["enforce_vs_c_responder"] == pytest.approx(0.875)
    figures = document["figures"]
    assert isinstance(figures, dict)
    ratio = figures["enforce_vs_c_responder"]
    assert ratio["values"] == pytest.approx([0.95, 0.8]) and ratio["repeats"] == 2
    assert ratio["met"] is False and ratio["target"] == ">= 0.9"
    assert figures["watch_loss"]["met"] is False  # the worst repeat lost 3
    assert document["cached_vs_no_listener"] is None
    assert "not written yet" in figures["cached_vs_no_listener"]["reason"]
    assert set(figures) == {spec.name for spec in FIGURES}


def test_validation_catches_a_tampered_document() -> None:
    document = build_result(_raw(), units={}, problems={}, header=HEADER, notes={})
    document["enforce_vs_c_responder"] = 2.0
    with pytest.raises(ValueError):
        validate_result(document)
    del document["machine"]
    with pytest.raises(ValueError):
        validate_result(document)


def test_table_shows_value_target_and_verdict() -> None:
    document = build_result(
        _raw(), units={}, problems={}, header=HEADER, notes={}, wanted=["enforce_vs_c_responder"]
    )
    table = render_table(document).splitlines()
    assert table[0].split() == ["figure", "value", "spread", "target", "met?"]
    assert len(table) == 3
    row = table[2].split()
    assert row[0] == "enforce_vs_c_responder" and row[1] == "0.875" and row[-1] == "NO"


def test_targets_compare_the_chosen_statistic() -> None:
    figure = Figure((0.0, 0.0, 2.0), "operations")
    assert Target("==", 0).met(figure)  # the median
    assert not Target("==", 0, "max").met(figure)
    assert Target(">=", 0.9).text() == ">= 0.9"
    assert format_value(0.7996, "ratio") == "0.800"
    assert format_value(1234567.8, "opens/s") == "1,234,568 opens/s"


def test_only_selects_the_probes_a_figure_needs() -> None:
    selection = select_probes(["watch_vs_fatrace"])
    assert [probe.name for probe in selection.probes] == ["fatrace", "watch"]
    assert selection.figures == ("watch_vs_fatrace",)
    everything = select_probes(None)
    assert everything.probes == PROBES and everything.figures is None
    by_probe = select_probes(["session_lookup"])
    assert by_probe.figures == ("session_lookup_per_s", "session_lookup_vs_proc_read")
    with pytest.raises(ValueError):
        select_probes(["no_such_figure"])


def test_every_figure_input_is_produced_by_some_probe() -> None:
    produced = {key for probe in PROBES for key in probe.produces}
    for spec in FIGURES:
        assert set(spec.needs) <= produced, spec.name


def test_quick_settings_are_smaller_than_full_ones() -> None:
    full, quick = Settings.full(), Settings.quick_run()
    assert quick.quick and not full.quick
    assert full.repeats >= 5 and full.rss_decisions == 1_000_000
    assert quick.open_seconds < full.open_seconds and quick.watch_seconds < full.watch_seconds
    assert quick.rss_decisions < full.rss_decisions
