"""What one evaluation reports, field by field: the reason texts operators read in
``vantage verdicts``, the precedence of the verdicts (docs/detection.md), the held-verdict
texts of the hysteresis, the success ratios and the window edges."""

from __future__ import annotations

from coordinator.analysis import AnalysisConfig, Analyzer, RegionVerdict, Snapshot
from tests.analysis.helpers import reach, tput

FAST = 1_000_000.0


def _region(snap: Snapshot, group: str, target: str = "t") -> RegionVerdict:
    found = [r for r in snap.regions if r.group == group and r.target == target]
    assert len(found) == 1, snap.regions
    return found[0]


def _probe(
    a: Analyzer,
    groups: dict[str, list[str | None]],
    kind: str = "tcp",
    target: str = "t",
    agents: int = 2,
) -> None:
    """Per group, one round per listed outcome; each round one probe from every agent."""
    for group, outcomes in groups.items():
        for r, failure in enumerate(outcomes):
            for i in range(agents):
                a.add(reach(r * 10.0 + i, group, f"{group}-{i}", target, failure, kind=kind))


def _throughput(
    a: Analyzer, group: str, ratio: float, rounds: int = 2, start: float = 0.0, control: bool = True
) -> None:
    """Two agents, one paired download each per 10 s round, test = ratio * control."""
    for r in range(rounds):
        for i in range(2):
            a.add(
                tput(
                    start + r * 10.0 + i,
                    group,
                    f"{group}-{i}",
                    FAST * ratio,
                    FAST if control else None,
                    "t",
                )
            )


RESET, TIMEOUT = "connection_reset", "generic_timeout"

# ---------------------------------------------------------------- reachability reasons


def test_blocked_reason_lists_every_failing_kind_and_where_it_works() -> None:
    a = Analyzer()
    _probe(a, {"ru": [RESET, RESET], "de": [None, None], "us": [None, None]})
    _probe(a, {"ru": [TIMEOUT, TIMEOUT], "de": [None, None], "us": [None, None]}, kind="http")
    snap = a.evaluate(15.0)
    ru = _region(snap, "ru")
    # 4 of 4 failed vs 0 of 8: Fisher p = 1/C(12, 4) = 1/495 = 0.002 per kind; the two
    # classes are 4 each, so the alphabetically first is the dominant one
    assert (ru.verdict, ru.failure, ru.samples, ru.agents) == ("blocked", RESET, 8, 2)
    assert ru.reason == (
        "connection_reset: http failed 4/4 from 2 agents, works from de,us, p=0.002; "
        "tcp failed 4/4 from 2 agents, works from de,us, p=0.002"
    )
    de = _region(snap, "de")
    assert (de.verdict, de.failure, de.reason) == ("ok", "", "works: http 4/4 ok, tcp 4/4 ok")
    assert (de.throughput_bps, de.ratio) == (None, None)
    assert snap.targets[0].reason == ""


def test_failing_without_a_significant_difference_is_inconclusive_with_its_p() -> None:
    a = Analyzer()
    # ru 4/4 failed, de 1/4 (still "works" at 75% success): p = C(5,4)/C(8,4) = 5/70
    a.add(reach(0.0, "de", "de-0", "t", RESET))
    a.add(reach(1.0, "de", "de-1", "t"))
    _probe(a, {"ru": [RESET, RESET]})
    _probe(a, {"de": [None]}, agents=2)
    snap = a.evaluate(15.0)
    ru = _region(snap, "ru")
    assert (ru.verdict, ru.failure) == ("inconclusive", "")
    assert ru.reason == "tcp failed 4/4 (connection_reset), not significant (p=0.071)"
    assert _region(snap, "de").reason == "works: tcp 3/4 ok"


def test_each_troubled_kind_is_explained() -> None:
    a = Analyzer()
    _probe(a, {"kz": ["dns_nxdomain", None]}, kind="dns")
    _probe(a, {"kz": [RESET, RESET]})
    kz = _region(a.evaluate(15.0), "kz")
    assert kz.verdict == "inconclusive"
    assert kz.reason == (
        "dns failed 2/4 (dns_nxdomain), mixed results; "
        "tcp failed 4/4 (connection_reset), no group where it works to compare"
    )


def test_too_little_reachability_evidence_says_how_much_there_is() -> None:
    a = Analyzer()
    a.add(reach(0.0, "ru", "ru-0", "t"))
    a.add(reach(1.0, "ru", "ru-0", "t"))
    a.add(reach(2.0, "ru", "ru-0", "t", kind="dns"))
    a.add(reach(3.0, "ru", "ru-1", "t", kind="dns"))
    ru = _region(a.evaluate(5.0), "ru")
    assert (ru.verdict, ru.samples, ru.agents) == ("inconclusive", 4, 2)
    assert ru.reason == "too little evidence: 4 samples, at most 2 agents per kind (need 4 from 2)"


