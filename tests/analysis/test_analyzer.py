"""Unit tests of each verdict rule, the hysteresis, the windows and the caps."""

from __future__ import annotations

from coordinator.analysis import AnalysisConfig, Analyzer, RegionVerdict, Snapshot
from coordinator.analysis.rules import Held, step
from tests.analysis.helpers import paired_rounds, reach, tput

FAST = 2_000_000.0
SHAPED = 16_250.0


def _region(snap: Snapshot, group: str, target: str) -> RegionVerdict:
    found = [r for r in snap.regions if r.group == group and r.target == target]
    assert len(found) == 1, snap.regions
    return found[0]


def _rounds(
    a: Analyzer,
    rounds: range,
    slow: dict[str, float],
    groups: tuple[str, ...] = ("ru", "de", "us"),
    agents: int = 2,
    control: bool = True,
) -> None:
    """One throughput sample per agent per 10 s round; ``slow`` maps group -> test bps."""
    tests = {g: slow.get(g, FAST * 0.9) for g in groups}
    paired_rounds(a, rounds, tests, FAST if control else None, agents=agents)


# ---------------------------------------------------------------- throttled


def test_throttled_from_two_agents_two_rounds_and_only_there() -> None:
    a = Analyzer()
    _rounds(a, range(2), {"ru": SHAPED})
    snap = a.evaluate(15.0)
    ru = _region(snap, "ru", "twitter")
    assert ru.verdict == "throttled", ru.reason
    assert ru.ratio is not None and ru.ratio <= 0.1
    assert ru.throughput_bps is not None and abs(ru.throughput_bps - SHAPED) / SHAPED < 0.1
    assert (ru.samples, ru.agents, ru.since, ru.failure) == (4, 2, 15.0, "")
    assert "corroborated by clean groups de,us" in ru.reason
    for g in ("de", "us"):
        other = _region(snap, g, "twitter")
        assert other.verdict == "ok", other.reason
        assert other.ratio is not None and other.ratio > 0.8


def test_too_little_evidence_is_inconclusive_never_ok() -> None:
    a = Analyzer()
    _rounds(a, range(1), {})  # one sample per agent: 2 < min_samples
    snap = a.evaluate(5.0)
    assert {r.verdict for r in snap.regions} == {"inconclusive"}
    assert all("too little evidence" in r.reason for r in snap.regions)
    # many samples, but from one agent only
    b = Analyzer()
    _rounds(b, range(5), {"ru": SHAPED}, agents=1)
    ru = _region(b.evaluate(45.0), "ru", "twitter")
    assert ru.verdict == "inconclusive" and "1 agents" in ru.reason


def test_one_slow_agent_does_not_make_a_verdict() -> None:
    a = Analyzer()
    for r in range(3):
        a.add(tput(r * 10.0, "ru", "ru-0", SHAPED, FAST))  # this agent's path is slow
        a.add(tput(r * 10.0, "ru", "ru-1", FAST, FAST))
        a.add(tput(r * 10.0, "ru", "ru-2", FAST, FAST))
    ru = _region(a.evaluate(25.0), "ru", "twitter")
    assert ru.verdict == "ok", ru.reason
    assert "1/3 agents slow" in ru.reason


def test_agents_disagreeing_is_inconclusive() -> None:
    a = Analyzer()
    for r in range(3):
        a.add(tput(r * 10.0, "ru", "ru-0", SHAPED, FAST))
        a.add(tput(r * 10.0, "ru", "ru-1", FAST, FAST))
    ru = _region(a.evaluate(25.0), "ru", "twitter")
    assert ru.verdict == "inconclusive"
    assert "agents disagree" in ru.reason


def test_slow_but_not_significant_is_inconclusive() -> None:
    a = Analyzer()
    # both agents' medians are below the threshold, but the samples scatter so widely
    # (log ratios -4.6 .. +1.1) that the paired t-test cannot reject chance
    for i, (agent, ratios) in enumerate((("ru-0", (0.01, 3.0, 0.2)), ("ru-1", (0.3, 2.5, 0.35)))):
        for r, ratio in enumerate(ratios):
            a.add(tput(r * 10.0 + i, "ru", agent, FAST * ratio, FAST))
    ru = _region(a.evaluate(25.0), "ru", "twitter")
    assert ru.verdict == "inconclusive", ru.reason
    assert "not significant" in ru.reason
    assert ru.ratio is not None and ru.ratio <= 0.4


