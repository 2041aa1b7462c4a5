"""Any value an agent can send: the statistics never raise, ingest refuses what no link can
carry, and one target whose evaluation fails leaves every other verdict updating."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.analysis import Analyzer, throughput
from coordinator.analysis.stats import mann_whitney_less, median, paired_t_less, student_t_cdf
from coordinator.convert import task_result_from_pb
from coordinator.model import AgentInfo
from coordinator.observe import measurement_from_result
from coordinator.vouch import MAX_NUMBER, Refused
from protos.vantage.v1 import vantage_pb2 as pb
from tests.analysis.helpers import paired_rounds

finite = st.floats(allow_nan=False, allow_infinity=False)
extreme = st.one_of(
    finite,
    st.sampled_from([1e308, -1e308, 5e-324, 1e-10, 0.0, MAX_NUMBER, math.nan, math.inf, -math.inf]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30))
def test_the_statistics_are_total_on_any_finite_input(values: list[float]) -> None:
    m = median(values)
    assert math.isfinite(m) and min(values) <= m <= max(values)
    p = paired_t_less(values)
    assert 0.0 <= p <= 1.0
    q = mann_whitney_less(values, list(reversed(values)))
    assert 0.0 <= q <= 1.0
    for t in (*values[:3], math.nan, math.inf):
        c = student_t_cdf(t, 3)
        assert 0.0 <= c <= 1.0


def test_the_freeze_of_record_is_no_evidence() -> None:
    """1e308 against 1e-10: the paired t-test once overflowed and ``betainc`` raised."""
    assert paired_t_less([1e308, -1e308, 1e308]) == 1.0
    assert median([1e308, 1e308]) == 1e308


def _result(bps: float, control: float) -> pb.TaskResult:
    data = pb.ThroughputData(url="https://t.example/big", bytes=1000, bytes_per_second=bps, sustained_bps=bps)
    data.control.bytes = 1000
    data.control.bytes_per_second = control
    data.control.sustained_bps = control
    return pb.TaskResult(
        task_id="t-1", job_id="j-1", agent_id="a", started_at=100.0, finished_at=101.0,
        result=pb.ProbeResult(kind="throughput", target="https://t.example/big", duration_s=1.0, throughput=data),
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(extreme, extreme)
def test_any_rate_an_agent_sends_is_refused_or_judged_never_an_error(bps: float, control: float) -> None:
    analyzer = Analyzer()
    paired_rounds(analyzer, range(6), {"de": 1e6, "us": 1e6}, control_bps=1e6, target="t")
    try:
        result = task_result_from_pb(_result(bps, control))
    except Refused as why:
        assert not (abs(bps) <= MAX_NUMBER and abs(control) <= MAX_NUMBER), why
        return
    for i in range(2):
        for r in range(6):
            m = measurement_from_result(result, AgentInfo(agent_id=f"ru-{i}", region="ru"), "t", "region")
            analyzer.add(replace(m, at=r * 10.0 + i))
    snap = analyzer.evaluate(60.0)
    assert analyzer.evaluation_errors == 0
    assert {r.group for r in snap.regions if r.target == "t"} >= {"de", "us"}
    for r in snap.regions:
        assert r.ratio is None or math.isfinite(r.ratio)


def test_one_target_that_fails_to_evaluate_leaves_the_others_updating(monkeypatch: pytest.MonkeyPatch) -> None:
    analyzer = Analyzer()
    for target in ("good", "bad"):
        paired_rounds(analyzer, range(6), {"de": 1e6, "ru": 1e6, "us": 1e6}, control_bps=1e6, target=target)
    first = analyzer.evaluate(60.0)
    assert {(r.target, r.verdict) for r in first.regions} == {("good", "ok"), ("bad", "ok")}

    real = throughput.judge_groups

    def fragile(groups, cfg, series):  # type: ignore[no-untyped-def]
        if any(m.target == "bad" for kinds in groups.values() for ms in kinds.get(series, {}).values() for m in ms):
            raise OverflowError("a value no rule foresaw")
        return real(groups, cfg, series)

    monkeypatch.setattr(throughput, "judge_groups", fragile)
    # ru's "good" target is now throttled: its verdict must move although "bad" fails
    paired_rounds(analyzer, range(6, 40), {"de": 1e6, "ru": 1e4, "us": 1e6}, control_bps=1e6, target="good")
    paired_rounds(analyzer, range(6, 40), {"de": 1e6, "ru": 1e6, "us": 1e6}, control_bps=1e6, target="bad")
    snap = analyzer.evaluate(400.0)
    assert analyzer.evaluation_errors == 1
    verdicts = {(r.group, r.target): r.verdict for r in snap.regions}
    assert verdicts[("ru", "good")] == "throttled", snap.regions
    # the failed target keeps what was last decided for it
    assert {r for r in snap.regions if r.target == "bad"} == {r for r in first.regions if r.target == "bad"}
    monkeypatch.setattr(throughput, "judge_groups", real)
    again = analyzer.evaluate(401.0)
    assert analyzer.evaluation_errors == 1
    assert {(r.group, r.verdict) for r in again.regions if r.target == "bad"} == {
        ("de", "ok"), ("ru", "ok"), ("us", "ok")
    }


def test_a_submitter_who_fills_the_target_table_cannot_starve_anothers_targets() -> None:
    """Fair shares of ``max_targets``: junk from one token makes room for another's target,
    and the junk owner cannot push the other out in turn."""
    from coordinator.analysis import AnalysisConfig
    from tests.analysis.helpers import tput

    analyzer = Analyzer(AnalysisConfig(max_targets=10))
    for i in range(10):
        analyzer.add(tput(float(i), "de", "de-1", 1e6, 1e6, target=f"junk-{i}"), owner="mallory")
    analyzer.add(tput(20.0, "de", "de-1", 1e6, 1e6, target="junk-10"), owner="mallory")
    assert analyzer.dropped_targets == 1 and analyzer.evicted_targets == 0  # alone at the cap: dropped
    for r in range(6):
        for g, bps in {"de": 1e6, "ru": 1e4, "us": 1e6}.items():
            for a in range(2):
                analyzer.add(tput(30.0 + r * 10 + a, g, f"{g}-{a}", bps, 1e6, target="news"), owner="alice")
    assert analyzer.evicted_targets == 1  # the oldest junk made room
    # mallory's new junk cannot push alice's target out: alice holds less than her share
    for i in range(20, 40):
        analyzer.add(tput(100.0 + i, "de", "de-1", 1e6, 1e6, target=f"junk-{i}"), owner="mallory")
    assert analyzer.evicted_targets == 1 and analyzer.dropped_targets == 21
    snap = analyzer.evaluate(100.0)
    assert ("ru", "news", "throttled") in {(r.group, r.target, r.verdict) for r in snap.regions}
    assert len({r.target for r in snap.regions}) <= 10


def test_the_median_comes_with_its_95_percent_interval() -> None:
    from coordinator.analysis.stats import median_interval

    assert median_interval([5.0]) == (5.0, 5.0)
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)  # under 6: the range
    values = [float(v) for v in range(1, 101)]  # n=100: rank floor((100 - 19.6) / 2) = 40, index 39
    assert median_interval(values) == (40.0, 61.0)
    with pytest.raises(ValueError, match="at least one"):
        median_interval([])


def test_a_regions_rate_is_reported_with_its_interval() -> None:
    analyzer = Analyzer()
    paired_rounds(analyzer, range(6), {"de": 1e6, "ru": 2e4, "us": 1e6}, control_bps=1e6, target="t")
    snap = analyzer.evaluate(60.0)
    ru = next(r for r in snap.regions if r.group == "ru")
    assert ru.throughput_bps is not None and ru.throughput_low_bps is not None and ru.throughput_high_bps is not None
    assert ru.throughput_low_bps <= ru.throughput_bps <= ru.throughput_high_bps
    assert ru.throughput_high_bps <= 2e4 * 1.06 and ru.throughput_low_bps >= 2e4  # paired_rounds' +-3% jitter
    assert ru.upload_low_bps is None  # no uploads measured
