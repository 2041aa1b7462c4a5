"""Issue 14: slow everywhere is not throttled everywhere.

A target slow against the same-agent control from every group, in more than one
country, is ``degraded`` (the target itself is slow); no group is throttled. A throttle
needs a group where the target is fast. When every slow group sits in one country the
data cannot tell the two apart, and the verdict says so without ever saying ok.
"""

from __future__ import annotations

from coordinator.analysis import (
    AnalysisConfig,
    Analyzer,
    Measurement,
    RegionVerdict,
    Snapshot,
    TargetVerdict,
)
from coordinator.analysis.throttle import ThroughputJudgement
from coordinator.analysis.throughput import places_of, slow_spread
from tests.analysis.helpers import paired_rounds, reach, tput

CONTROL = 900_000.0
COUNTRIES = {"ru": "RU", "de": "DE", "us": "US", "sg": "SG"}


def _rounds(
    a: Analyzer,
    rounds: range,
    ratios: dict[str, float],
    countries: dict[str, str],
    agents: int = 2,
    target: str = "twitter",
) -> None:
    """One paired download per agent per 10 s round; test = ratio x control (+-3%)."""
    tests = {g: CONTROL * ratio for g, ratio in ratios.items()}
    paired_rounds(a, rounds, tests, CONTROL, countries, agents, target)


def _region(snap: Snapshot, group: str, target: str = "twitter") -> RegionVerdict:
    (found,) = [r for r in snap.regions if r.group == group and r.target == target]
    return found


def _target(snap: Snapshot, target: str = "twitter") -> TargetVerdict:
    (found,) = [t for t in snap.targets if t.target == target]
    return found


def _verdicts(snap: Snapshot) -> dict[str, str]:
    return {r.group: r.verdict for r in snap.regions}


# ---------------------------------------------------------------- the cases


def test_slow_from_every_group_in_four_countries_is_degraded_not_throttled() -> None:
    """The issue's reproduction: ru, de, us, sg, two agents each, 8 rounds, every test at
    5% of its ~900 kB/s control. Before: all four throttled. Now: the target is degraded."""
    a = Analyzer()
    _rounds(a, range(8), {g: 0.05 for g in COUNTRIES}, COUNTRIES)
    snap = a.evaluate(75.0)
    assert _verdicts(snap) == {g: "degraded" for g in COUNTRIES}
    t = _target(snap)
    assert (t.degraded, t.degraded_since, t.outage) == (True, 75.0, False)
    assert t.degraded_reason == "slow from every group (de,ru,sg,us) in 4 countries (DE,RU,SG,US)"
    ru = _region(snap, "ru")
    assert ru.reason.startswith(
        "slow everywhere: target degraded, slow from every group (de,ru,sg,us) in 4 countries "
        "(DE,RU,SG,US); here median 46.4 kB/s vs same-agent control 927 kB/s, ratio 0.05, p=0, 2/2 agents slow, 6 samples"
    ), ru.reason
    assert ru.ratio is not None and abs(ru.ratio - 0.05) < 1e-9
    assert "corroborat" not in ru.reason


def test_only_ru_slow_is_throttled_in_ru_alone() -> None:
    a = Analyzer()
    _rounds(a, range(8), {"ru": 0.05, "de": 1.0, "us": 1.0, "sg": 1.0}, COUNTRIES)
    snap = a.evaluate(75.0)
    assert _verdicts(snap) == {"ru": "throttled", "de": "ok", "us": "ok", "sg": "ok"}
    t = _target(snap)
    assert (t.degraded, t.degraded_reason) == (False, "")
    assert _region(snap, "ru").reason.endswith(
        "; corroborated by clean groups de,sg,us (ratio 0.05)"
    )


def test_a_majority_slow_with_a_clean_group_elsewhere_is_throttled_where_slow() -> None:
    """2021: most vantage points were Russian and slow, a few foreign ones fast."""
    countries = {"25159": "RU", "12958": "RU", "8359": "RU", "3320": "DE"}
    a = Analyzer()
    _rounds(a, range(8), {"25159": 0.05, "12958": 0.05, "8359": 0.05, "3320": 1.0}, countries)
    snap = a.evaluate(75.0)
    assert _verdicts(snap) == {
        "25159": "throttled",
        "12958": "throttled",
        "8359": "throttled",
        "3320": "ok",
    }
    assert not _target(snap).degraded


