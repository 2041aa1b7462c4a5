"""Synthetic rounds with heavy noise: no false throttling over thousands of rounds, and a
stepped slowdown found within 3 rounds (tests/analysis/synthetic.py has the model)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from coordinator.analysis import AnalysisConfig, Analyzer
from tests.analysis.synthetic import ROUND_S, SyntheticWorld


def test_the_noise_is_heavy() -> None:
    """Guard the test conditions themselves: bandwidths 300x apart, +-50% swings,
    congestion episodes and dips all occur."""
    world = SyntheticWorld.build(random.Random(1))
    per_region: dict[str, list[float]] = {}
    for i in range(1000):
        for m in world.round(i):
            assert m.throughput_bps is not None
            per_region.setdefault(m.group, []).append(m.throughput_bps)
    medians = {g: sorted(v)[len(v) // 2] for g, v in per_region.items()}
    assert max(medians.values()) / min(medians.values()) > 100
    for values in per_region.values():
        ordered = sorted(values)
        # 10th..90th percentile spread of one region's throughput: more than 2.5x
        assert ordered[len(ordered) * 9 // 10] / ordered[len(ordered) // 10] > 2.5
    assert len(world.congestion_factor) == 4  # every region went through congestion


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_thousand_noisy_rounds_give_no_throttled_verdict(seed: int) -> None:
    world = SyntheticWorld.build(random.Random(seed))
    analyzer = Analyzer(AnalysisConfig())
    verdicts: Counter[str] = Counter()
    rounds = 1200
    for i in range(rounds):
        for m in world.round(i):
            analyzer.add(m)
        for offset in (1.5, 5.0):  # mid-round (results still landing) and after
            snap = analyzer.evaluate(i * ROUND_S + offset)
            verdicts.update(v.verdict for v in snap.regions)
            assert not [v for v in snap.regions if v.verdict == "throttled"], (i, snap.regions)
            assert not [t for t in snap.targets if t.degraded], (i, snap.targets)
    assert verdicts["throttled"] == 0 and verdicts["degraded"] == 0
    # the engine did decide: nearly everything is a conclusive "ok"
    assert verdicts["ok"] >= 0.95 * sum(verdicts.values()), verdicts


@pytest.mark.parametrize("factor", [5.0, 8.0, 20.0])
@pytest.mark.parametrize("seed", range(6))
def test_stepped_slowdown_is_detected_within_three_rounds_and_clears(
    seed: int, factor: float
) -> None:
    rng = random.Random(1000 + seed)
    world = SyntheticWorld.build(rng)
    region = world.regions[seed % len(world.regions)]
    analyzer = Analyzer(AnalysisConfig())
    step_at, detected, cleared = 30, None, None

    def run_round(i: int) -> list[str]:
        for m in world.round(i):
            analyzer.add(m)
        throttled: list[str] = []
        for second in range(int(ROUND_S)):  # the coordinator evaluates about once a second
            snap = analyzer.evaluate(i * ROUND_S + 3.0 + second)
            throttled = [v.group for v in snap.regions if v.verdict == "throttled"]
            assert set(throttled) <= {region}, (i, snap.regions)
        return throttled

    i = 0
    for i in range(step_at):
        assert run_round(i) == []
    world.slowdown[region] = factor
    for n in range(1, 4):
        i += 1
        if run_round(i) == [region]:
            detected = n
            break
    assert detected is not None and detected <= 3, (
        f"{region} not throttled 3 rounds after a {factor}x step"
    )
    # keep it slow a while, then remove the slowdown: the verdict clears within 5 rounds
    for _ in range(3):
        i += 1
        assert run_round(i) == [region]
    world.slowdown.pop(region)
    for n in range(1, 6):
        i += 1
        if run_round(i) == []:
            cleared = n
            break
    assert cleared is not None and cleared <= 5, f"{region} still throttled 5 rounds after recovery"
    assert cleared >= 2  # hysteresis: one good round does not clear it


@pytest.mark.parametrize("factor", [5.0, 20.0])
@pytest.mark.parametrize("seed", range(4))
def test_a_slowdown_of_every_region_is_degraded_and_never_throttled(
    seed: int, factor: float
) -> None:
    """The target itself slows down for everyone at once (an overloaded CDN): each
    region's results land seconds apart, evaluated every second, yet no region is ever
    called throttled, the target is degraded within 3 rounds, and it clears within 5
    rounds (never after one) once the slowdown ends."""
    world = SyntheticWorld.build(random.Random(2000 + seed))
    analyzer = Analyzer(AnalysisConfig())

    def run_round(i: int) -> bool:
        """Results land in time order (within the round's first 3 s), and the analysis
        evaluates every half second in between, as the coordinator does about once a
        second: some regions' new results are in while others' are not yet."""
        degraded = False
        pending = sorted(world.round(i), key=lambda m: m.at)
        for tick in range(int(2 * ROUND_S)):
            now = i * ROUND_S + tick / 2
            while pending and pending[0].at <= now:
                analyzer.add(pending.pop(0))
            snap = analyzer.evaluate(now)
            assert not [v.group for v in snap.regions if v.verdict == "throttled"], (i, snap.regions)
            degraded = any(t.degraded for t in snap.targets)
        assert not pending
        return degraded

    i = 0
    for i in range(30):
        assert not run_round(i)
    for region in world.regions:
        world.slowdown[region] = factor
    detected = None
    for n in range(1, 4):
        i += 1
        if run_round(i):
            detected = n
            break
    assert detected is not None, f"not degraded 3 rounds after a {factor}x slowdown everywhere"
    for _ in range(3):
        i += 1
        assert run_round(i)
    world.slowdown.clear()
    cleared = None
    for n in range(1, 6):
        i += 1
        if not run_round(i):
            cleared = n
            break
    assert cleared is not None and 2 <= cleared <= 5, cleared


def test_the_onset_figures_script_runs_and_prints_its_figures() -> None:
    """scripts/onset_figures.py produces the figures docs/detection.md cites; one world
    per experiment keeps it quick."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "onset_figures.py"
    out = subprocess.run(
        [sys.executable, str(script), "--runs", "1", "--regional-runs", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "  5x: runs with a throttled evaluation 0/1; degraded round 2: 1;" in out.stdout, out.stdout
    assert "  20x: runs with a throttled evaluation 0/1;" in out.stdout, out.stdout
    assert "  5x: throttled round 2: 1" in out.stdout, out.stdout
    bad = subprocess.run(
        [sys.executable, str(script), "--runs", "0"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "--runs and --regional-runs: at least 1" in bad.stderr
    assert "Traceback" not in bad.stderr