def test_regions_of_different_bandwidth_are_not_throttled_when_controls_agree() -> None:
    a = Analyzer()
    for r in range(3):
        for i in range(2):
            a.add(tput(r * 10.0 + i, "slowland", f"s{i}", 30_000.0, 31_000.0))  # 60x slower
            a.add(tput(r * 10.0 + i, "fastland", f"f{i}", 1_800_000.0, 1_900_000.0))
    snap = a.evaluate(25.0)
    assert _region(snap, "slowland", "twitter").verdict == "ok"
    assert _region(snap, "fastland", "twitter").verdict == "ok"


def test_without_control_the_clean_groups_are_the_reference() -> None:
    a = Analyzer()
    _rounds(a, range(3), {}, groups=("de", "us"))  # clean, with control
    for r in range(3):
        for i in range(2):
            a.add(tput(r * 10.0 + i, "ru", f"ru-{i}", SHAPED, None))  # 110x slower, no control
            a.add(tput(r * 10.0 + i, "kz", f"kz-{i}", FAST * 0.3, None))  # 3x slower: not enough
    snap = a.evaluate(25.0)
    ru = _region(snap, "ru", "twitter")
    assert ru.verdict == "throttled", ru.reason
    assert "no control" in ru.reason and ru.ratio is not None and ru.ratio <= 0.1
    kz = _region(snap, "kz", "twitter")
    assert kz.verdict == "inconclusive", kz.reason


def test_without_control_and_without_clean_groups_nothing_is_decided() -> None:
    a = Analyzer()
    _rounds(a, range(3), {"ru": SHAPED}, control=False)
    snap = a.evaluate(25.0)
    assert {r.verdict for r in snap.regions} == {"inconclusive"}
    assert "no clean group" in _region(snap, "ru", "twitter").reason


# ---------------------------------------------------------------- blocked and outage


def _reach_rounds(a: Analyzer, rounds: range, failing: dict[str, str | None], target: str) -> None:
    for r in rounds:
        for g in ("ru", "de", "us"):
            for i in range(2):
                a.add(reach(r * 10.0 + i, g, f"{g}-{i}", target, failing.get(g)))


def test_blocked_where_it_fails_while_it_works_elsewhere() -> None:
    a = Analyzer()
    _reach_rounds(a, range(2), {"ru": "connection_reset"}, "facebook")
    snap = a.evaluate(15.0)
    ru = _region(snap, "ru", "facebook")
    assert (ru.verdict, ru.failure) == ("blocked", "connection_reset"), ru.reason
    assert "works from de,us" in ru.reason
    assert _region(snap, "de", "facebook").verdict == "ok"
    assert [t.outage for t in snap.targets] == [False]
    ratios = {(s.group, s.kind): s.ratio for s in snap.success}
    assert ratios[("ru", "tcp")] == 0.0 and ratios[("de", "tcp")] == 1.0


def test_blocked_records_the_dominant_failure_class() -> None:
    a = Analyzer()
    classes = ["generic_timeout", "connection_reset", "generic_timeout"]
    for r in range(3):
        for i in range(2):
            a.add(reach(r * 10.0 + i, "ru", f"ru-{i}", "facebook", classes[r]))
            a.add(reach(r * 10.0 + i, "de", f"de-{i}", "facebook", None))
    ru = _region(a.evaluate(25.0), "ru", "facebook")
    assert (ru.verdict, ru.failure) == ("blocked", "generic_timeout")


def test_block_page_counts_as_failure_and_forbidden_is_not_evidence() -> None:
    a = Analyzer()
    for r in range(2):
        for i in range(2):
            a.add(reach(r * 10.0 + i, "ru", f"ru-{i}", "news", None, kind="http", block_page=True))
            a.add(reach(r * 10.0 + i, "de", f"de-{i}", "news", None, kind="http"))
            a.add(reach(r * 10.0 + i, "us", f"us-{i}", "news", "target_forbidden", kind="http"))
    snap = a.evaluate(15.0)
    ru = _region(snap, "ru", "news")
    assert (ru.verdict, ru.failure) == ("blocked", "block_page")
    us = _region(snap, "us", "news")
    assert us.verdict == "inconclusive"  # refused by its own policy: no evidence either way


def test_failing_with_nowhere_to_compare_is_inconclusive() -> None:
    a = Analyzer()
    for r in range(3):
        for i in range(2):
            a.add(reach(r * 10.0 + i, "ru", f"ru-{i}", "facebook", "connection_reset"))
    ru = _region(a.evaluate(25.0), "ru", "facebook")
    assert ru.verdict == "inconclusive"
    assert "no group where it works" in ru.reason


def test_outage_when_it_fails_from_everywhere_and_then_no_region_is_blocked() -> None:
    a = Analyzer()
    _reach_rounds(
        a,
        range(3),
        {"ru": "connection_refused", "de": "connection_refused", "us": "generic_timeout"},
        "kremlin",
    )
    snap = a.evaluate(25.0)
    (kremlin,) = snap.targets
    assert kremlin.outage and kremlin.since == 25.0
    assert "every group" in kremlin.reason
    for g in ("ru", "de", "us"):
        v = _region(snap, g, "kremlin")
        assert v.verdict == "inconclusive" and "outage" in v.reason


