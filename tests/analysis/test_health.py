"""Issue 15: a region that cannot reach anything is down, not censoring.

The analysis core on plain measurements: canaries (role "canary") and throughput
controls are the references that show an agent reaching the outside world; failures
without such a witness are not evidence about their target (coordinator/analysis/health.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from coordinator.analysis import AnalysisConfig, Analyzer, Measurement, Snapshot
from coordinator.analysis.health import HealthLog
from coordinator.analysis.model import AgentHealth, RegionHealth, RegionVerdict

GROUPS = ("ru", "de", "us", "sg")
BPS = 900_000.0


def _m(
    at: float, group: str, agent: str, target: str, failure: str | None, **kw: object
) -> Measurement:
    kind = str(kw.pop("kind", "http"))
    return Measurement(
        at=at, group=group, agent_id=agent, target=target, kind=kind, failure=failure,
        duration_s=0.5, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def agent_round(
    t: float,
    group: str,
    agent: str,
    *,
    net: bool = True,
    resolver: bool = True,
    canary: bool = True,
    control: bool = True,
    site: str | None = None,
    kremlin: str | None = None,
) -> list[Measurement]:
    """One agent's round starting at ``t``: a canary at t, http site at t+1, http news
    and kremlin at t+2, a throughput download of twitter with its control at t+3.
    ``net`` False: the agent's network is down (every probe times out); ``resolver``
    False: its resolver fails every name; ``site``/``kremlin``: how those targets fail
    when the network is fine."""

    def outcome(specific: str | None = None) -> str | None:
        if not resolver:
            return "dns_temporary_failure"
        if not net:
            return "generic_timeout"
        return specific

    out = []
    if canary:
        out.append(_m(t, group, agent, "http://canary.example/", outcome(), role="canary"))
    out.append(_m(t + 1, group, agent, "site", outcome(site)))
    out.append(_m(t + 2, group, agent, "news", outcome()))
    out.append(_m(t + 2, group, agent, "kremlin", outcome(kremlin)))
    if control:
        failure = outcome()
        if failure is None:
            out.append(
                _m(t + 3, group, agent, "twitter", None, kind="throughput",
                   throughput_bps=BPS, control_bps=BPS)
            )  # fmt: skip
        else:
            out.append(
                _m(t + 3, group, agent, "twitter", failure, kind="throughput",
                   control_failure=failure)
            )  # fmt: skip
    return out


Behaviour = Callable[[int, str, str], dict[str, object]]


def world(rounds: Iterable[int], behaviour: Behaviour, agents: int = 2) -> list[Measurement]:
    """Every agent of every group, one round each 10 s; ``behaviour(round, group, agent)``
    gives agent_round's keywords."""
    out = []
    for r in rounds:
        for g in GROUPS:
            for i in range(agents):
                agent = f"{g}-{i}"
                out.extend(agent_round(r * 10.0 + i * 0.2, g, agent, **behaviour(r, g, agent)))  # type: ignore[arg-type]
    return out


def run(ms: list[Measurement], now: float, a: Analyzer | None = None) -> Snapshot:
    a = a or Analyzer()
    for m in ms:
        a.add(m)
    return a.evaluate(now)


def replay(ms: list[Measurement], until: float, step: float = 1.0) -> list[Snapshot]:
    """Measurements fed in time order, an evaluation every ``step`` seconds (as live)."""
    a = Analyzer()
    ordered = sorted(ms, key=lambda m: m.at)
    snaps = []
    i = 0
    t = 0.0
    while t <= until:
        while i < len(ordered) and ordered[i].at <= t:
            a.add(ordered[i])
            i += 1
        snaps.append(a.evaluate(t))
        t += step
    return snaps


def verdicts(snap: Snapshot) -> dict[tuple[str, str], str]:
    return {(r.group, r.target): r.verdict for r in snap.regions}


def region(snap: Snapshot, group: str) -> RegionHealth:
    (found,) = [r for r in snap.region_health if r.group == group]
    return found


def verdict(snap: Snapshot, group: str, target: str) -> RegionVerdict:
    (found,) = [r for r in snap.regions if r.group == group and r.target == target]
    return found


def agent_health(snap: Snapshot, agent: str) -> AgentHealth:
    (found,) = [a for a in snap.agents if a.agent_id == agent]
    return found


def blocked(snap: Snapshot) -> list[tuple[str, str]]:
    return sorted(k for k, v in verdicts(snap).items() if v == "blocked")


# ---------------------------------------------------------------- the cases