def test_a_majority_slow_in_several_countries_with_one_clean_group_is_still_throttled() -> None:
    """Widespread but not universal: the clean group shows the target can be fast, so the
    slow groups are throttled (documented: a target slow in most places but not all is
    read as restricted where slow)."""
    countries = {"ru": "RU", "by": "BY", "kz": "KZ", "de": "DE"}
    a = Analyzer()
    _rounds(a, range(8), {"ru": 0.05, "by": 0.05, "kz": 0.05, "de": 1.0}, countries)
    snap = a.evaluate(75.0)
    assert _verdicts(snap) == {"ru": "throttled", "by": "throttled", "kz": "throttled", "de": "ok"}
    assert not _target(snap).degraded


def test_every_group_slow_but_all_in_one_country_is_inconclusive_never_ok() -> None:
    """ASN groups, all Russian: a national throttle (TSPU) and a slow service look alike."""
    countries = {"25159": "RU", "12958": "RU", "8359": "RU"}
    a = Analyzer()
    _rounds(a, range(8), {g: 0.05 for g in countries}, countries)
    snap = a.evaluate(75.0)
    assert _verdicts(snap) == {g: "inconclusive" for g in countries}
    t = _target(snap)
    assert not t.degraded
    expected = (
        "slow from every group (12958,25159,8359), all in 1 country (RU): a throttle there and "
        "a slow target look the same; a vantage point in another country would tell them apart"
    )
    assert t.degraded_reason == expected
    assert _region(snap, "25159").reason.startswith(expected + ": median 46.4 kB/s")


def test_two_regions_of_one_country_are_one_place() -> None:
    countries = {"msk": "RU", "spb": "RU"}
    a = Analyzer()
    _rounds(a, range(4), {"msk": 0.05, "spb": 0.05}, countries)
    snap = a.evaluate(35.0)
    assert _verdicts(snap) == {"msk": "inconclusive", "spb": "inconclusive"}
    assert not _target(snap).degraded


def test_a_lone_slow_group_is_inconclusive() -> None:
    a = Analyzer()
    _rounds(a, range(4), {"ru": 0.05}, COUNTRIES)
    snap = a.evaluate(35.0)
    ru = _region(snap, "ru")
    assert ru.verdict == "inconclusive"
    assert ru.reason.startswith("slow from the only group with enough evidence (ru): a throttle")


def test_regions_without_a_country_count_as_places_of_their_own() -> None:
    a = Analyzer()
    _rounds(a, range(4), {"ru": 0.05, "by": 0.05}, {})
    snap = a.evaluate(35.0)
    assert _verdicts(snap) == {"ru": "degraded", "by": "degraded"}
    assert _target(snap).degraded_reason == (
        "slow from every group (by,ru) in 2 places (by,ru: no country declared)"
    )


def test_slow_groups_with_only_undecided_others_are_not_throttled() -> None:
    a = Analyzer()
    _rounds(a, range(4), {"ru": 0.05}, COUNTRIES)
    # de: one agent fast, one slow: its own verdict is inconclusive (agents disagree)
    _rounds(a, range(4), {"de": 1.0}, COUNTRIES, agents=1)
    for r in range(4):
        a.add(tput(r * 10.0 + 5, "de", "de-slow", CONTROL * 0.05, CONTROL, "twitter", "DE"))
    snap = a.evaluate(35.0)
    de = _region(snap, "de")
    assert de.verdict == "inconclusive" and "agents disagree" in de.reason, de.reason
    ru = _region(snap, "ru")
    assert ru.verdict == "inconclusive"
    assert ru.reason.startswith("slow from ru and fast from no group (de undecided)")
    assert not _target(snap).degraded


def test_blocked_still_beats_degraded() -> None:
    a = Analyzer()
    _rounds(a, range(3), {g: 0.05 for g in COUNTRIES}, COUNTRIES)
    for r in range(3):
        for g in COUNTRIES:
            for i in range(2):
                failure = "connection_reset" if g == "ru" else None
                a.add(reach(r * 10.0 + i, g, f"{g}-{i}", "twitter", failure))
    snap = a.evaluate(25.0)
    assert _verdicts(snap) == {
        "ru": "blocked",
        "de": "degraded",
        "us": "degraded",
        "sg": "degraded",
    }
    assert _target(snap).degraded


# ---------------------------------------------------------------- hysteresis


def _eval_round(a: Analyzer, r: int, ratios: dict[str, float]) -> Snapshot:
    _rounds(a, range(r, r + 1), ratios, COUNTRIES)
    return a.evaluate(r * 10.0 + 5.0)