def test_success_ratios_count_block_pages_and_refusals_as_not_successful() -> None:
    a = Analyzer()
    a.add(reach(0.0, "ru", "ru-0", "t", kind="http"))
    a.add(reach(1.0, "ru", "ru-0", "t", kind="http"))
    a.add(reach(2.0, "ru", "ru-1", "t", kind="http", block_page=True))
    a.add(reach(3.0, "ru", "ru-1", "t", "target_forbidden", kind="http"))
    a.add(reach(4.0, "ru", "ru-1", "t", "dns_servfail", kind="dns"))
    snap = a.evaluate(5.0)
    assert [(s.group, s.target, s.kind, s.ratio, s.samples) for s in snap.success] == [
        ("ru", "t", "dns", 0.0, 1),
        ("ru", "t", "http", 0.5, 4),
    ]
    assert snap.measurements == 5


# ---------------------------------------------------------------- precedence


def test_a_throughput_verdict_comes_before_reachability_that_works() -> None:
    a = Analyzer()
    _throughput(a, "de", 1.0)
    _probe(a, {"de": [None, None]})
    de = _region(a.evaluate(15.0), "de")
    assert de.verdict == "ok"
    assert de.reason.startswith("median 1 MB/s vs same-agent control 1 MB/s, ratio 1, p=1")
    assert (de.throughput_bps, de.ratio, de.samples) == (FAST, 1.0, 8)


def test_an_undecided_throughput_keeps_working_reachability_inconclusive() -> None:
    a = Analyzer()
    _throughput(a, "de", 1.0, rounds=1)
    _probe(a, {"de": [None, None, None]})
    de = _region(a.evaluate(25.0), "de")
    assert de.verdict == "inconclusive"
    assert de.reason == "too little evidence: 2 paired samples from 2 agents (need 4 from 2)"


def test_troubled_reachability_beats_an_ok_throughput() -> None:
    a = Analyzer()
    _throughput(a, "de", 1.0)
    _probe(a, {"de": [RESET, None]})
    de = _region(a.evaluate(15.0), "de")
    assert (de.verdict, de.reason) == (
        "inconclusive",
        "tcp failed 2/4 (connection_reset), mixed results",
    )
    assert de.ratio == 1.0  # the throughput figures are still reported


def test_throttled_beats_troubled_reachability_and_blocked_beats_throttled() -> None:
    a = Analyzer()
    _throughput(a, "ru", 0.01)
    _throughput(a, "by", 0.01)
    _throughput(a, "de", 1.0)
    _probe(a, {"ru": [RESET, None], "by": [RESET, RESET], "de": [None, None]})
    snap = a.evaluate(15.0)
    ru = _region(snap, "ru")
    assert ru.verdict == "throttled", ru.reason
    assert ru.reason.startswith("median 10 kB/s vs same-agent control 1 MB/s, ratio 0.01, p=0,")
    assert ru.reason.endswith("; corroborated by clean groups de (ratio 0.01)")
    assert (ru.ratio, ru.throughput_bps) == (0.01, 10_000.0)
    by = _region(snap, "by")
    assert (by.verdict, by.failure) == ("blocked", RESET)
    assert by.ratio == 0.01


def test_in_an_outage_a_throttled_group_stays_throttled_and_the_others_say_why_not_blocked() -> (
    None
):
    a = Analyzer()
    _throughput(a, "ru", 0.01)
    _throughput(a, "de", 1.0)
    _probe(a, {g: [RESET, RESET] for g in ("ru", "de", "us")})
    snap = a.evaluate(15.0)
    assert snap.targets[0].outage
    assert snap.targets[0].reason == "tcp fails from every group (de, ru, us)"
    assert _region(snap, "ru").verdict == "throttled"
    for g in ("de", "us"):
        v = _region(snap, g)
        assert (v.verdict, v.failure) == ("inconclusive", "")
        assert v.reason == (
            "target outage: it fails from every group, so a regional block is not observable"
        )


def test_outage_reason_names_every_failing_kind_and_the_groups_of_the_first() -> None:
    a = Analyzer()
    _probe(a, {g: [RESET, RESET] for g in ("ru", "de", "us")})
    _probe(a, {g: [TIMEOUT, TIMEOUT] for g in ("ru", "de")}, kind="http")
    (target,) = a.evaluate(15.0).targets
    assert (target.outage, target.since) == (True, 15.0)
    assert target.reason == "http/tcp fails from every group (de, ru)"


# ---------------------------------------------------------------- the groups' reference


