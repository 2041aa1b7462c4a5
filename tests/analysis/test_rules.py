"""The verdict rules one by one, on small hand-built inputs: where each threshold lies
(inclusive or not), what the reason says, and what each judgement carries."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from coordinator.analysis import AnalysisConfig, Measurement
from coordinator.analysis.rules import (
    Held,
    ReachStats,
    blocked_p_value,
    dominant_failure,
    is_outage,
    reach_stats,
    step,
)
from coordinator.analysis.stats import mann_whitney_less, paired_t_less
from coordinator.analysis.throttle import (
    Reference,
    _fmt_bps,
    corroboration,
    judge_against_control,
    judge_against_groups,
    paired_samples,
    throughput_samples,
)
from tests.analysis.helpers import reach, tput

CFG = AnalysisConfig()
CONTROL = 1000.0
RESET = "connection_reset"


def _paired(ratios: dict[str, list[float]]) -> dict[str, list[Measurement]]:
    """Per agent, one paired sample per ratio: test = ratio * 1 kB/s, control 1 kB/s."""
    return {
        agent: [tput(float(i), "ru", agent, r * CONTROL, CONTROL) for i, r in enumerate(rs)]
        for agent, rs in ratios.items()
    }


def _unpaired(values: dict[str, list[float]]) -> dict[str, list[Measurement]]:
    return {
        agent: [tput(float(i), "ru", agent, v, None) for i, v in enumerate(vs)]
        for agent, vs in values.items()
    }


def _t3(t: float) -> float:
    """Student's t CDF on 3 degrees of freedom (closed form)."""
    s = t / math.sqrt(3.0)
    return 0.5 + (s / (1.0 + s * s) + math.atan(s)) / math.pi


def _paired_t_by_hand(ratios: list[float]) -> float:
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / (len(logs) - 1))
    return _t3(mean / (sd / math.sqrt(len(logs))))


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("bps", "text"),
    [
        (0.0, "0 B/s"),
        (999.0, "999 B/s"),
        (1000.0, "1 kB/s"),
        (16_250.0, "16.2 kB/s"),
        (999_000.0, "999 kB/s"),
        (1_000_000.0, "1 MB/s"),
        (2_500_000.0, "2.5 MB/s"),
    ],
)
def test_speeds_in_reasons_use_the_largest_unit_reached(bps: float, text: str) -> None:
    assert _fmt_bps(bps) == text


# ---------------------------------------------------------------- sample selection


def test_throughput_samples_keep_successful_downloads_with_a_value() -> None:
    good = tput(1.0, "ru", "a", 5e5, 1e6)
    failed = Measurement(
        at=2.0,
        group="ru",
        agent_id="a",
        target="twitter",
        kind="throughput",
        failure="generic_timeout",
        duration_s=30.0,
        throughput_bps=10.0,
        control_bps=1e6,
    )
    page = Measurement(
        at=3.0,
        group="ru",
        agent_id="a",
        target="twitter",
        kind="throughput",
        failure=None,
        duration_s=1.0,
        throughput_bps=10.0,
        block_page=True,
    )
    no_value = Measurement(
        at=4.0,
        group="ru",
        agent_id="a",
        target="twitter",
        kind="throughput",
        failure=None,
        duration_s=1.0,
    )
    tcp = reach(5.0, "ru", "a", "twitter")
    out = throughput_samples({"a": [good, failed, page, no_value, tcp], "b": [failed, tcp]})
    assert out == {"a": [good]}  # b has nothing usable and is left out


def test_paired_samples_need_a_positive_control() -> None:
    with_control = tput(1.0, "ru", "a", 5e5, 1e6)
    tiny_control = tput(2.0, "ru", "a", 0.2, 0.5)
    zero_control = tput(3.0, "ru", "a", 5e5, 0.0)
    no_control = tput(4.0, "ru", "a", 5e5, None)
    no_test = Measurement(
        at=5.0,
        group="ru",
        agent_id="b",
        target="twitter",
        kind="throughput",
        failure=None,
        duration_s=1.0,
        control_bps=1e6,
    )
    out = paired_samples(
        {"a": [with_control, tiny_control, zero_control, no_control], "b": [no_test]}
    )
    assert out == {"a": [with_control, tiny_control]}


