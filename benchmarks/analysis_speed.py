"""Speed of the analysis core: Analyzer.add (called once per ingested measurement) and
Analyzer.evaluate (once per second), with a reference in the same run.

The load: 3 regions x 2 agents x 2 kinds x 2,500 rounds over 400 targets (30,000
measurements), then one evaluation of everything left in the window. The reference is
the cheapest thing add() could possibly do, appending each measurement to a deque, so
the ratio says how many times that floor add() costs, on whatever machine this runs.
The aim: add() far above the coordinator's ingest rate (10,000 measurements/s), and an
evaluation of 400 targets well under the 1 s evaluation tick.

Usage: python benchmarks/analysis_speed.py [--repeat 5] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figlib import Figures, add_args, apply_quick
from coordinator.analysis import AnalysisConfig, Analyzer, Measurement


def workload() -> list[Measurement]:
    return [
        Measurement(
            at=float(r), group=g, agent_id=f"{g}-{i}", target=f"t{r % 400}", kind=kind,
            failure=None, duration_s=0.05,
        )
        for r in range(2_500)
        for g in ("ru", "de", "us")
        for i in range(2)
        for kind in ("tcp", "http")
    ]


def one_run(items: list[Measurement]) -> tuple[float, float, float]:
    """Seconds for: the reference appends, the adds, the evaluation."""
    sink: deque[Measurement] = deque(maxlen=3)
    start = time.perf_counter()
    for m in items:
        sink.append(m)
    reference = time.perf_counter() - start

    analyzer = Analyzer(AnalysisConfig(max_targets=500, window_s=10_000.0))
    start = time.perf_counter()
    for m in items:
        analyzer.add(m)
    adds = time.perf_counter() - start
    start = time.perf_counter()
    snap = analyzer.evaluate(2_500.0)
    evaluation = time.perf_counter() - start
    assert len(snap.targets) == 400
    return reference, adds, evaluation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs to take the median of (default 5)")
    add_args(parser, "--repeat 2")
    args = parser.parse_args()
    apply_quick(args, parser, {"repeat": 2})
    items = workload()
    runs = [one_run(items) for _ in range(max(1, args.repeat))]
    reference = statistics.median(r[0] for r in runs)
    adds = statistics.median(r[1] for r in runs)
    evaluation = statistics.median(r[2] for r in runs)
    n = len(items)
    print(f"measurements: {n:,}; runs: {len(runs)} (medians)")
    print(f"reference (deque.append): {n / reference:,.0f}/s")
    print(f"Analyzer.add:             {n / adds:,.0f}/s  ({adds / reference:.1f}x the reference; "
          f"{n / adds / 10_000:.0f}x the 10,000/s ingest aim)")
    print(f"Analyzer.evaluate:        {evaluation * 1000:.0f} ms for 400 targets "
          f"({evaluation / 1.0:.0%} of the 1 s evaluation tick)")
    figs = Figures("analysis_speed", args.quick)
    figs.add("Analyzer.add rate", n / adds, "measurements/s", 10_000, "higher",
             "goal: the coordinator's ingest aim")  # fmt: skip
    figs.add("Analyzer.add cost against deque.append", adds / reference, "x the reference")
    figs.add("reference deque.append rate", n / reference, "measurements/s")
    figs.add("Analyzer.evaluate, 400 targets", evaluation * 1000, "ms", 1000, "lower",
             "goal: the 1 s evaluation tick")  # fmt: skip
    figs.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
