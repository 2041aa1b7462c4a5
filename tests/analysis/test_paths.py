"""Path figures per (group, target): ping loss and RTT over the window, the latest trace;
hostile or malformed data is dropped and counted, never raised."""

from __future__ import annotations

import math

import pytest

from coordinator.analysis import Analyzer
from coordinator.analysis.model import AnalysisConfig
from coordinator.analysis.paths import PathStats, beyond_first_hop
from tests.analysis.helpers import reach


def ping(sent: int, received: int, avg: float | None = 0.02, **over: object) -> dict[str, object]:
    data: dict[str, object] = {"sent": sent, "received": received, "rtt_min_s": avg and avg / 2,
                               "rtt_avg_s": avg, "rtt_max_s": avg and avg * 2, "jitter_s": avg and avg / 10}
    data.update(over)
    return data


def test_loss_and_rtt_over_the_window() -> None:
    paths = PathStats(AnalysisConfig(window_s=60))
    assert paths.add("ru", "t", "ping", 100.0, ping(5, 5, 0.010))
    assert paths.add("ru", "t", "ping", 110.0, ping(5, 0, None))
    assert paths.add("ru", "t", "ping", 120.0, ping(10, 5, 0.040))
    assert paths.add("de", "t", "ping", 120.0, ping(4, 4, 0.005))
    (de, ru) = list(paths.pings(now=150.0))
    assert (ru.group, ru.samples, ru.sent) == ("ru", 3, 20)
    assert ru.loss == pytest.approx(0.5)
    # the mean RTT weighs each result by its replies: (5 * 10 + 5 * 40) / 10 ms
    assert ru.rtt_avg_s == pytest.approx(0.025)
    assert (ru.rtt_min_s, ru.rtt_max_s) == (0.005, 0.08)
    assert de.loss == 0 and de.rtt_avg_s == 0.005
    # 65 s later the first two results have left the window
    (_, ru_later) = list(paths.pings(now=175.0))
    assert (ru_later.samples, ru_later.loss) == (1, 0.5)
    assert list(paths.pings(now=1000.0)) == []


def test_the_latest_trace_in_the_window() -> None:
    paths = PathStats(AnalysisConfig(window_s=60))
    hops = [{"ttl": 1, "address": "10.0.0.1"}, {"ttl": 2, "address": ""}]
    assert paths.add("ru", "t", "traceroute", 120.0, {"reached": False, "hop_count": 2, "hops": hops})
    assert paths.add("ru", "t", "traceroute", 100.0, {"reached": True, "hop_count": 3, "hops": []})  # older
    [(group, target, trace)] = list(paths.traces(now=130.0))
    assert (group, target, trace.reached, trace.hop_count, trace.last_address) == ("ru", "t", False, 2, "10.0.0.1")


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (ping(0, 0), False),
        (ping(3, 4), False),
        (ping(-1, 0), False),
        (ping(True, 1), False),  # type: ignore[arg-type]
        ({**ping(3, 3), "sent": "3"}, False),
        ({}, False),
        # a bad RTT is ignored, the counts kept
        (ping(3, 3, rtt_avg_s=math.inf), True),
        (ping(3, 3, rtt_avg_s=-0.5), True),
        (ping(3, 3, rtt_avg_s="0.1"), True),
    ],
)
def test_malformed_pings_are_dropped_or_their_bad_figure_ignored(data: dict[str, object], kept: bool) -> None:
    paths = PathStats(AnalysisConfig())
    assert paths.add("ru", "t", "ping", 1.0, data) is kept
    figures = list(paths.pings(now=1.0))
    if kept:
        [f] = figures
        assert f.rtt_avg_s is None and f.sent == 3 and paths.dropped == 0
    else:
        assert figures == [] and paths.dropped == 1


def test_malformed_traces_are_dropped() -> None:
    paths = PathStats(AnalysisConfig())
    assert not paths.add("ru", "t", "traceroute", 1.0, {"hop_count": 2, "hops": "no"})
    assert not paths.add("ru", "t", "traceroute", 1.0, {"hop_count": -2, "hops": []})
    assert paths.add("ru", "t", "traceroute", 1.0, {"hop_count": 1, "hops": [7, {"address": 9}]})
    [(_, _, trace)] = list(paths.traces(now=1.0))
    assert trace.last_address == "" and paths.dropped == 2


def test_targets_and_groups_are_bounded() -> None:
    paths = PathStats(AnalysisConfig(max_targets=2, max_groups=2))
    for i in range(5):
        paths.add("ru", f"t{i}", "ping", 1.0, ping(1, 1))
        paths.add(f"g{i}", "t0", "ping", 1.0, ping(1, 1))
    figures = list(paths.pings(now=1.0))
    assert len({f.target for f in figures}) <= 2 and len({f.group for f in figures}) <= 2
    assert paths.dropped == 7  # t2..t4 from ru, g1..g4 to t0