# ---------------------------------------------------------------- against the control


def test_control_needs_min_samples_from_min_agents() -> None:
    j = judge_against_control(_paired({"a": [0.1, 0.1], "b": [0.1]}), CFG)
    assert (j.status, j.ratio, j.p_value, j.too_little_control) == (
        "inconclusive",
        None,
        None,
        True,
    )
    assert j.reason == "too little evidence: 3 paired samples from 2 agents (need 4 from 2)"
    j = judge_against_control(_paired({"a": [0.1, 0.1, 0.1, 0.1]}), CFG)
    assert j.status == "inconclusive" and j.too_little_control
    assert j.reason == "too little evidence: 4 paired samples from 1 agents (need 4 from 2)"


def test_ratio_exactly_at_throttle_ratio_counts_as_throttled() -> None:
    j = judge_against_control(_paired({"a": [0.4, 0.4], "b": [0.4, 0.4]}), CFG)
    assert j.status == "throttled"
    # every log ratio is the same negative number: no spread, p = 0
    assert (j.ratio, j.p_value, j.too_little_control) == (0.4, 0.0, False)
    assert j.reason == (
        "median 400 B/s vs same-agent control 1 kB/s, ratio 0.4, p=0, 2/2 agents slow, 4 samples"
    )


def test_a_stalled_download_is_as_slow_as_it_gets() -> None:
    """test = 0 B/s: the log of the ratio is taken at 1e-6 instead of minus infinity."""
    j = judge_against_control(_paired({"a": [0.0, 0.0], "b": [0.0, 0.0]}), CFG)
    assert (j.status, j.ratio, j.p_value) == ("throttled", 0.0, 0.0)
    assert j.reason.startswith("median 0 B/s vs same-agent control 1 kB/s, ratio 0, p=0, 2/2")


def test_p_exactly_at_alpha_is_significant() -> None:
    ratios = {"a": [0.1, 0.3], "b": [0.2, 0.35]}
    p = paired_t_less([math.log(r) for rs in ratios.values() for r in rs])
    assert 0.0 < p < 0.05
    assert judge_against_control(_paired(ratios), AnalysisConfig(alpha=p)).status == "throttled"


def test_half_of_the_agents_slow_is_a_quorum() -> None:
    """4 agents, 2 of them at a tenth of the control: the median of the agents' medians
    is 0.3, 2 >= min_agents and 2 >= half of 4."""
    j = judge_against_control(
        _paired({"a": [0.1, 0.1], "b": [0.1, 0.1], "c": [0.5, 0.5], "d": [1.0, 1.0]}), CFG
    )
    assert j.status == "throttled", j.reason
    assert j.ratio == pytest.approx(0.3)
    assert j.p_value is not None and j.p_value < 0.01
    assert j.reason.endswith(", 2/4 agents slow, 8 samples")


def test_half_of_the_agents_slow_but_the_median_above_the_threshold_is_not_throttled() -> None:
    j = judge_against_control(
        _paired({"a": [0.1, 0.1], "b": [0.4, 0.4], "c": [0.5, 0.5], "d": [1.0, 1.0]}), CFG
    )
    assert (j.status, j.ratio) == ("inconclusive", pytest.approx(0.45))
    assert j.p_value is not None and j.p_value < 0.05  # significant, but the effect is small
    assert j.reason.startswith("agents disagree: median 450 B/s vs same-agent control 1 kB/s")


def test_slow_median_but_too_few_slow_agents_is_agents_disagree() -> None:
    j = judge_against_control(_paired({"a": [0.1, 0.1], "b": [0.6, 0.6]}), CFG)
    assert (j.status, j.ratio) == ("inconclusive", pytest.approx(0.35))
    p = _paired_t_by_hand([0.1, 0.1, 0.6, 0.6])
    assert j.p_value == pytest.approx(p, rel=1e-9) and p < 0.05
    assert j.reason == (
        "agents disagree: median 350 B/s vs same-agent control 1 kB/s, ratio 0.35, "
        f"p={p:.2g}, 1/2 agents slow, 4 samples"
    )


