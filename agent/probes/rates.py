"""A transfer's sustained rate, how precisely it is known, and whether a policer's burst
came before it.

Policers often let the first few hundred kB (a token bucket's ``burst``) through at full
speed and hold the flow to their rate after that. A short download can end inside the
burst and never see the throttle, and a mean over the whole transfer mixes the two rates.
But TCP makes fast-then-slow series of its own: slow start, a loss into a short shaper
queue followed by a retransmission timeout, cross traffic on a congested link. Read as a
drop, those made a 150 kbit/s shaper read 35% of its rate (issue "The rate Vantage reports
is the rate the censor allows"). So a drop must carry a policer's signature, and without
one the sustained rate is the whole steady part of the transfer. The probe reports:

- ``sustained_bps``: bytes/s over the sustained part (what the analysis judges): the
  windows after the drop, or with no drop the **steady part**, every window after slow
  start (below);
- ``first_part_bps``: bytes/s over the windows before the drop; with no drop, over the
  first half of the windows (a steady transfer measured twice, as before);
- ``drop_at_s``: when the rate dropped (seconds from the first body byte), or None;
- ``rate_low_bps`` / ``rate_high_bps``: a 95% confidence interval of ``sustained_bps``
  and ``precise``: whether it is known to within ``PRECISION`` (below).

**Slow start.** The first window is never steady (it holds the wait for the first
read and the initial window's arrival at once); the steady part begins at the first later
window whose rate is at least ``RAMP_FRACTION`` (0.5) of the median window from there on
(at the latest the middle window). The ramp before it (slow start, or the retransmission timeouts of a start into a short
queue) is left out of the sustained rate.

**The split.** Over the windows' log rates (a rate below 1 B/s counts as 1 B/s), the split
is the one point that leaves the least squared error about each side's mean: the classic
single change point, which a transient dip does not pull far. It is a **drop** only when
all of these hold:

1. *A policer's burst before it*: the windows before the split carried at least
   ``MIN_BURST_BYTES`` (128 KiB). TCP's own fast start is smaller: the initial window
   (10 segments, 14.5 kB) and two doublings are about 100 kB by the end of the third RTT,
   and the shaper's false drops of the issue came after 2.9 to 69.5 kB. A receiver's
   buffer that an upload fills at once is about 128 kB too (Linux's default ``tcp_rmem``),
   and a slow reader's buffer is not a burst a censor granted. A real throttle's bucket is
   bigger: one that held less than a few round trips of data at line speed would stop TCP
   inside slow start, and the lab's policer lets 1 MB through.
2. *Lasting*: at least ``MIN_AFTER_WINDOWS`` (4) windows and ``MIN_AFTER_S`` (1 s) follow
   it, so the rate after a drop is a measured rate, not one window's noise or the last
   second of a congested transfer. A best split closer to the end than that is no drop
   yet (too early to tell), rather than a drop placed where it did not happen.
3. *Much slower*: the rate after it (bytes over seconds) is at most ``DROP_RATIO`` (0.5)
   of the rate before it, and so is the median window after it against the median window
   before it (a single fast window at the start, or one stall near the end, does not
   make a drop).
4. *Flat after it*: a policer holds the flow to its rate. The windows after the split are
   merged into blocks of at least ``BLOCK_S`` (0.5 s: at 150 kbit/s a 0.25 s window holds
   3 or 4 segments, which alone makes windows differ by a third) and the upper quartile of
   the blocks' rates is at most ``FLAT_SPREAD`` (2.5) times the lower one, which is above
   zero. Quartiles, so one odd block does not decide; 2.5 lets a TCP sawtooth under a
   dropping policer through and stops a congested link's swings (8 to 349 kB/s in the
   issue) and a flow reduced to retransmission timeouts (blocks with nothing).
5. *Not inside slow start, and fast throughout*: the last window before the split is
   itself fast (at least 1/``DROP_RATIO`` times the rate and the median window after
   it): the drop is from a fast rate, not from the ramp to one. (The change point is
   first moved back to the last fast window: with a few segments per window, the windows
   after a drop alternate between some and none, and the log split can land a window
   late.) And the two parts are apart: the lower
   quartile of the windows before it (past the first window, when there are 3 or more)
   is at least 1/``DROP_RATIO`` times the upper quartile of the blocks after it. A burst
   runs at the line's speed all through; a congested link's slow second after a jumpy
   run (the issue's "dropped at 3.75-4.0 s") does not qualify. When 3 or more windows
   come before the split, those past the first are flat too (upper quartile at most
   ``FLAT_SPREAD`` times the lower): a token bucket empties at the line's speed, a
   congested link swings.

**Precision.** The sustained part is cut into the same blocks (at least ``BLOCK_S``);
with m blocks of rates r_j, the interval is the sustained rate +- t(0.975, m-1) * sd(r_j)
/ sqrt(m) (Student's t over blocks, which are long enough for TCP's round trips not to
make neighbours depend much on each other). The rate is ``precise`` when that half-width
is at most ``PRECISION`` (10%) of it, over at least ``MIN_PRECISE_WINDOWS`` (8) windows,
``MIN_PRECISE_S`` (2 s) and ``MIN_PRECISE_BYTES`` (64 KiB, 45 full segments: the last
segment's quantisation is then under 3%). Only a precise rate may end a transfer early
(``transfer.Series``). With fewer than 3 blocks there is no interval.

With fewer than 2 windows (a download faster than two windows) there is nothing to split:
every figure is absent, and the caller keeps the mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DROP_RATIO = 0.5
MIN_AFTER_WINDOWS = 4
MIN_AFTER_S = 1.0
MIN_BURST_BYTES = 128 * 1024
FLAT_SPREAD = 2.5
BLOCK_S = 0.5
RAMP_FRACTION = 0.5
PRECISION = 0.10
MIN_PRECISE_WINDOWS = 8
MIN_PRECISE_S = 2.0
MIN_PRECISE_BYTES = 64 * 1024

# Student's t, 0.975 quantile, by degrees of freedom (1..30); above 30: 2.0 (1.96 at inf)
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Split:
    first_part_bps: float | None = None
    sustained_bps: float | None = None
    drop_at_s: float | None = None
    rate_low_bps: float | None = None  # the sustained rate's 95% interval
    rate_high_bps: float | None = None
    precise: bool = False  # the interval is within +-PRECISION of the sustained rate
    steady_from_s: float | None = None  # where the sustained part begins

    @property
    def precision(self) -> float | None:
        """The interval's half-width over the sustained rate (None: no interval)."""
        if self.rate_low_bps is None or self.rate_high_bps is None or not self.sustained_bps:
            return None
        return (self.rate_high_bps - self.rate_low_bps) / 2 / self.sustained_bps


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The lower and upper quartiles (linear interpolation between order statistics)."""
    s = sorted(values)

    def q(p: float) -> float:
        x = p * (len(s) - 1)
        i = int(x)
        return s[i] if i + 1 >= len(s) else s[i] + (s[i + 1] - s[i]) * (x - i)

    return q(0.25), q(0.75)


def _rate(counts: Sequence[float], seconds: Sequence[float]) -> float:
    total = sum(seconds)
    return sum(counts) / total if total > 0 else 0.0


def blocks(counts: Sequence[float], seconds: Sequence[float]) -> list[float]:
    """The rates of consecutive windows merged into blocks of at least BLOCK_S (a short
    last block joins the one before it)."""
    out: list[tuple[float, float]] = []
    c_acc = s_acc = 0.0
    for c, s in zip(counts, seconds, strict=True):
        c_acc += c
        s_acc += s
        if s_acc >= BLOCK_S - 1e-9:
            out.append((c_acc, s_acc))
            c_acc = s_acc = 0.0
    if s_acc > 0:
        if out:
            c0, s0 = out.pop()
            out.append((c0 + c_acc, s0 + s_acc))
        else:
            out.append((c_acc, s_acc))
    return [c / s for c, s in out]


def interval(counts: Sequence[float], seconds: Sequence[float]) -> tuple[float, float] | None:
    """A 95% confidence interval of the rate of these windows, from their blocks' rates
    (None with fewer than 3 blocks)."""
    rates = blocks(counts, seconds)
    m = len(rates)
    if m < 3:
        return None
    rate = _rate(counts, seconds)
    mean = sum(rates) / m
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / (m - 1))
    t = _T975[m - 2] if m - 1 <= len(_T975) else 2.0
    half = t * sd / math.sqrt(m)
    return max(0.0, rate - half), rate + half


def _is_flat(counts: Sequence[float], seconds: Sequence[float]) -> bool:
    rates = blocks(counts, seconds)
    if len(rates) < 2:
        return False
    low, high = _quartiles(rates)
    return low > 0 and high <= FLAT_SPREAD * low


def steady_start(rates: Sequence[float]) -> int:
    """The first window of the steady part: after the first window, the first one at
    least RAMP_FRACTION of the median window from there on (slow start is left out). A
    ramp is never more than half the windows: a transfer still rising at its middle is
    all ramp, and its second half is the best there is."""
    n = len(rates)
    for i in range(1, max(1, n // 2)):
        if rates[i] >= RAMP_FRACTION * _median(rates[i:]):
            return i
    return max(1, n // 2)


def _best_split(logs: Sequence[float]) -> int:
    """The single change point of ``logs`` (least squared error about each side's mean),
    in O(n) from prefix sums."""
    n = len(logs)
    s1 = [0.0] * (n + 1)
    s2 = [0.0] * (n + 1)
    for i, v in enumerate(logs):
        s1[i + 1] = s1[i] + v
        s2[i + 1] = s2[i] + v * v

    def sse(a: int, b: int) -> float:
        total = s1[b] - s1[a]
        return (s2[b] - s2[a]) - total * total / (b - a)

    best_k, best_cost = 0, math.inf
    for k in range(1, n):
        cost = sse(0, k) + sse(k, n)
        if cost < best_cost - 1e-12:
            best_k, best_cost = k, cost
    return best_k


def _drop_at(counts: Sequence[float], seconds: Sequence[float], rates: Sequence[float]) -> int:
    """The window the rate dropped at, when the drop has a policer's signature (the
    module's rules 1-5), else 0."""
    n = len(rates)
    k = _best_split([math.log(max(r, 1.0)) for r in rates])
    # back to the last fast window: with a few segments per window the windows after a
    # drop alternate between some and none, and the log split can land a window late
    while k > 1 and rates[k - 1] * DROP_RATIO < _rate(counts[k - 1 :], seconds[k - 1 :]):
        k -= 1
    if not k or n - k < MIN_AFTER_WINDOWS or sum(seconds[k:]) < MIN_AFTER_S - 1e-9:
        return 0
    if sum(counts[:k]) < MIN_BURST_BYTES:
        return 0
    first, then = _rate(counts[:k], seconds[:k]), _rate(counts[k:], seconds[k:])
    after_median = _median(rates[k:])
    if then > DROP_RATIO * first or after_median > DROP_RATIO * _median(rates[:k]):
        return 0
    if rates[k - 1] * DROP_RATIO < max(then, after_median):
        return 0
    if not _is_flat(counts[k:], seconds[k:]):
        return 0
    before = rates[1:k] if k >= 3 else rates[:k]  # past the first window when there are more
    low, high = _quartiles(before)
    if low * DROP_RATIO < _quartiles(blocks(counts[k:], seconds[k:]))[1]:
        return 0
    if k >= 3 and high > FLAT_SPREAD * low:  # a bucket empties at the line's speed
        return 0
    return k


def split(counts: Sequence[float], seconds: Sequence[float]) -> Split:
    """The figures of a transfer from its windows: ``counts[i]`` bytes arrived in window
    i, which lasted ``seconds[i]``."""
    if len(counts) != len(seconds):
        raise ValueError("counts and seconds: one of each per window")
    n = len(counts)
    if n < 2 or any(s <= 0 for s in seconds):
        return Split()
    rates = [c / s for c, s in zip(counts, seconds, strict=True)]
    k = _drop_at(counts, seconds, rates)
    if k:
        first = _rate(counts[:k], seconds[:k])
        start = k
    else:
        half = n // 2
        first = _rate(counts[:half], seconds[:half])
        start = steady_start(rates)
    part_c, part_s = counts[start:], seconds[start:]
    sustained = _rate(part_c, part_s)
    ci = interval(part_c, part_s)
    precise = (
        ci is not None
        and sustained > 0
        and (ci[1] - ci[0]) / 2 <= PRECISION * sustained
        and len(part_c) >= MIN_PRECISE_WINDOWS
        and sum(part_s) >= MIN_PRECISE_S - 1e-9
        and sum(part_c) >= MIN_PRECISE_BYTES
    )
    return Split(
        first_part_bps=first,
        sustained_bps=sustained,
        drop_at_s=sum(seconds[:k]) if k else None,
        rate_low_bps=None if ci is None else ci[0],
        rate_high_bps=None if ci is None else ci[1],
        precise=precise,
        steady_from_s=sum(seconds[:start]),
    )
