"""A cut-off region under load: its canaries stop arriving (every slot waits on a
timeout), its test tasks keep failing. Health must remember the failed references rather
than drift to "unknown" (which once read every target "blocked"), a failure that ran
while the agent was cut off is no evidence even when it ends after the restore, and the
region clears within two rounds of the references coming back."""

from __future__ import annotations

from coordinator.analysis import AnalysisConfig, Analyzer, Measurement
from coordinator.analysis.health import MEMORY_S

GROUPS = ("a", "b", "c")
TARGETS = ("site-1", "site-2", "site-3", "site-4", "slow")


def _m(at: float, group: str, agent: str, target: str, failure: str | None, *, duration: float = 0.5,
       role: str = "test") -> Measurement:  # fmt: skip
    return Measurement(at=at, group=group, agent_id=agent, target=target, kind="http", failure=failure,
                       duration_s=duration, role=role)  # fmt: skip


def _round(a: Analyzer, t: float, *, cut: set[str], canaries: bool = True) -> None:
    """One 10 s round: each agent's canary (a cut agent's times out, or never arrives when
    ``canaries`` is False) and its five targets ("slow" takes 40 s for everyone)."""
    for g in GROUPS:
        for i in range(2):
            agent = f"{g}-{i}"
            down = g in cut
            if canaries or not down:
                a.add(_m(t, g, agent, "http://canary.example/", "generic_timeout" if down else None, role="canary"))
            for k, target in enumerate(TARGETS):
                slow = target == "slow"
                a.add(_m(t + 1 + k * 0.1, g, agent, target, "generic_timeout" if down else None,
                         duration=40.0 if slow else 0.5))  # fmt: skip


def _states(a: Analyzer, now: float) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    snap = a.evaluate(now)
    agents = {h.agent_id: h.state for h in snap.agents}
    verdicts = {(r.group, r.target): r.verdict for r in snap.regions}
    return agents, verdicts


def test_health_does_not_drift_to_unknown_while_failures_go_on_without_references() -> None:
    a = Analyzer(AnalysisConfig())
    t = 0.0
    for _ in range(6):  # all well
        _round(a, t, cut=set())
        t += 10
    # b is cut: two canary timeouts arrive, then none (its slots wait on timeouts)
    for n in range(30):  # 300 s: ten times the health horizon, five windows
        _round(a, t, cut={"b"}, canaries=n < 2)
        t += 10
        agents, verdicts = _states(a, t)
        assert agents["b-0"] == agents["b-1"] == "unhealthy", (n, agents)
        bad = {k: v for k, v in verdicts.items() if k[0] == "b" and v == "blocked"}
        assert not bad, (n, bad)
    assert {v for k, v in verdicts.items() if k[0] == "b"} == {"unreachable"}, verdicts
    assert {v for k, v in verdicts.items() if k[0] != "b"} == {"ok"}, verdicts


def test_a_failure_that_ran_while_cut_off_is_no_evidence_and_the_region_clears_in_two_rounds() -> None:
    """Rounds of 10 s, evaluated every 2 s as the coordinator does (every second)."""
    a = Analyzer(AnalysisConfig())
    t = 0.0

    def rounds(n: int, cut: set[str], *, canaries_for: int = 99, slow_failures_for: int = 0) -> float | None:
        nonlocal t
        cleared = None
        for k in range(n):
            _round(a, t, cut=cut, canaries=k < canaries_for)
            if k < slow_failures_for:  # tasks begun during the cut end now, failed after 40 s
                for i in range(2):
                    a.add(_m(t + 2, "b", f"b-{i}", "slow", "generic_timeout", duration=40.0))
            for step in range(2, 12, 2):
                _agents, verdicts = _states(a, t + step)
                mine = {v for key, v in verdicts.items() if key[0] == "b"}
                assert "blocked" not in mine, (t + step, verdicts)
                if cleared is None and not cut and not mine & {"unreachable", "blocked", "throttled"}:
                    cleared = t + step
            t += 10
        return cleared

    rounds(6, set())
    rounds(12, {"b"}, canaries_for=2)
    restored = t
    cleared = rounds(8, set(), slow_failures_for=4)
    assert cleared is not None and cleared - restored <= 2 * 10 + 2, (cleared, restored)
    _agents, verdicts = _states(a, t)
    assert {v for key, v in verdicts.items() if key[0] == "b" and key[1] != "slow"} == {"ok"}, verdicts
    assert verdicts[("b", "slow")] in ("ok", "inconclusive"), verdicts


def test_memory_is_bounded_in_time() -> None:
    a = Analyzer(AnalysisConfig())
    a.add(_m(0.0, "b", "b-0", "http://canary.example/", "generic_timeout", role="canary"))
    a.evaluate(1.0)
    assert a.health.remembered_down("b-0", 2.0)
    assert not a.health.remembered_down("b-0", MEMORY_S + 10.0)


def test_an_older_success_does_not_vouch_against_failures_going_on() -> None:
    a = Analyzer(AnalysisConfig())
    ctl = Measurement(at=95.0, group="b", agent_id="b-0", target="tw", kind="throughput", failure=None,
                      duration_s=4.0, throughput_bps=1e6, control_bps=1e6)  # fmt: skip
    a.add(ctl)
    a.add(_m(90.0, "b", "b-0", "http://canary.example/", None, role="canary"))
    a.add(_m(100.0, "b", "b-0", "http://canary.example/", "generic_timeout", role="canary"))
    a.add(_m(105.0, "b", "b-0", "http://canary.example/", "generic_timeout", role="canary"))
    (h,) = a.evaluate(106.0).agents
    assert h.state == "unhealthy" and "since 6 s ago" in h.reason, h
    # a success after the failures began vouches again
    a.add(_m(107.0, "b", "b-0", "http://canary.example/", None, role="canary"))
    (h,) = a.evaluate(108.0).agents
    assert h.state == "healthy", h


def test_an_agent_that_never_comes_back_is_forgotten_after_the_memory() -> None:
    a = Analyzer(AnalysisConfig())
    a.add(_m(0.0, "b", "gone-1", "http://canary.example/", "generic_timeout", role="canary"))
    a.evaluate(1.0)
    a.evaluate(120.0)  # out of the window: remembered
    assert "gone-1" in a.health._last
    a.evaluate(MEMORY_S + 200.0)  # past the memory: forgotten, though never judged again
    assert "gone-1" not in a.health._last