def test_slow_but_scattered_is_not_significant_and_nothing_else() -> None:
    """Both agents' medians are exactly at the threshold (both count as slow), but the
    samples scatter from 1% to 79% of the control."""
    ratios = {"a": [0.05, 0.75], "b": [0.01, 0.79]}
    j = judge_against_control(_paired(ratios), CFG)
    p = _paired_t_by_hand([0.05, 0.75, 0.01, 0.79])
    assert p == pytest.approx(0.0774, abs=1e-4)
    assert (j.status, j.ratio, j.p_value) == ("inconclusive", 0.4, pytest.approx(p, rel=1e-9))
    assert j.reason == (
        "not significant (alpha 0.05): median 400 B/s vs same-agent control 1 kB/s, "
        "ratio 0.4, p=0.077, 2/2 agents slow, 4 samples"
    )


def test_not_significant_and_agents_disagree_are_both_reported() -> None:
    cfg = AnalysisConfig(alpha=0.001)
    j = judge_against_control(_paired({"a": [0.05, 0.2], "b": [0.5, 0.7]}), cfg)
    assert j.status == "inconclusive"
    assert j.reason.startswith(
        "not significant (alpha 0.001), agents disagree: median 350 B/s vs same-agent control"
    )


def test_p_exactly_at_alpha_is_not_called_not_significant_when_agents_disagree() -> None:
    ratios = {"a": [0.1, 0.1], "b": [0.6, 0.6]}
    p = paired_t_less([math.log(r) for rs in ratios.values() for r in rs])
    j = judge_against_control(_paired(ratios), AnalysisConfig(alpha=p))
    assert j.status == "inconclusive"
    assert j.reason.startswith("agents disagree: median 350 B/s")


def test_exactly_half_of_the_agents_slow_but_not_significant_is_only_not_significant() -> None:
    ratios = {"a": [0.2, 0.2], "b": [0.3, 0.3], "c": [0.5, 0.5], "d": [0.9, 0.9]}
    j = judge_against_control(_paired(ratios), AnalysisConfig(alpha=0.001))
    assert (j.status, j.ratio) == ("inconclusive", 0.4)
    assert j.p_value is not None and 0.001 < j.p_value < 0.05
    assert j.reason.startswith("not significant (alpha 0.001): median ")
    assert j.reason.endswith(", 2/4 agents slow, 8 samples")


def test_with_a_unanimous_quorum_a_median_at_the_threshold_is_not_ok() -> None:
    cfg = AnalysisConfig(agent_quorum=1.0)
    j = judge_against_control(_paired({"a": [0.1, 0.1], "b": [0.4, 0.4], "c": [0.9, 0.9]}), cfg)
    assert (j.status, j.ratio) == ("inconclusive", 0.4)
    assert j.reason.startswith("agents disagree: median 400 B/s")
    assert j.reason.endswith(", 2/3 agents slow, 6 samples")


def test_fast_as_the_control_is_ok_with_figures() -> None:
    ratios = {"a": [0.9, 1.1], "b": [1.0, 1.2]}
    j = judge_against_control(_paired(ratios), CFG)
    p = _paired_t_by_hand([0.9, 1.1, 1.0, 1.2])
    assert (j.status, j.ratio) == ("ok", pytest.approx(1.05))
    assert j.p_value == pytest.approx(p, rel=1e-9) and p > 0.5
    assert j.reason == (
        "median 1.05 kB/s vs same-agent control 1 kB/s, ratio 1.05, "
        f"p={p:.2g}, 0/2 agents slow, 4 samples"
    )


# ---------------------------------------------------------------- against the clean groups

REF = Reference.of([1.9e6, 2.0e6, 2.1e6, 2.2e6], ["de", "us"])
REF_1M = Reference.of([0.9e6, 1.0e6, 1.0e6, 1.1e6], ["de"])


