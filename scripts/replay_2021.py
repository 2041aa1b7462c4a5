#!/usr/bin/env python3
"""Replay the March 2021 Russia Twitter Throttle Dataset through the analysis core and
print the per-ASN, per-day verdict table (7-day window, judged at the end of each day).

    python scripts/replay_2021.py            # the named carriers, every ASN ever throttled, summary
    python scripts/replay_2021.py --all      # every ASN with data
    python scripts/replay_2021.py --asn 12389 --asn 8359 --reasons

Data: "Russia Twitter Throttle Dataset" (github.com/4ndv/russia-twitter-throttle) by
Andrey Viktorov and Leonid Evdokimov, CC BY 4.0; contains information from the CAIDA UCSD
Routeviews pfx2as and AS-to-Organization datasets (tests/fixtures/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coordinator.analysis.replay import (  # noqa: E402
    MEGAFON_ASNS,
    REPLAY_CONFIG,
    T2_MOBILE_ASNS,
    format_table,
    load_rows,
    replay,
    summary,
)

DEFAULT_CSV = ROOT / "tests" / "fixtures" / "russia-twitter-throttle-2021-03.csv.gz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the dataset (.csv or .csv.gz)")
    p.add_argument(
        "--all", action="store_true", help="print every ASN, not only the interesting ones"
    )
    p.add_argument("--asn", action="append", default=[], help="print this ASN (repeatable)")
    p.add_argument("--reasons", action="store_true", help="also print each verdict's reason")
    args = p.parse_args(argv)
    if not args.csv.is_file():
        print(f"replay_2021: --csv: no such file {args.csv}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        data = load_rows(args.csv)
    except ValueError as exc:
        print(f"replay_2021: {exc}", file=sys.stderr)
        return 2
    result = replay(data.rows)
    elapsed = time.perf_counter() - started

    named = list(MEGAFON_ASNS + T2_MOBILE_ASNS)
    if args.asn:
        unknown = [a for a in args.asn if a not in result.verdicts]
        if unknown:
            print(f"replay_2021: --asn: no data for {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = list(args.asn)
    elif args.all:
        chosen = sorted(
            result.verdicts, key=lambda a: (result.country[a] != "RU", -result.throttled_days(a), a)
        )
    else:
        ever = [a for a in result.verdicts if result.throttled_days(a) and a not in named]
        ever.sort(key=lambda a: (-result.throttled_days(a), -result.conclusive_days(a), a))
        chosen = named + ever
    cfg = REPLAY_CONFIG
    print(
        f"rows: {len(data.rows)} used, {len(data.skipped)} skipped ({'; '.join(data.skipped)}); "
        f"window {cfg.window_s / 86_400:.0f} days, up to {cfg.max_samples_per_agent} samples per "
        f"agent, min {cfg.min_samples} samples from {cfg.min_agents} agents, "
        f"throttle_ratio {cfg.throttle_ratio}, alpha {cfg.alpha}; {elapsed:.1f} s"
    )
    print("T throttled, . ok, ? inconclusive, D degraded, blank: no measurement in the window")
    print(format_table(result, chosen))
    print(summary(result))
    if args.reasons:
        for asn in chosen:
            for day, verdict, reason in zip(
                result.days, result.verdicts[asn], result.reasons[asn], strict=True
            ):
                if verdict is not None:
                    print(f"{asn} {day} {verdict}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