def test_outage_drops_a_held_block_at_once() -> None:
    a = Analyzer()
    _reach_rounds(a, range(2), {"ru": "connection_refused"}, "kremlin")
    assert _region(a.evaluate(15.0), "ru", "kremlin").verdict == "blocked"
    # then the site goes down for everyone: the window fills with failures
    _reach_rounds(a, range(2, 5), {g: "connection_refused" for g in ("ru", "de", "us")}, "kremlin")
    snap = a.evaluate(45.0)
    assert snap.targets[0].outage
    assert all(r.verdict != "blocked" for r in snap.regions), snap.regions


def test_kremlin_going_down_for_everyone_never_passes_through_blocked() -> None:
    """While the windows change over, one group can fail first; it must not be called
    blocked while the others are merely mixed."""
    a = Analyzer()
    _reach_rounds(a, range(3), {}, "kremlin")
    seen: set[str] = set()
    for r in range(3, 9):
        for g_index, g in enumerate(("ru", "de", "us")):
            for i in range(2):
                # ru's agents probe first in each round
                a.add(
                    reach(
                        r * 10.0 + g_index * 3 + i, g, f"{g}-{i}", "kremlin", "connection_refused"
                    )
                )
                seen.update(v.verdict for v in a.evaluate(r * 10.0 + g_index * 3 + i + 0.5).regions)
    assert "blocked" not in seen
    assert a.snapshot.targets[0].outage


# ---------------------------------------------------------------- hysteresis


def test_throttled_is_entered_fast_and_left_after_sustained_recovery() -> None:
    cfg = AnalysisConfig(recover_evaluations=2, recover_s=20.0)
    a = Analyzer(cfg)
    _rounds(a, range(2), {"ru": SHAPED})
    assert _region(a.evaluate(15.0), "ru", "twitter").verdict == "throttled"
    _rounds(a, range(2, 5), {})  # shaping removed: three fresh rounds replace the window
    v = _region(a.evaluate(45.0), "ru", "twitter")
    assert v.verdict == "throttled" and "held throttled (now ok" in v.reason and v.since == 15.0
    v = _region(a.evaluate(55.0), "ru", "twitter")
    assert v.verdict == "throttled"  # 2 evaluations but only 10 s of recovery
    v = _region(a.evaluate(65.0), "ru", "twitter")
    assert v.verdict == "ok" and v.since == 65.0


def test_recovery_is_restarted_by_a_relapse() -> None:
    cfg = AnalysisConfig(recover_evaluations=2, recover_s=0.0)
    held = step(None, "throttled", 0.0, cfg, bad=frozenset({"throttled"}), recovered="ok")
    held = step(held, "ok", 1.0, cfg, bad=frozenset({"throttled"}), recovered="ok")
    assert held == Held(state="throttled", since=0.0, recovering_since=1.0, recovering_count=1)
    held = step(held, "inconclusive", 2.0, cfg, bad=frozenset({"throttled"}), recovered="ok")
    assert held == Held(state="throttled", since=0.0)
    held = step(held, "ok", 3.0, cfg, bad=frozenset({"throttled"}), recovered="ok")
    assert held.state == "throttled"
    held = step(held, "ok", 4.0, cfg, bad=frozenset({"throttled"}), recovered="ok")
    assert held == Held(state="ok", since=4.0)
    # a change between non-bad states is immediate; between bad states too
    assert (
        step(held, "inconclusive", 5.0, cfg, bad=frozenset({"throttled"}), recovered="ok").state
        == "inconclusive"
    )
    bad = frozenset({"throttled", "blocked"})
    thr = step(None, "throttled", 0.0, cfg, bad=bad, recovered="ok")
    assert step(thr, "blocked", 1.0, cfg, bad=bad, recovered="ok") == Held(
        state="blocked", since=1.0
    )


def test_outage_has_hysteresis_too() -> None:
    cfg = AnalysisConfig(recover_evaluations=2, recover_s=0.0, window_s=30.0)
    a = Analyzer(cfg)
    _reach_rounds(a, range(3), {g: "connection_refused" for g in ("ru", "de", "us")}, "kremlin")
    assert a.evaluate(25.0).targets[0].outage
    _reach_rounds(a, range(3, 6), {}, "kremlin")  # back up
    assert a.evaluate(55.0).targets[0].outage  # first evaluation of recovery: held
    assert not a.evaluate(56.0).targets[0].outage


# ---------------------------------------------------------------- windows and caps