def test_a_reference_needs_min_samples_and_a_positive_median() -> None:
    assert Reference.of([2e6] * 4, ["de"]).usable(CFG)
    assert not Reference.of([2e6] * 3, ["de"]).usable(CFG)
    assert not Reference.of([0.0] * 4, ["de"]).usable(CFG)
    assert Reference.of([0.5] * 4, ["de"]).usable(CFG)  # tiny, but a speed
    empty = Reference.of([], [])
    assert (empty.median, empty.values, empty.groups) == (None, (), ())
    assert not empty.usable(CFG)
    assert Reference.of([3.0, 1.0, 2.0], ("a", "b")) == Reference(
        values=(3.0, 1.0, 2.0), median=2.0, groups=("a", "b")
    )


def test_without_control_too_little_evidence_comes_first() -> None:
    j = judge_against_groups(_unpaired({"a": [19e3, 21e3], "b": [18e3]}), REF, CFG)
    assert (j.status, j.ratio, j.p_value) == ("inconclusive", None, None)
    assert j.reason == "too little evidence: 3 samples from 2 agents, no control"
    j = judge_against_groups(_unpaired({"a": [19e3, 21e3, 20e3, 18e3]}), REF, CFG)
    assert j.reason == "too little evidence: 4 samples from 1 agents, no control"


def test_without_control_an_unusable_reference_decides_nothing() -> None:
    tests = _unpaired({"a": [19e3, 21e3], "b": [18e3, 22e3]})
    j = judge_against_groups(tests, Reference.of([2e6] * 3, ["de"]), CFG)
    assert (j.status, j.ratio, j.p_value) == ("inconclusive", None, None)
    assert j.reason == "no control measured and no clean group to compare with"


def test_without_control_a_hundredfold_gap_is_throttled() -> None:
    j = judge_against_groups(_unpaired({"a": [19e3, 21e3], "b": [18e3, 22e3]}), REF, CFG)
    assert j.status == "throttled"
    # every test below every reference value, 4 vs 4: exact p = 1/70
    assert j.p_value == pytest.approx(1 / 70)
    assert j.ratio == pytest.approx(20e3 / 2.05e6)
    assert j.reason == (
        "no control; median 20 kB/s vs clean groups de,us 2.05 MB/s (ratio 0.00976), "
        "p=0.014, 2/2 agents slow"
    )


def test_without_control_a_ratio_exactly_at_cross_throttle_ratio_is_throttled() -> None:
    j = judge_against_groups(_unpaired({"a": [1e5, 1e5], "b": [1e5, 1e5]}), REF_1M, CFG)
    assert (j.status, j.ratio) == ("throttled", 0.1)
    assert j.reason.endswith(", 2/2 agents slow")


def test_without_control_p_exactly_at_alpha_is_significant() -> None:
    tests = _unpaired({"a": [19e3, 21e3], "b": [18e3, 22e3]})
    p = mann_whitney_less([19e3, 21e3, 18e3, 22e3], list(REF.values))
    assert judge_against_groups(tests, REF, AnalysisConfig(alpha=p)).status == "throttled"


def test_without_control_half_of_the_agents_slow_is_a_quorum() -> None:
    tests = _unpaired({"a": [1e4, 1e4], "b": [1e4, 1e4], "c": [1.5e5, 1.5e5], "d": [1e6, 1e6]})
    j = judge_against_groups(tests, REF_1M, CFG)
    assert (j.status, j.ratio) == ("throttled", pytest.approx(0.08))
    assert j.reason.endswith(", 2/4 agents slow")


def test_without_control_one_slow_agent_of_two_is_mixed_evidence() -> None:
    j = judge_against_groups(_unpaired({"a": [1e4, 1e4], "b": [1.5e5, 1.5e5]}), REF_1M, CFG)
    assert (j.status, j.ratio) == ("inconclusive", pytest.approx(0.08))
    assert j.p_value is not None and j.p_value < 0.05
    assert j.reason.startswith("mixed evidence: no control; median 80 kB/s vs clean groups de")
    assert j.reason.endswith(", 1/2 agents slow")