@pytest.mark.parametrize(
    ("data", "beyond"),
    [
        ({"reached": True, "hops": [{"ttl": 1, "address": "10.0.0.1"}]}, True),
        ({"reached": False, "stopped": "gap_limit",
          "hops": [{"ttl": 1, "address": "10.0.0.1"}, {"ttl": 2, "address": "10.0.1.1"}]}, True),
        ({"reached": False, "stopped": "timeout",
          "hops": [{"ttl": 1, "address": ""}, {"ttl": 2, "address": "10.0.1.1"}]}, True),
        # it ended on its own with nothing past TTL 1: died at the first hop
        ({"reached": False, "stopped": "gap_limit", "hops": [{"ttl": 1, "address": "10.0.0.1"}, {"ttl": 2, "address": ""}]}, False),
        ({"reached": False, "stopped": "unreachable", "hops": [{"ttl": 1, "address": "10.0.0.1"}]}, False),
        ({"reached": False, "stopped": "gap_limit", "hops": [{"ttl": 1, "address": ""}, "junk"]}, False),
        # it says nothing of the kind
        ({"reached": False, "stopped": "", "hops": []}, None),  # never sent a probe (nxdomain, policy)
        ({"reached": False, "stopped": "max_hops", "hops": [{"ttl": 1, "address": "10.0.0.1"}]}, None),
        ({"reached": False, "stopped": "timeout", "hops": [{"ttl": 1, "address": ""}]}, None),
        ({"reached": False, "stopped": "gap_limit", "hops": [{"ttl": 3, "address": ""}]}, None),  # first_hop 3
        ({"reached": False, "stopped": "gap_limit", "hops": [{"ttl": True, "address": "x"}]}, None),
        ({"reached": True}, None),
    ],
)
def test_a_trace_that_dies_at_the_first_hop(data: dict[str, object], beyond: bool | None) -> None:
    assert beyond_first_hop(data) is beyond


def _reach_round(a: Analyzer, at: float, failing: str | None) -> None:
    for g in ("ru", "de", "us"):
        for i in range(2):
            a.add(reach(at + i, g, f"{g}-{i}", "facebook", failing if g == "ru" else None))


def test_a_trace_that_got_through_does_not_silence_later_failures() -> None:
    """An occasional traceroute is not a reference: ru's failures a minute after its
    traces still count, and ru is blocked, not unreachable."""
    a = Analyzer(AnalysisConfig(window_s=120))
    for i in range(2):
        a.health.add_trace(f"ru-{i}", "ru", "10.0.0.9", 0.0, True)
    for r in range(3):
        _reach_round(a, 60.0 + r * 10, "connection_reset")
    snap = a.evaluate(85.0)
    ru = next(v for v in snap.regions if v.group == "ru")
    assert ru.verdict == "blocked", ru.reason


def test_every_trace_dying_at_the_first_hop_makes_the_agent_unhealthy() -> None:
    a = Analyzer(AnalysisConfig(window_s=60))
    for r in range(3):
        _reach_round(a, r * 10.0, "generic_timeout")
        for i in range(2):
            a.health.add_trace(f"ru-{i}", "ru", "10.0.0.9", r * 10.0 + 1, False)
            a.health.add_trace(f"ru-{i}", "ru", "10.0.0.8", r * 10.0 + 1, False)
    snap = a.evaluate(25.0)
    agents = {h.agent_id: h for h in snap.agents}
    assert agents["ru-0"].state == "unhealthy", agents["ru-0"]
    assert "die at its own first hop (2 targets" in agents["ru-0"].reason
    assert {r.group: r.reachable for r in snap.region_health}["ru"] is False
    # one trace that gets through, to any target, and the agent is no longer called down
    a.health.add_trace("ru-0", "ru", "10.0.0.7", 26.0, True)
    agents = {h.agent_id: h for h in a.evaluate(27.0).agents}
    assert agents["ru-0"].state == "unknown", agents["ru-0"]


def test_targets_that_left_the_window_free_their_place() -> None:
    paths = PathStats(AnalysisConfig(window_s=60, max_targets=2))
    assert paths.add("ru", "a", "ping", 0.0, ping(1, 1))
    assert paths.add("ru", "b", "traceroute", 0.0, {"reached": True, "hop_count": 1, "hops": []})
    assert not paths.add("ru", "c", "ping", 10.0, ping(1, 1))  # two live targets already
    paths.prune(cutoff=100.0 - 60)
    assert paths.add("ru", "c", "ping", 100.0, ping(1, 1))
    assert [f.target for f in paths.pings(now=100.0)] == ["c"] and list(paths.traces(now=100.0)) == []