def test_a_group_whose_control_reads_zero_is_compared_with_the_clean_groups() -> None:
    a = Analyzer()
    _throughput(a, "de", 1.0)
    for r in range(2):
        for i in range(2):
            a.add(tput(r * 10.0 + i, "ru", f"ru-{i}", 5_000.0 + 1_000.0 * (2 * r + i), 0.0, "t"))
    ru = _region(a.evaluate(15.0), "ru")
    assert ru.verdict == "throttled", ru.reason
    assert ru.reason.startswith("no control; median 6.5 kB/s vs clean groups de 1 MB/s")
    assert ru.throughput_bps == 6_500.0


def test_a_group_with_a_control_but_too_few_pairs_is_not_compared_with_other_groups() -> None:
    a = Analyzer()
    _throughput(a, "de", 1.0)
    _throughput(a, "ru", 0.01, rounds=1)
    ru = _region(a.evaluate(15.0), "ru")
    assert (ru.verdict, ru.ratio) == ("inconclusive", None)
    assert ru.reason == "too little evidence: 2 paired samples from 2 agents (need 4 from 2)"


def test_only_groups_whose_control_says_ok_are_a_reference() -> None:
    a = Analyzer()
    _throughput(a, "de", 1.0)
    _throughput(a, "by", 0.01)  # throttled itself: not a clean group
    _throughput(a, "kz", 1.0, rounds=1)  # undecided: not a clean group
    _throughput(a, "ru", 0.01)
    ru = _region(a.evaluate(15.0), "ru")
    assert ru.reason.endswith("; corroborated by clean groups de (ratio 0.01)")


# ---------------------------------------------------------------- held verdicts


def test_held_throttled_reason_shows_the_recovery_progress() -> None:
    a = Analyzer(AnalysisConfig(recover_evaluations=2, recover_s=20.0, max_samples_per_agent=2))
    _throughput(a, "ru", 0.01)
    _throughput(a, "de", 1.0)  # fast from de: the slowness is ru's own
    assert _region(a.evaluate(15.0), "ru").verdict == "throttled"
    _throughput(a, "ru", 1.0, start=20.0)  # the window now holds fast samples only
    v = _region(a.evaluate(35.0), "ru")
    assert (v.verdict, v.since) == ("throttled", 15.0)
    assert v.reason.startswith("held throttled (now ok: median 1 MB/s vs same-agent control")
    assert v.reason.endswith("); recovering for 1 evaluations / 0 s (needs 2 and 20 s)")
    v = _region(a.evaluate(45.0), "ru")
    assert v.reason.endswith("); recovering for 2 evaluations / 10 s (needs 2 and 20 s)")
    v = _region(a.evaluate(55.0), "ru")
    assert (v.verdict, v.since, v.reason.startswith("median 1 MB/s")) == ("ok", 55.0, True)


def test_held_blocked_keeps_its_failure_class_and_says_it_is_not_recovering() -> None:
    a = Analyzer(AnalysisConfig(window_s=25.0))
    _probe(a, {"ru": [RESET, RESET], "de": [None, None]})
    assert _region(a.evaluate(15.0), "ru").failure == RESET
    # ru's probes stop; only one agent's success arrives: too little evidence
    a.add(reach(40.0, "ru", "ru-0", "t"))
    _probe(a, {"de": [None, None, None, None, None]})
    v = _region(a.evaluate(45.0), "ru")
    assert (v.verdict, v.failure, v.since) == ("blocked", RESET, 15.0)
    assert v.reason == (
        "held blocked (now inconclusive: too little evidence: 1 samples, at most 1 agents "
        "per kind (need 4 from 2)); not recovering"
    )


def test_a_region_recovered_from_a_block_reports_no_failure_class() -> None:
    a = Analyzer(AnalysisConfig(recover_evaluations=1, recover_s=0.0, window_s=25.0))
    _probe(a, {"ru": [RESET, RESET], "de": [None, None]})
    assert _region(a.evaluate(15.0), "ru").failure == RESET
    for r in (3, 4):
        for g in ("ru", "de"):
            for i in range(2):
                a.add(reach(r * 10.0 + i, g, f"{g}-{i}", "t"))
    v = _region(a.evaluate(45.0), "ru")
    assert (v.verdict, v.failure, v.reason) == ("ok", "", "works: tcp 4/4 ok")


def test_held_outage_reason_shows_the_recovery_progress() -> None:
    a = Analyzer(AnalysisConfig(recover_evaluations=2, recover_s=0.0, window_s=15.0))
    _probe(a, {g: [RESET, RESET] for g in ("ru", "de")})
    assert a.evaluate(15.0).targets[0].outage
    for g in ("ru", "de"):
        for i in range(2):
            for at in (20.0, 21.0):
                a.add(reach(at + i * 0.1, g, f"{g}-{i}", "t"))
    (held,) = a.evaluate(25.0).targets
    assert (held.outage, held.since) == (True, 15.0)
    assert held.reason == "held; recovering for 1 evaluations / 0 s (needs 2 and 0 s)"
    (clear,) = a.evaluate(26.0).targets
    assert (clear.outage, clear.since, clear.reason) == (False, 26.0, "")