@pytest.mark.parametrize(
    "values",
    [
        {"a": [5e4, 5e4], "b": [5e5, 5e5]},  # one agent at 5%, one at 50%
        {"a": [5e4, 5e4], "b": [5e4, 5e4], "c": [5e5, 5e5], "d": [5e5, 5e5]},
    ],
)
def test_without_control_between_the_two_thresholds_is_mixed_evidence(
    values: dict[str, list[float]],
) -> None:
    j = judge_against_groups(_unpaired(values), REF_1M, CFG)
    assert (j.status, j.ratio) == ("inconclusive", pytest.approx(0.275))
    assert j.p_value is not None and j.p_value < 0.05
    assert j.reason.startswith("mixed evidence: no control; median 275 kB/s vs clean groups de")


def test_without_control_a_unanimous_quorum_needs_every_agent_slow() -> None:
    tests = _unpaired({"a": [1e4, 1e4], "b": [1e4, 1e4], "c": [5e5, 5e5]})
    j = judge_against_groups(tests, REF_1M, AnalysisConfig(agent_quorum=1.0))
    assert (j.status, j.ratio) == ("inconclusive", pytest.approx(0.01))
    assert j.reason.startswith("mixed evidence: ")
    assert j.reason.endswith(", 2/3 agents slow")
    assert judge_against_groups(tests, REF_1M, CFG).status == "throttled"


def test_without_control_exactly_at_throttle_ratio_is_not_ok() -> None:
    j = judge_against_groups(_unpaired({"a": [4e5, 4e5], "b": [4e5, 4e5]}), REF_1M, CFG)
    assert (j.status, j.ratio) == ("inconclusive", 0.4)
    assert j.reason.startswith("mixed evidence: ")


def test_without_control_one_slow_agent_of_two_is_not_ok_either() -> None:
    j = judge_against_groups(_unpaired({"a": [5e4, 5e4], "b": [0.9e6, 0.9e6]}), REF_1M, CFG)
    assert (j.status, j.ratio) == ("inconclusive", pytest.approx(0.475))
    assert j.reason.endswith(", 1/2 agents slow")


def test_without_control_as_fast_as_the_clean_groups_is_ok() -> None:
    tests = _unpaired({"a": [0.9e6, 0.95e6], "b": [1.0e6, 0.85e6]})
    j = judge_against_groups(tests, REF_1M, CFG)
    assert (j.status, j.ratio) == ("ok", pytest.approx(0.925))
    assert j.p_value == pytest.approx(
        mann_whitney_less([0.9e6, 0.95e6, 1.0e6, 0.85e6], list(REF_1M.values))
    )
    assert j.reason == (
        "no control; median 925 kB/s vs clean groups de 1 MB/s (ratio 0.925), "
        f"p={j.p_value:.2g}, 0/2 agents slow"
    )


# ---------------------------------------------------------------- corroboration


def test_corroboration_texts() -> None:
    seven = Reference.of([2e6] * 4, list("abcdefg"))
    assert corroboration(8e5, seven, CFG) == (
        "corroborated by clean groups a,b,c,d,e and 2 more (ratio 0.4)"
    )
    five = Reference.of([2e6] * 4, list("abcde"))
    assert corroboration(1e4, five, CFG) == "corroborated by clean groups a,b,c,d,e (ratio 0.005)"
    assert corroboration(1e6, Reference.of([1.5e6] * 4, ["de"]), CFG) == (
        "not corroborated by clean groups de (ratio 0.667)"
    )
    assert corroboration(1e4, Reference.of([2e6] * 3, ["de"]), CFG) == (
        "no clean group to corroborate"
    )


# ---------------------------------------------------------------- reachability


def _agents(**outcomes: list[str | None]) -> dict[str, list[Measurement]]:
    """Per agent, one tcp probe per outcome (a failure class or None for success)."""
    return {
        agent: [reach(float(i), "ru", agent, "facebook", f) for i, f in enumerate(fs)]
        for agent, fs in outcomes.items()
    }


def test_reach_stats_count_evidence_and_leave_out_forbidden() -> None:
    by_agent = _agents(
        c=["target_forbidden", "target_forbidden"],  # no evidence: not an agent here
        a=["connection_reset", "connection_reset", None],
        b=["generic_timeout", "target_forbidden", None],
    )
    s = reach_stats(by_agent, CFG)
    assert (s.samples, s.failures, s.agents) == (5, 3, 2)
    assert s.failure_classes == Counter({"connection_reset": 2, "generic_timeout": 1})
    assert s.klass == "mixed"  # 60% failed: neither fails (75%) nor works (75% ok)