def test_degraded_does_not_flip_to_throttled_from_one_round_to_the_next() -> None:
    """Degraded is entered at once and left only after sustained recovery (2 evaluations
    over 20 s). While it is held, a slow group reads degraded, never throttled."""
    a = Analyzer(AnalysisConfig(max_samples_per_agent=1, min_samples=2))
    all_slow = {g: 0.05 for g in COUNTRIES}
    de_fast = {**all_slow, "de": 1.0}
    seen: list[dict[str, str]] = []
    for r in range(10):
        snap = _eval_round(a, r, all_slow if r % 2 == 0 else de_fast)
        assert _target(snap).degraded, (r, _target(snap))
        seen.append(_verdicts(snap))
    assert all("throttled" not in v.values() for v in seen), seen
    assert seen[1]["de"] == "ok" and seen[1]["ru"] == "degraded"
    # de stays fast: the target recovers after 2 evaluations spanning 20 s (round 9 was
    # the first of them)
    held = _eval_round(a, 10, de_fast)
    assert _target(held).degraded
    assert _target(held).degraded_reason == (
        "held; recovering for 2 evaluations / 10 s (needs 2 and 20 s)"
    )
    assert _verdicts(held)["ru"] == "degraded"
    snap = _eval_round(a, 11, de_fast)
    assert not _target(snap).degraded
    assert _verdicts(snap) == {"ru": "throttled", "de": "ok", "us": "throttled", "sg": "throttled"}


def test_a_held_throttle_gives_way_to_degraded_at_once_and_degraded_clears() -> None:
    a = Analyzer(AnalysisConfig(max_samples_per_agent=1, min_samples=2))
    only_ru = {"ru": 0.05, "de": 1.0, "us": 1.0, "sg": 1.0}
    assert _verdicts(_eval_round(a, 0, only_ru))["ru"] == "throttled"
    snap = _eval_round(a, 1, {g: 0.05 for g in COUNTRIES})
    assert _verdicts(snap) == {g: "degraded" for g in COUNTRIES}
    assert _region(snap, "ru").since == 15.0
    fast = {g: 1.0 for g in COUNTRIES}
    states = [_target(_eval_round(a, r, fast)).degraded for r in range(2, 6)]
    assert states == [True, True, False, False]  # 2 evaluations and 20 s of recovery
    assert set(_verdicts(a.snapshot).values()) == {"ok"}


# ---------------------------------------------------------------- the rule itself


def _j(status: str, *, little: bool = False) -> ThroughputJudgement:
    return ThroughputJudgement(status=status, reason="r", too_little_control=little)  # type: ignore[arg-type]


def test_slow_spread_kinds() -> None:
    cfg = AnalysisConfig()
    places = {"a": frozenset({"RU"}), "b": frozenset({"DE"}), "c": frozenset({"RU"})}
    assert slow_spread({"a": _j("ok"), "b": _j("ok")}, places, cfg).kind == "none"
    regional = slow_spread({"a": _j("throttled"), "b": _j("ok")}, places, cfg)
    assert (regional.kind, regional.slow, regional.clean, regional.undecided) == (
        "regional",
        ("a",),
        ("b",),
        (),
    )
    assert slow_spread({"a": _j("throttled"), "b": _j("throttled")}, places, cfg).kind == "degraded"
    assert (
        slow_spread({"a": _j("throttled"), "c": _j("throttled")}, places, cfg).kind == "ambiguous"
    )
    undecided = slow_spread({"a": _j("throttled"), "b": _j("inconclusive")}, places, cfg)
    assert (undecided.kind, undecided.clean, undecided.undecided) == ("undecided", (), ("b",))
    # a clean group that is slow on its latest samples is no reference yet
    slowing = slow_spread({"a": _j("throttled"), "b": _j("ok")}, places, cfg, {"b": False})
    assert (slowing.kind, slowing.clean, slowing.undecided) == ("undecided", (), ("b",))
    assert slowing.reason == (
        "slow from a; b fast over the window but slow on the latest samples, so a throttle "
        "cannot be told from a slow target yet"
    )
    # groups with too little evidence do not count either way
    little = {"a": _j("throttled"), "b": _j("throttled"), "c": _j("inconclusive", little=True)}
    spread = slow_spread(little, places, cfg)
    assert (spread.kind, spread.slow, spread.undecided, spread.places) == (
        "degraded",
        ("a", "b"),
        (),
        ("DE", "RU"),
    )
    # with outage_min_groups 3, two slow groups in two countries are not enough
    strict = AnalysisConfig(outage_min_groups=3)
    assert (
        slow_spread({"a": _j("throttled"), "b": _j("throttled")}, places, strict).kind
        == "ambiguous"
    )


def test_places_are_the_declared_countries_or_the_group_itself() -> None:
    both = {
        "x": [tput(0.0, "eu", "x", 1.0, 1.0, country="DE")],
        "y": [tput(0.0, "eu", "y", 1.0, 1.0, country="FR"), tput(1.0, "eu", "y", 1.0, 1.0)],
    }
    assert places_of("eu", both) == frozenset({"DE", "FR"})
    assert places_of("eu", {"z": [tput(0.0, "eu", "z", 1.0, 1.0)]}) == frozenset({"@eu"})