def test_fresh_samples_dominate_the_window() -> None:
    a = Analyzer(AnalysisConfig(max_samples_per_agent=3, window_s=1000.0))
    _rounds(a, range(10), {"ru": SHAPED})
    _rounds(a, range(10, 12), {})
    v = _region(a.evaluate(125.0), "ru", "twitter")
    # only the last 3 samples per agent count: 2 fast of 3, so the median is fast
    assert v.samples == 6
    assert v.throughput_bps is not None and v.throughput_bps > 1_000_000


def test_groups_and_targets_disappear_when_the_window_expires() -> None:
    a = Analyzer(AnalysisConfig(window_s=30.0))
    _rounds(a, range(2), {})
    _reach_rounds(a, range(2), {}, "facebook")
    for r in range(5):
        a.add(reach(r * 10.0, "de", "de-0", "late", None))
    snap = a.evaluate(45.0)  # everything but "late" is older than 30 s
    assert {(v.group, v.target) for v in snap.regions} == {("de", "late")}
    assert [t.target for t in snap.targets] == ["late"]
    assert {s.target for s in snap.success} == {"late"}
    assert a.evaluate(100.0).regions == ()


def test_out_of_order_arrivals_are_windowed_by_their_time() -> None:
    a = Analyzer(AnalysisConfig(window_s=30.0, max_samples_per_agent=5))
    a.add(reach(100.0, "de", "de-0", "t"))
    a.add(reach(10.0, "de", "de-0", "t"))  # a late upload of an old result
    a.add(reach(101.0, "de", "de-0", "t"))
    snap = a.evaluate(110.0)
    assert snap.regions[0].samples == 2
    assert snap.measurements == 2


def test_target_cap_drops_and_counts_and_frees_slots_on_expiry() -> None:
    a = Analyzer(AnalysisConfig(max_targets=2, window_s=30.0))
    a.add(reach(0.0, "de", "de-0", "t1"))
    a.add(reach(0.0, "de", "de-0", "t2"))
    for _ in range(3):
        a.add(reach(0.0, "de", "de-0", "t3"))
    a.add(reach(1.0, "de", "de-0", "t1"))  # tracked targets still accepted
    snap = a.evaluate(5.0)
    assert sorted(t.target for t in snap.targets) == ["t1", "t2"]
    assert snap.dropped_targets == 3 == a.dropped_targets
    a.add(reach(40.0, "de", "de-0", "t2"))
    a.evaluate(40.0)  # t1 expired (last seen at 1 s), a slot is free
    a.add(reach(41.0, "de", "de-0", "t3"))
    snap = a.evaluate(41.0)
    assert sorted(t.target for t in snap.targets) == ["t2", "t3"]
    assert snap.dropped_targets == 3


def test_group_cap() -> None:
    a = Analyzer(AnalysisConfig(max_groups=1))
    a.add(reach(0.0, "de", "de-0", "t"))
    a.add(reach(0.0, "ru", "ru-0", "t"))
    snap = a.evaluate(1.0)
    assert [v.group for v in snap.regions] == ["de"]
    assert snap.dropped_groups == 1


def test_snapshot_is_the_last_evaluation_and_reading_it_costs_nothing() -> None:
    a = Analyzer()
    assert a.snapshot.evaluated_at == 0.0 and a.snapshot.regions == ()
    _rounds(a, range(2), {"ru": SHAPED})
    snap = a.evaluate(15.0)
    assert a.snapshot is snap
    _rounds(a, range(2, 3), {})
    assert a.snapshot is snap  # add() does not touch it; only evaluate() does


def test_a_full_window_of_many_targets_is_evaluated() -> None:
    """30,000 measurements (3 regions x 2 agents x 2 kinds x 2,500 rounds over 400
    targets) all land in their windows and one evaluation judges every target. How fast
    that is, is measured by benchmarks/analysis_speed.py, not asserted here."""
    a = Analyzer(AnalysisConfig(max_targets=500, window_s=10_000.0))
    items = [
        reach(float(r), g, f"{g}-{i}", f"t{r % 400}", None, kind=kind)
        for r in range(2_500)
        for g in ("ru", "de", "us")
        for i in range(2)
        for kind in ("tcp", "http")
    ]
    for m in items:
        a.add(m)
    snap = a.evaluate(2_500.0)
    assert len(items) == 30_000 and a.added == 30_000
    assert len(snap.targets) == 400 and not any(t.outage for t in snap.targets)
    # every (group, target) pair is judged; the window keeps 3 samples per agent and kind
    assert len(snap.regions) == 3 * 400
    assert snap.measurements == 3 * 400 * 2 * 2 * 3
    assert {r.verdict for r in snap.regions} == {"ok"}
