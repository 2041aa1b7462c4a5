"""Where a transfer's rate dropped: the burst a policer lets through, and the rate after it.

Policers often let the first few hundred kB (a token bucket's ``burst``) through at full
speed and hold the flow to their rate after that. A short download can end inside the
burst and never see the throttle, and a mean over the whole transfer mixes the two rates.
The throughput probe therefore splits its per-window series in two and reports:

- ``first_part_bps``: bytes/s over the windows before the split;
- ``sustained_bps``: bytes/s over the windows from the split on (what the analysis judges);
- ``drop_at_s``: when the rate dropped (seconds from the first body byte), or None.

**The split.** Over the windows' log rates (a rate below 1 B/s counts as 1 B/s), the split
is the one point that leaves the least squared error about each side's mean: the classic
single change point, which a transient dip does not pull far. It is a **drop** when both
hold:

- the rate after it (bytes over seconds) is at most ``DROP_RATIO`` (0.5) of the rate
  before it, and so is the median window after it against the median window before it (a
  single fast window at the start, or one stall near the end, does not make a drop);
- at least ``MIN_AFTER_WINDOWS`` (3) windows follow it (0.75 s at the default interval),
  so the rate after a drop is a measured rate, not one window's noise. A best split
  closer to the end than that is no drop yet (too early to tell), rather than a drop
  placed where it did not happen.

With no drop, the split is half way through the windows, so both figures are the rate of
a steady transfer measured twice. With fewer than 2 windows (a download faster than two
windows) there is nothing to split: both figures are absent, and the caller keeps the mean.
A rise (TCP slow start) is never a drop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DROP_RATIO = 0.5
MIN_AFTER_WINDOWS = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class Split:
    first_part_bps: float | None = None
    sustained_bps: float | None = None
    drop_at_s: float | None = None


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _rate(counts: Sequence[float], seconds: Sequence[float]) -> float:
    total = sum(seconds)
    return sum(counts) / total if total > 0 else 0.0


def split(counts: Sequence[float], seconds: Sequence[float]) -> Split:
    """The two rates of a transfer and the time its rate dropped, from its windows:
    ``counts[i]`` bytes arrived in window i, which lasted ``seconds[i]``."""
    if len(counts) != len(seconds):
        raise ValueError("counts and seconds: one of each per window")
    n = len(counts)
    if n < 2 or any(s <= 0 for s in seconds):
        return Split()
    rates = [c / s for c, s in zip(counts, seconds, strict=True)]
    logs = [math.log(max(r, 1.0)) for r in rates]
    best_k, best_cost = 0, math.inf
    for k in range(1, n):
        before, after = logs[:k], logs[k:]
        cost = _sse(before) + _sse(after)
        if cost < best_cost:
            best_k, best_cost = k, cost
    if best_k and n - best_k >= MIN_AFTER_WINDOWS:
        k = best_k
        first = _rate(counts[:k], seconds[:k])
        then = _rate(counts[k:], seconds[k:])
        if (
            then <= DROP_RATIO * first
            and _median(rates[k:]) <= DROP_RATIO * _median(rates[:k])
        ):
            return Split(
                first_part_bps=first, sustained_bps=then, drop_at_s=sum(seconds[:k])
            )
    half = n // 2
    return Split(
        first_part_bps=_rate(counts[:half], seconds[:half]),
        sustained_bps=_rate(counts[half:], seconds[half:]),
    )


def _sse(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values)