def test_a_slowdown_of_every_group_is_not_throttled_while_results_land_apart() -> None:
    """Every group slows down at once; ru's results of the second slow round land first.
    The other groups are still clean over their windows, but slow on their latest
    samples: ru waits (inconclusive), then the target is degraded once the rest land."""
    a = Analyzer()
    fast = {g: 1.0 for g in COUNTRIES}
    _rounds(a, range(3), fast, COUNTRIES)
    _rounds(a, range(3, 4), {g: 0.05 for g in COUNTRIES}, COUNTRIES)
    assert set(_verdicts(a.evaluate(35.0)).values()) == {"ok"}
    _rounds(a, range(4, 5), {"ru": 0.05}, COUNTRIES)
    snap = a.evaluate(42.0)
    assert _verdicts(snap) == {"ru": "inconclusive", "de": "ok", "us": "ok", "sg": "ok"}
    assert _region(snap, "ru").reason.startswith(
        "slow from ru; de,sg,us fast over the window but slow on the latest samples, so a "
        "throttle cannot be told from a slow target yet: median"
    )
    _rounds(a, range(4, 5), {g: 0.05 for g in ("de", "us", "sg")}, COUNTRIES)
    snap = a.evaluate(45.0)
    assert _verdicts(snap) == {g: "degraded" for g in COUNTRIES}


def test_a_clean_group_with_fast_latest_samples_lets_a_new_throttle_stand() -> None:
    """The same arrival order when only ru slows down: de, us, sg are fast on their
    latest samples too, so ru is throttled at once."""
    a = Analyzer()
    _rounds(a, range(4), {"ru": 1.0, "de": 1.0, "us": 1.0, "sg": 1.0}, COUNTRIES)
    _rounds(a, range(4, 6), {"ru": 0.05}, COUNTRIES)
    snap = a.evaluate(55.0)
    assert _verdicts(snap)["ru"] == "throttled"


def test_degraded_beats_troubled_reachability_as_throttled_does() -> None:
    a = Analyzer()
    _rounds(a, range(2), {g: 0.05 for g in COUNTRIES}, COUNTRIES)
    for r in range(2):
        for i in range(2):
            a.add(
                reach(r * 10.0 + i, "ru", f"ru-{i}", "twitter", "connection_reset" if r else None)
            )
    ru = _region(a.evaluate(15.0), "ru")
    assert ru.verdict == "degraded", ru.reason  # not "inconclusive: tcp failed 2/4 ..."


def test_held_degraded_says_what_it_sees_now() -> None:
    """Held through the hysteresis while the evidence left is one slow group: the target
    says it is held and why it is not degraded now; the group says held too."""
    a = Analyzer(AnalysisConfig(window_s=15.0))
    _rounds(a, range(2), {g: 0.05 for g in COUNTRIES}, COUNTRIES)
    assert _target(a.evaluate(15.0)).degraded
    _rounds(a, range(2, 4), {"ru": 0.05}, COUNTRIES)  # the others' samples expire
    snap = a.evaluate(35.0)
    t = _target(snap)
    assert (t.degraded, t.degraded_since) == (True, 15.0)
    assert t.degraded_reason == (
        "held; recovering for 1 evaluations / 0 s (needs 2 and 20 s) (now slow from the only "
        "group with enough evidence (ru): a throttle there and a slow target look the same; "
        "a vantage point in another country would tell them apart)"
    )
    ru = _region(snap, "ru")
    assert ru.verdict == "degraded"
    assert ru.reason.startswith(
        "slow everywhere: target degraded, held; recovering for 1 evaluations / 0 s "
        "(needs 2 and 20 s); here median 45.7 kB/s"
    ), ru.reason


def test_a_group_is_fresh_while_fewer_than_a_quorum_of_its_agents_are_slow_now() -> None:
    from coordinator.analysis.throughput import latest_fast

    cfg = AnalysisConfig()  # throttle_ratio 0.4, agent_quorum 0.5

    def group(*latest: float) -> dict[str, list[Measurement]]:
        return {
            f"a{i}": [tput(0.0, "g", f"a{i}", 0.01, 1.0), tput(10.0, "g", f"a{i}", r, 1.0)]
            for i, r in enumerate(latest)
        }

    assert latest_fast(group(1.0, 1.0, 1.0, 0.1), cfg)  # 1 of 4 slow now
    assert not latest_fast(group(1.0, 1.0, 0.1, 0.1), cfg)  # 2 of 4: a quorum
    assert not latest_fast(group(1.0, 0.4), cfg)  # exactly throttle_ratio is slow
    assert latest_fast(group(1.0, 0.41), cfg)
    assert not latest_fast({}, cfg)
