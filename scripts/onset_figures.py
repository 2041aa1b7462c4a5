"""The synthetic onset figures of docs/detection.md ("degraded", "Freshness").

Usage: python scripts/onset_figures.py [--runs 100] [--regional-runs 300]

Two experiments in the noisy synthetic world of tests/analysis/synthetic.py (4 regions of
very different bandwidth, congestion, dips, a slow agent):

- **every region slows down at once** (the target itself, e.g. its CDN), by 3x, 5x and
  20x, in ``--runs`` worlds each. Results land in time order and the analysis evaluates
  every half second, so regions' new results arrive seconds apart. Printed: how many runs
  had any throttled evaluation, and the round in which the target became degraded and in
  which it cleared after the slowdown ended;
- **one region slows down** by 5x and 10x (``--regional-runs`` worlds each): the round in
  which it became throttled.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordinator.analysis import AnalysisConfig, Analyzer
from tests.analysis.synthetic import ROUND_S, SyntheticWorld

WARMUP_ROUNDS = 30


def _global_step(seed: int, factor: float) -> tuple[int, int | None, int | None]:
    """(evaluations with a throttled region, round degraded, round cleared)."""
    world = SyntheticWorld.build(random.Random(5000 + seed))
    analyzer = Analyzer(AnalysisConfig())
    throttled = 0

    def run(i: int) -> bool:
        nonlocal throttled
        pending = sorted(world.round(i), key=lambda m: m.at)
        degraded = False
        for tick in range(int(2 * ROUND_S)):
            now = i * ROUND_S + tick / 2
            while pending and pending[0].at <= now:
                analyzer.add(pending.pop(0))
            snap = analyzer.evaluate(now)
            throttled += any(v.verdict == "throttled" for v in snap.regions)
            degraded = any(t.degraded for t in snap.targets)
        return degraded

    for i in range(WARMUP_ROUNDS):
        run(i)
    for region in world.regions:
        world.slowdown[region] = factor
    detected = None
    for n in range(1, 6):
        if run(WARMUP_ROUNDS + n - 1) and detected is None:
            detected = n
    world.slowdown.clear()
    cleared = None
    for n in range(1, 8):
        if not run(WARMUP_ROUNDS + 4 + n) and cleared is None:
            cleared = n
    return throttled, detected, cleared


def _regional_step(seed: int, factor: float) -> int | None:
    world = SyntheticWorld.build(random.Random(1000 + seed))
    region = world.regions[seed % len(world.regions)]
    analyzer = Analyzer(AnalysisConfig())

    def run(i: int) -> list[str]:
        for m in world.round(i):
            analyzer.add(m)
        throttled: list[str] = []
        for second in range(int(ROUND_S)):
            snap = analyzer.evaluate(i * ROUND_S + 3.0 + second)
            throttled = [v.group for v in snap.regions if v.verdict == "throttled"]
        return throttled

    for i in range(WARMUP_ROUNDS):
        run(i)
    world.slowdown[region] = factor
    for n in range(1, 6):
        if run(WARMUP_ROUNDS + n - 1) == [region]:
            return n
    return None


def _rounds(counter: Counter[int | None]) -> str:
    return ", ".join(
        f"{'never' if k is None else f'round {k}'}: {v}"
        for k, v in sorted(counter.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/onset_figures.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=100, help="worlds per global factor")
    parser.add_argument("--regional-runs", type=int, default=300, help="worlds per regional factor")
    args = parser.parse_args()
    if args.runs < 1 or args.regional_runs < 1:
        parser.error("--runs and --regional-runs: at least 1")
    print(f"every region slowed at once, {args.runs} worlds per factor:")
    for factor in (3.0, 5.0, 20.0):
        runs = [_global_step(seed, factor) for seed in range(args.runs)]
        with_throttled = sum(1 for t, _, _ in runs if t)
        print(
            f"  {factor:g}x: runs with a throttled evaluation {with_throttled}/{args.runs}; "
            f"degraded {_rounds(Counter(d for _, d, _ in runs))}; "
            f"cleared {_rounds(Counter(c for _, d, c in runs if d is not None))}"
        )
    print(f"one region slowed, {args.regional_runs} worlds per factor:")
    for factor in (5.0, 10.0):
        found = Counter(_regional_step(seed, factor) for seed in range(args.regional_runs))
        print(f"  {factor:g}x: throttled {_rounds(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