def test_everything_failing_in_one_region_is_unreachable_never_blocked() -> None:
    """The issue's reproduction: 8 rounds, both ru agents time out on everything, the
    canary and the controls included; de, us and sg reach everything."""
    snap = run(world(range(8), lambda r, g, a: {"net": g != "ru"}), now=75.0)
    assert blocked(snap) == []
    ru = region(snap, "ru")
    assert not ru.reachable and ru.unhealthy == 2 and ru.agents == 2
    assert ru.reason.startswith("region unreachable: no agent reaches a canary or control")
    for target in ("site", "news", "kremlin", "twitter"):
        v = verdict(snap, "ru", target)
        assert v.verdict == "unreachable" and v.reason.startswith("region unreachable"), v
        for g in ("de", "us", "sg"):
            assert verdict(snap, g, target).verdict == "ok"
    assert all(region(snap, g).reachable for g in ("de", "us", "sg"))
    assert not any(t.outage for t in snap.targets)
    # canaries feed agent health only: never a target of verdicts
    assert {r.target for r in snap.regions} == {"site", "news", "kremlin", "twitter"}
    # the success ratios still show what was measured, failures left out of verdicts included
    (ru_site,) = [x for x in snap.success if x.group == "ru" and x.target == "site"]
    assert ru_site.ratio == 0.0 and ru_site.samples == 6
    assert agent_health(snap, "ru-0").state == "unhealthy"
    assert (
        "canary http http://canary.example/ (generic_timeout)" in agent_health(snap, "ru-0").reason
    )
    assert "control of twitter (generic_timeout)" in agent_health(snap, "ru-0").reason
    assert agent_health(snap, "de-1").state == "healthy"
    assert agent_health(snap, "de-1").reason == (
        "reaches canary http http://canary.example/, control of twitter"
    )


def test_without_any_reference_the_old_rule_holds() -> None:
    """The contrast: no canary and no control measured, so nothing shows the agents'
    reach; their failures count as before (why operators should configure canaries)."""
    snap = run(
        world(range(8), lambda r, g, a: {"net": g != "ru", "canary": False, "control": False}),
        now=75.0,
    )
    assert ("ru", "site") in blocked(snap)
    assert region(snap, "ru").reachable
    assert agent_health(snap, "ru-0").state == "unknown"


def test_only_the_target_failing_while_canaries_and_controls_work_is_blocked() -> None:
    snap = run(
        world(range(8), lambda r, g, a: {"site": "connection_reset" if g == "ru" else None}),
        now=75.0,
    )
    assert blocked(snap) == [("ru", "site")]
    v = verdict(snap, "ru", "site")
    assert v.failure == "connection_reset" and "from 2 agents" in v.reason
    assert all(r.reachable for r in snap.region_health)
    assert {a.state for a in snap.agents} == {"healthy"}


def test_blocking_is_seen_with_canaries_alone_no_control() -> None:
    """An http-only deployment: the canary of the next round is the witness."""
    snap = run(
        world(
            range(8),
            lambda r, g, a: {"control": False, "site": "connection_reset" if g == "ru" else None},
        ),
        now=75.0,
    )
    assert blocked(snap) == [("ru", "site")]


def test_one_unhealthy_agent_of_three_the_healthy_ones_decide() -> None:
    down = {"ru-0"}

    def works(r: int, g: str, a: str) -> dict[str, object]:
        return {"net": a not in down}

    snap = run(world(range(8), works, agents=3), now=75.0)
    assert agent_health(snap, "ru-0").state == "unhealthy"
    assert region(snap, "ru").reachable and region(snap, "ru").healthy == 2
    # before: ru-0's 3 timeouts in 9 samples made ru "mixed" (inconclusive); now ok
    assert verdict(snap, "ru", "site").verdict == "ok"
    assert blocked(snap) == []

    def reset(r: int, g: str, a: str) -> dict[str, object]:
        return {"net": a not in down, "site": "connection_reset" if g == "ru" else None}

    snap = run(world(range(8), reset, agents=3), now=75.0)
    assert blocked(snap) == [("ru", "site")]
    v = verdict(snap, "ru", "site")
    assert "from 2 agents" in v.reason and v.failure == "connection_reset", v.reason


def test_one_unhealthy_agent_of_two_leaves_too_little_evidence_never_blocked() -> None:
    snap = run(world(range(8), lambda r, g, a: {"net": a != "ru-0"}), now=75.0)
    assert region(snap, "ru").reachable
    assert blocked(snap) == []
    assert verdict(snap, "ru", "site").verdict == "inconclusive"


def test_a_resolver_failing_for_every_name_is_an_unhealthy_agent_not_dns_blocking() -> None:
    # no canary, no control: the resolver rule alone must catch it
    snap = run(
        world(range(8), lambda r, g, a: {"resolver": g != "ru", "canary": False, "control": False}),
        now=75.0,
    )
    assert blocked(snap) == []
    h = agent_health(snap, "ru-1")
    assert h.state == "unhealthy" and h.reason.startswith("its resolver fails for every name"), h
    assert not region(snap, "ru").reachable
    assert verdict(snap, "ru", "site").verdict == "unreachable"