def test_reach_fails_at_exactly_the_block_failure_ratio_from_two_failing_agents() -> None:
    s = reach_stats(
        _agents(a=["connection_reset"] * 3 + [None], b=["connection_reset"] * 3 + [None]), CFG
    )
    assert (s.klass, s.samples, s.failures, s.agents) == ("fails", 8, 6, 2)


def test_reach_an_agent_failing_half_of_its_samples_is_not_a_failing_agent() -> None:
    s = reach_stats(_agents(a=["connection_reset"] * 2, b=["connection_reset", None]), CFG)
    assert (s.failures, s.samples) == (3, 4)  # 75% failed overall ...
    assert s.klass == "mixed"  # ... but only one agent fails on most of its samples


def test_reach_two_agents_failing_most_but_under_the_failure_ratio_is_mixed() -> None:
    s = reach_stats(_agents(a=[RESET, RESET, None], b=[RESET, RESET, None]), CFG)
    assert (s.failures, s.samples, s.klass) == (4, 6, "mixed")  # 67% < 75%


def test_reach_works_at_exactly_the_success_ratio() -> None:
    s = reach_stats(_agents(a=[None, None], b=[None, "connection_reset"]), CFG)
    assert (s.klass, s.samples, s.failures) == ("works", 4, 1)


def test_reach_needs_min_samples_and_min_agents() -> None:
    assert reach_stats(_agents(a=[None, None], b=[None]), CFG).klass == "insufficient"
    assert reach_stats(_agents(a=[None] * 6), CFG).klass == "insufficient"
    assert reach_stats(_agents(a=[None, None], b=[None, None]), CFG).klass == "works"
    empty = reach_stats({}, CFG)
    assert (empty.klass, empty.samples, empty.failures, empty.agents) == ("insufficient", 0, 0, 0)


def _stats(klass: str, samples: int = 4, failures: int = 0) -> ReachStats:
    return ReachStats(
        klass=klass,  # type: ignore[arg-type]
        samples=samples,
        failures=failures,
        agents=2,
        failure_classes=Counter(),
    )


def test_outage_needs_two_failing_groups_and_no_decided_group_that_does_not_fail() -> None:
    fails, works, mixed, few = (
        _stats("fails", 4, 4),
        _stats("works"),
        _stats("mixed", 4, 2),
        _stats("insufficient", 1),
    )
    assert is_outage({"ru": fails, "de": fails}, CFG)
    assert is_outage({"ru": fails, "de": fails, "us": few}, CFG)  # no evidence is no veto
    assert not is_outage({"ru": fails}, CFG)
    assert not is_outage({"ru": fails, "us": few}, CFG)
    assert not is_outage({"ru": fails, "de": fails, "us": works}, CFG)
    assert not is_outage({"ru": fails, "de": fails, "us": mixed}, CFG)
    assert not is_outage({"ru": few, "de": few}, CFG)
    assert is_outage({"ru": fails}, AnalysisConfig(outage_min_groups=1))


def test_blocked_p_value_pools_only_the_working_groups() -> None:
    per_group = {
        "ru": _stats("fails", 4, 4),
        "us": _stats("works", 4, 1),
        "de": _stats("works", 4, 0),
        "kz": _stats("mixed", 4, 2),
        "by": _stats("fails", 4, 4),
        "am": _stats("insufficient", 1, 0),
    }
    found = blocked_p_value("ru", per_group)
    assert found is not None
    p, working = found
    # 4 of 4 failed vs 1 of 8 (de and us pooled): the hypergeometric tail a >= 4 with
    # N = 12, K = 5, n = 4 is C(5,4) C(7,0) / C(12,4) = 5/495
    assert p == pytest.approx(5 / 495)
    assert working == ["de", "us"]


