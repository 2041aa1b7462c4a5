"""Cost of the block-page and DNS-lie passes of Analyzer.evaluate, with a reference in the
same run.

The load: 20 groups (countries alike) x 4 agents x 3 samples for each of 50 http targets
and 50 dns names. Every http fetch carries a page (one group gets a block page); every
dns result carries 32 answer addresses (the most the analysis keeps), all different, with
valid TLS, as a CDN's would be: the worst case for the majority search. The reference is
the same measurements without pages and answers, so the passes have nothing to do; the
ratio is what the passes add. Evaluations run twice: the first with cold caches.

Usage: python benchmarks/evidence_marks.py [--repeat 5] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figlib import Figures, add_args, apply_quick
from coordinator.analysis import AnalysisConfig, Analyzer, Measurement
from coordinator.analysis.blockpage import Body
from coordinator.analysis.dnslie import Answers

GROUPS, AGENTS, SAMPLES, TARGETS = 20, 4, 3, 50
SITE = Body(status=200, length=48_000, title="Example News: the stories of the day")
ISP = Body(status=200, length=900, title="Access restricted")


def workload(evidence: bool) -> list[Measurement]:
    out = []
    for t in range(TARGETS):
        for g in range(GROUPS):
            for a in range(AGENTS):
                for r in range(SAMPLES):
                    at = float(r * 10 + a)
                    body = (ISP if g == 0 else SITE) if evidence else None
                    out.append(Measurement(at=at, group=f"g{g}", agent_id=f"g{g}-{a}", target=f"http://t{t}/",
                                           kind="http", failure=None, duration_s=0.1, body=body))  # fmt: skip
                    answers = None
                    if evidence:
                        addresses = tuple(f"{10 + g}.{a}.{r}.{i}" for i in range(32))
                        answers = Answers(addresses=addresses, tls_checked=2, tls_valid=2)
                    out.append(Measurement(at=at, group=f"g{g}", agent_id=f"g{g}-{a}", target=f"n{t}.example",
                                           kind="dns", failure=None, duration_s=0.01, answers=answers))  # fmt: skip
    return out


def one_run(items: list[Measurement]) -> tuple[float, float]:
    analyzer = Analyzer(AnalysisConfig(max_targets=500, window_s=10_000.0))
    for m in items:
        analyzer.add(m)
    start = time.perf_counter()
    analyzer.evaluate(40.0)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    snap = analyzer.evaluate(41.0)
    warm = time.perf_counter() - start
    assert len(snap.targets) == 2 * TARGETS
    return cold, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs to take the median of (default 5)")
    add_args(parser, "--repeat 2")
    args = parser.parse_args()
    apply_quick(args, parser, {"repeat": 2})
    figs = Figures("evidence_marks", args.quick)
    plain, marked = workload(False), workload(True)
    ref = [one_run(plain) for _ in range(max(1, args.repeat))]
    got = [one_run(marked) for _ in range(max(1, args.repeat))]
    for label, i in (("cold", 0), ("warm", 1)):
        r = statistics.median(x[i] for x in ref)
        g = statistics.median(x[i] for x in got)
        print(f"evaluate ({label}): {g * 1000:.0f} ms with pages and answers, {r * 1000:.0f} ms without "
              f"({g / r:.2f}x); {TARGETS} http + {TARGETS} dns targets, {len(marked):,} measurements")
        figs.add(f"evaluate ({label}) with pages and answers", g * 1000, "ms")
        figs.add(f"evaluate ({label}) without (the reference)", r * 1000, "ms")
        figs.add(f"evaluate ({label}) with / without", g / r, "x")
    figs.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