def test_one_agents_dead_resolver_is_no_witness_beside_two_healthy_agents() -> None:
    """ru-0's resolver fails every name; ru-1 and ru-2 resolve and reach site. Its
    failures are left out, so ru reads ok (with them, 3 failures in 9: "mixed")."""
    snap = run(
        world(
            range(8),
            lambda r, g, a: {"resolver": a != "ru-0", "canary": False, "control": False},
            agents=3,
        ),
        now=75.0,
    )
    assert agent_health(snap, "ru-0").state == "unhealthy"
    assert region(snap, "ru").reachable
    assert verdict(snap, "ru", "site").verdict == "ok", verdict(snap, "ru", "site").reason
    assert blocked(snap) == []


def test_a_resolver_failing_for_one_name_is_still_dns_blocking() -> None:
    snap = run(
        world(
            range(8),
            lambda r, g, a: {"canary": False, "control": False,
                             "site": "dns_servfail" if g == "ru" else None},
        ),
        now=75.0,
    )  # fmt: skip
    assert blocked(snap) == [("ru", "site")]
    assert agent_health(snap, "ru-0").state == "unknown"  # no reference, resolver fine


def test_agent_errors_are_never_evidence() -> None:
    """A starved agent: every task's deadline passed before it could start."""
    ms = [
        _m(r * 10.0 + i, "ru", f"ru-{i}", "site", "agent_deadline_missed")
        for r in range(8)
        for i in range(2)
    ] + [_m(r * 10.0 + i, "de", f"de-{i}", "site", None) for r in range(8) for i in range(2)]
    snap = run(ms, now=75.0)
    v = verdict(snap, "ru", "site")
    assert v.verdict == "inconclusive" and "too little evidence" in v.reason
    assert [s.group for s in snap.success if s.target == "site"] == ["de"]


# ---------------------------------------------------------------- outage


def test_a_target_failing_from_every_healthy_region_is_an_outage() -> None:
    """kremlin fails from de, us and sg while ru is down: still an outage, ru aside."""
    snap = run(
        world(range(8), lambda r, g, a: {"net": g != "ru", "kremlin": "connection_refused"}),
        now=75.0,
    )
    (kremlin,) = [t for t in snap.targets if t.target == "kremlin"]
    assert kremlin.outage and "ru" not in kremlin.reason, kremlin
    assert verdict(snap, "ru", "kremlin").verdict == "unreachable"
    assert blocked(snap) == []


def test_a_region_that_is_down_does_not_make_an_outage_either() -> None:
    """Only ru and de measure kremlin; ru is down, so de alone decides: no outage (one
    region is below outage_min_groups), and certainly no block."""
    ms = [
        m
        for m in world(range(8), lambda r, g, a: {"net": g != "ru"})
        if m.target != "kremlin" or m.group in ("ru", "de")
    ]
    snap = run(ms, now=75.0)
    assert not any(t.outage for t in snap.targets)
    assert verdict(snap, "de", "kremlin").verdict == "ok"


# ---------------------------------------------------------------- live: onset and recovery


def test_a_region_going_down_and_coming_back_never_reads_blocked() -> None:
    """Time-ordered, evaluated every second: ru is fine for rounds 0-5, down for rounds
    6-13, fine again from 14 on. At no evaluation is anything blocked; ru reads
    unreachable while down and everything is ok again within the recovery hold."""

    def phases(r: int, g: str, a: str) -> dict[str, object]:
        return {"net": not (g == "ru" and 6 <= r <= 13)}

    snaps = replay(world(range(26), phases), until=259.0)
    assert all(blocked(s) == [] for s in snaps), [
        (s.evaluated_at, blocked(s)) for s in snaps if blocked(s)
    ]
    at = {s.evaluated_at: s for s in snaps}
    assert not region(at[120.0], "ru").reachable
    assert verdict(at[120.0], "ru", "site").verdict == "unreachable"
    down = [s.evaluated_at for s in snaps if not region(s, "ru").reachable]
    assert 60 < down[0] <= 95, down[0]  # within a few rounds of the cut
    assert 140 <= down[-1] <= 185, down[-1]  # the hold, then clear
    assert all(region(at[t], "ru").since == down[0] for t in down), "one unreachable spell"
    held = region(at[down[-1]], "ru")
    assert held.reason.startswith("held; recovering for"), held.reason
    assert held.reason.endswith("(now 2 of 2 agents healthy, 0 unhealthy)"), held.reason
    assert region(at[down[-1] + 1], "ru").since == down[-1] + 1
    last = snaps[-1]
    assert region(last, "ru").reachable
    assert all(v == "ok" for (g, t), v in verdicts(last).items() if g == "ru"), verdicts(last)