def test_blocked_p_value_applies_only_to_a_failing_group_with_somewhere_it_works() -> None:
    assert blocked_p_value("ru", {"de": _stats("works")}) is None  # ru not measured
    assert blocked_p_value("ru", {"ru": _stats("mixed", 4, 2), "de": _stats("works")}) is None
    assert blocked_p_value("ru", {"ru": _stats("fails", 4, 4), "by": _stats("fails", 4, 4)}) is None


def test_dominant_failure_is_the_most_common_class_ties_alphabetical() -> None:
    assert dominant_failure(
        [Counter({"generic_timeout": 2}), Counter({"connection_reset": 3})]
    ) == ("connection_reset")
    assert (
        dominant_failure(
            [
                Counter({"generic_timeout": 2, "connection_reset": 1}),
                Counter({"connection_reset": 1}),
            ]
        )
        == "connection_reset"
    )
    assert dominant_failure([Counter({"tls_cert_invalid": 1, "dns_nxdomain": 1})]) == "dns_nxdomain"
    assert dominant_failure([]) == ""
    assert dominant_failure([Counter(), Counter()]) == ""


# ---------------------------------------------------------------- hysteresis

BAD = frozenset({"throttled", "blocked"})


def _step(prev: Held | None, raw: str, now: float, cfg: AnalysisConfig = CFG) -> Held:
    return step(prev, raw, now, cfg, bad=BAD, recovered="ok")


def test_first_verdict_and_changes_between_good_states_are_immediate() -> None:
    first = _step(None, "inconclusive", 5.0)
    assert first == Held(state="inconclusive", since=5.0)
    assert _step(first, "inconclusive", 6.0) is first  # unchanged: since stays
    assert _step(first, "ok", 7.0) == Held(state="ok", since=7.0)
    assert _step(Held(state="ok", since=1.0), "throttled", 8.0) == Held(
        state="throttled", since=8.0
    )


def test_a_bad_state_seen_again_stays_and_cancels_recovery() -> None:
    held = Held(state="throttled", since=0.0)
    assert _step(held, "throttled", 10.0) is held
    recovering = Held(state="throttled", since=0.0, recovering_since=10.0, recovering_count=1)
    assert _step(recovering, "throttled", 20.0) == Held(state="throttled", since=0.0)
    # a different bad state replaces it at once
    assert _step(recovering, "blocked", 20.0) == Held(state="blocked", since=20.0)


def test_a_non_ok_verdict_holds_a_bad_state_and_cancels_recovery() -> None:
    held = Held(state="blocked", since=0.0)
    assert _step(held, "inconclusive", 10.0) is held
    recovering = Held(state="blocked", since=0.0, recovering_since=10.0, recovering_count=1)
    assert _step(recovering, "inconclusive", 20.0) == Held(state="blocked", since=0.0)


def test_recovery_needs_both_the_evaluations_and_the_seconds() -> None:
    cfg = AnalysisConfig(recover_evaluations=2, recover_s=20.0)
    held = Held(state="throttled", since=0.0)
    held = _step(held, "ok", 10.0, cfg)
    assert held == Held(state="throttled", since=0.0, recovering_since=10.0, recovering_count=1)
    held = _step(held, "ok", 25.0, cfg)  # 2 evaluations, but only 15 s
    assert held == Held(state="throttled", since=0.0, recovering_since=10.0, recovering_count=2)
    assert _step(held, "ok", 30.0, cfg) == Held(state="ok", since=30.0)  # exactly 20 s


def test_recovery_by_count_alone_when_no_seconds_are_required() -> None:
    cfg = AnalysisConfig(recover_evaluations=3, recover_s=0.0)
    held = Held(state="throttled", since=0.0)
    held = _step(held, "ok", 1.0, cfg)
    held = _step(held, "ok", 2.0, cfg)
    assert held.state == "throttled" and held.recovering_count == 2
    assert _step(held, "ok", 3.0, cfg) == Held(state="ok", since=3.0)
    # and a single evaluation is enough when that is what is configured
    one = AnalysisConfig(recover_evaluations=1, recover_s=0.0)
    assert _step(Held(state="blocked", since=0.0), "ok", 1.0, one) == Held(state="ok", since=1.0)