def test_a_group_that_left_the_window_starts_afresh() -> None:
    a = Analyzer(AnalysisConfig(window_s=20.0))
    _throughput(a, "ru", 0.01)
    _throughput(a, "de", 1.0)
    assert _region(a.evaluate(15.0), "ru").verdict == "throttled"
    assert a.evaluate(100.0).regions == ()  # every sample expired: the held verdict is gone
    _throughput(a, "ru", 1.0, start=200.0)
    v = _region(a.evaluate(215.0), "ru")
    assert (v.verdict, v.since) == ("ok", 215.0)


# ---------------------------------------------------------------- windows


def test_a_measurement_exactly_window_s_old_still_counts() -> None:
    a = Analyzer(AnalysisConfig(window_s=60.0))
    a.add(reach(0.0, "de", "de-0", "t"))
    a.add(reach(30.0, "de", "de-0", "t"))
    assert a.evaluate(60.0).measurements == 2
    assert a.evaluate(60.5).measurements == 1


def test_an_old_upload_expires_while_one_exactly_at_the_edge_stays() -> None:
    a = Analyzer(AnalysisConfig(window_s=50.0, max_samples_per_agent=5))
    for at in (100.0, 10.0, 50.0):  # the last two arrived late, out of order
        a.add(reach(at, "de", "de-0", "t"))
    snap = a.evaluate(100.0)
    assert (snap.measurements, snap.regions[0].samples) == (2, 2)


def test_snapshot_reports_its_time_and_the_drop_counters() -> None:
    a = Analyzer(AnalysisConfig(max_targets=1, max_groups=1))
    a.add(reach(0.0, "de", "de-0", "t"))
    a.add(reach(0.0, "de", "de-0", "other"))
    a.add(reach(0.0, "ru", "ru-0", "t"))
    a.add(reach(0.0, "ru", "ru-0", "t"))
    a.add(reach(1.0, "de", "de-1", "t"))  # the tracked group is still accepted
    assert (a.added, a.dropped_targets, a.dropped_groups) == (2, 1, 2)
    snap = a.evaluate(7.5)
    assert (snap.evaluated_at, snap.dropped_targets, snap.dropped_groups) == (7.5, 1, 2)
    assert [(r.group, r.target, r.samples) for r in snap.regions] == [("de", "t", 2)]


def test_a_fisher_p_exactly_at_alpha_is_a_block() -> None:
    # 4 of 4 failed vs 0 of 8: p = 1/C(12, 4) = 1/495
    a = Analyzer(AnalysisConfig(alpha=1 / 495))
    _probe(a, {"ru": [RESET, RESET], "de": [None, None], "us": [None, None]})
    assert _region(a.evaluate(15.0), "ru").verdict == "blocked"
    b = Analyzer(AnalysisConfig(alpha=1 / 496))
    _probe(b, {"ru": [RESET, RESET], "de": [None, None], "us": [None, None]})
    ru = _region(b.evaluate(15.0), "ru")
    assert (ru.verdict, ru.reason) == (
        "inconclusive",
        "tcp failed 4/4 (connection_reset), not significant (p=0.002)",
    )


def test_a_group_its_control_decides_is_not_rejudged_for_one_unpaired_sample() -> None:
    a = Analyzer(AnalysisConfig(max_samples_per_agent=5))
    _throughput(a, "de", 1.0)
    _throughput(a, "us", 1.0)
    a.add(tput(25.0, "de", "de-0", FAST, None, "t"))  # its control download did not run
    de = _region(a.evaluate(30.0), "de")
    assert de.verdict == "ok"
    assert de.reason.startswith("median 1 MB/s vs same-agent control 1 MB/s")


def test_a_crawling_control_is_still_a_control() -> None:
    """Too few pairs with a measured control stay undecided; only a missing (or zero)
    control lets the clean groups decide."""
    a = Analyzer()
    _throughput(a, "de", 1.0)
    a.add(tput(0.0, "ru", "ru-0", 0.2, 0.5, "t"))
    a.add(tput(1.0, "ru", "ru-1", 0.2, 0.5, "t"))
    a.add(tput(10.0, "ru", "ru-0", 0.2, 0.5, "t"))
    ru = _region(a.evaluate(15.0), "ru")
    assert (ru.verdict, ru.reason) == (
        "inconclusive",
        "too little evidence: 3 paired samples from 2 agents (need 4 from 2)",
    )