def test_a_block_held_before_the_region_went_down_gives_way_and_returns() -> None:
    """ru blocks site (reset) throughout; its network is down for rounds 6-13. The
    block reads unreachable while the region is down and comes back after."""

    def phases(r: int, g: str, a: str) -> dict[str, object]:
        return {
            "net": not (g == "ru" and 6 <= r <= 13),
            "site": "connection_reset" if g == "ru" else None,
        }

    snaps = replay(world(range(26), phases), until=259.0)
    at = {s.evaluated_at: s for s in snaps}
    assert verdict(at[55.0], "ru", "site").verdict == "blocked"
    assert verdict(at[120.0], "ru", "site").verdict == "unreachable"
    assert verdict(snaps[-1], "ru", "site").verdict == "blocked"
    others = {k for s in snaps for k in blocked(s)}
    assert others == {("ru", "site")}


# ---------------------------------------------------------------- the witness rule itself


def _log(*ms: Measurement, horizon: float = 30.0) -> HealthLog:
    log = HealthLog(AnalysisConfig(health_horizon_s=horizon))
    for m in ms:
        if m.role == "canary":
            log.add(m)
    log.prepare(0.0, [[m] for m in ms if m.role == "test"])
    return log


def _canary(at: float, failure: str | None = None, target: str = "c1") -> Measurement:
    return _m(at, "ru", "ru-0", target, failure, role="canary")


def test_a_failure_needs_a_reference_reached_after_it() -> None:
    fail = _m(100.0, "ru", "ru-0", "site", "connection_reset")
    assert _log(_canary(95.0), fail, _canary(105.0)).is_witness(fail)
    assert not _log(_canary(95.0), fail).is_witness(fail), "nothing reached after it yet"
    assert not _log(_canary(95.0), fail, _canary(131.0)).is_witness(fail), "too late: > H"
    assert _log(_canary(95.0), fail, _canary(130.0)).is_witness(fail), "at H exactly"


def test_a_reference_that_failed_around_the_failure_disqualifies_it() -> None:
    fail = _m(100.0, "ru", "ru-0", "site", "connection_reset")
    assert not _log(_canary(80.0, "generic_timeout"), fail, _canary(105.0)).is_witness(fail)
    # more than H before, and reached again since: no longer in the way
    assert _log(_canary(69.0, "generic_timeout"), _canary(72.0), fail, _canary(105.0)).is_witness(fail), (
        "> H before"
    )
    # but a failure with nothing reached since still is, however long ago (the Memory rule)
    assert not _log(_canary(69.0, "generic_timeout"), fail, _canary(105.0)).is_witness(fail)


def test_one_blocked_canary_does_not_silence_an_agent_another_reference_vouches() -> None:
    fail = _m(100.0, "ru", "ru-0", "site", "connection_reset")
    log = _log(
        _canary(95.0, "connection_reset", "c1"), _canary(105.0, "connection_reset", "c1"),
        _canary(96.0, None, "c2"), fail, _canary(106.0, None, "c2"),
    )  # fmt: skip
    assert log.is_witness(fail)


def test_a_throughput_result_carries_its_own_witness() -> None:
    ok = _m(100.0, "ru", "ru-0", "twitter", "connection_reset", kind="throughput", control_bps=BPS)
    assert _log(ok).is_witness(ok)
    bad = _m(100.0, "ru", "ru-0", "twitter", "generic_timeout", kind="throughput",
             control_failure="generic_timeout")  # fmt: skip
    assert not _log(bad).is_witness(bad)


def test_an_agent_error_of_the_control_or_canary_says_nothing_about_reach() -> None:
    fail = _m(100.0, "ru", "ru-0", "site", "connection_reset")
    starved = _canary(105.0, "agent_deadline_missed")
    log = _log(fail, starved)
    assert log.is_witness(fail), "no reference at all: counted as before"
    assert log.agents(110.0)[0].state == "unknown"


def test_the_health_log_takes_canaries_only_and_keeps_a_bounded_trace() -> None:
    from coordinator.analysis.health import MAX_TRACE

    log = HealthLog(AnalysisConfig())
    with pytest.raises(ValueError, match=r"HealthLog\.add: takes canary measurements, got role 'test'"):
        log.add(_m(1.0, "ru", "ru-0", "site", None))
    for i in range(MAX_TRACE + 10):
        log.add(_canary(float(i)))
    assert len(log._canaries["ru-0"]) == MAX_TRACE


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"role": "spy"}, "Measurement.role: must be one of ['test', 'canary']"),
        ({"control_failure": "made_up"}, "Measurement.control_failure: must be None or one of"),
        (
            {"control_failure": "generic_timeout", "control_bps": 1.0},
            "a failed control has no control_bps",
        ),
    ],
)
def test_bad_health_fields_are_refused_by_name(bad: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        _m(1.0, "ru", "ru-0", "twitter", None, kind="throughput", **bad)
