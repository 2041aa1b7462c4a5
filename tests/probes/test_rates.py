"""The rules of agent/probes/rates.py on synthetic window series: a drop needs a policer's
signature (a burst of MIN_BURST_BYTES, lasting, much slower, flat after, not in slow
start); without one the sustained rate is the steady part; the rate's precision."""

from __future__ import annotations

import math
import random

import pytest

from agent.probes import rates
from agent.probes.rates import MIN_BURST_BYTES, split

W = 0.25  # the default window
MSS = 1448


def _windows(rates_bps: list[float], width: float = W) -> tuple[list[float], list[float]]:
    return [r * width for r in rates_bps], [width] * len(rates_bps)


def _packets(rate: float, seconds: float, *, start: float = 0.0, width: float = W) -> list[float]:
    """Windows of whole segments arriving at ``rate`` (what a shaper's receiver sees: a
    0.25 s window at 150 kbit/s holds 3 or 4 segments, never 3.2)."""
    out = []
    n = round(seconds / width)
    for i in range(n):
        a = math.floor((start + rate * i * width) / MSS)
        b = math.floor((start + rate * (i + 1) * width) / MSS)
        out.append(float((b - a) * MSS))
    return out


def test_slow_start_then_a_steady_shaper_is_no_drop_and_reads_the_rate() -> None:
    """150 kbit/s (18,000 B/s of payload), 10 s: slow start's first windows, then whole
    segments at the rate. The sustained rate is the steady part's, not the second half's."""
    rate = 18_000.0
    counts = [2 * MSS, 4 * MSS, 8 * MSS, *_packets(rate, 9.25)]
    s = split(counts, [W] * len(counts))
    assert s.drop_at_s is None
    assert s.sustained_bps == pytest.approx(rate, rel=0.10)
    assert s.rate_low_bps is not None and s.rate_high_bps is not None
    assert s.rate_low_bps <= rate <= s.rate_high_bps


def test_the_issues_false_drops_are_not_drops() -> None:
    """The stored results of the issue: a fast start of 2.9 to 69.5 kB, then a slower
    or stalled flow. None carried a policer's burst."""
    series = [
        [28_900.0, 28_900.0, 5_800.0, 0, 0, 0, 0, 5_800, 0, 0, 0, 5_800, 0, 0, 0, 5_800],
        [11_584.0, 0, 0, 0, 7_240, 7_240, 7_240, 7_240, 7_240, 7_240, 7_240, 7_240],
        [80_000.0, 80_000, 8_840, 8_840, 8_840, 8_840, 8_840, 8_840, 8_840, 8_840],
    ]
    for r in series:
        counts, seconds = _windows([float(x) for x in r])
        assert sum(counts[:2]) < MIN_BURST_BYTES
        s = split(counts, seconds)
        assert s.drop_at_s is None, r
        # the sustained rate is the whole steady part after slow start: not 0
        assert s.sustained_bps is not None and s.sustained_bps > 0, r
    # the first (a flow reduced to retransmission timeouts, the upload that read 0 B/s):
    # its rate is what got through, and it says it is not known to 10%
    collapsed = split(*_windows([float(x) for x in series[0]]))
    assert collapsed.sustained_bps == pytest.approx(3_480, rel=0.05)
    assert not collapsed.precise and collapsed.precision is not None and collapsed.precision > 1


def test_a_policers_burst_then_its_flat_rate_is_a_drop() -> None:
    """1 MB at 4 MB/s, then 1 Mbit/s (125 kB/s) with TCP's +-20% under the policer."""
    rng = random.Random(3)
    rate = 125_000.0
    after = [rate * rng.uniform(0.8, 1.2) for _ in range(24)]
    s = split(*_windows([4e6] * 4 + after))
    assert s.drop_at_s == pytest.approx(1.0)
    assert s.first_part_bps == pytest.approx(4e6)
    assert s.sustained_bps == pytest.approx(rate, rel=0.10)
    assert s.rate_low_bps is not None and s.rate_high_bps is not None
    assert s.rate_low_bps <= rate <= s.rate_high_bps
    assert s.precise


def test_a_burst_smaller_than_a_policers_is_no_drop() -> None:
    fast = MIN_BURST_BYTES / 2 / W  # half the constant in one window
    s = split(*_windows([fast, *[20_000.0] * 20]))
    assert s.drop_at_s is None
    assert s.sustained_bps == pytest.approx(20_000.0)


def test_a_drop_must_last_a_second() -> None:
    short = [1e6] * 10 + [1e4] * 3  # 0.75 s after
    enough = [1e6] * 10 + [1e4] * 4  # 1.0 s after
    assert split(*_windows(short)).drop_at_s is None
    assert split(*_windows(enough)).drop_at_s == pytest.approx(2.5)


def test_a_jumpy_congested_link_is_no_drop() -> None:
    """3 Mbit/s shared with cross traffic: windows between 8 and 349 kB/s, and a slow
    last second (the issue's "dropped at 3.75-4.0 s")."""
    rng = random.Random(11)
    for _ in range(20):
        r = [math.exp(rng.uniform(math.log(8e3), math.log(3.49e5))) for _ in range(16)]
        r += [math.exp(rng.uniform(math.log(8e3), math.log(4e4))) for _ in range(4)]
        s = split(*_windows(r))
        assert s.drop_at_s is None, r
        assert not s.precise, r


def test_a_drop_into_a_jumpy_rate_is_no_drop() -> None:
    """Fast, then a rate that swings by 10x from one half second to the next: no policer
    holds a flow like that."""
    after = [2e4, 2e4, 2e5, 2e5, 1e4, 1e4, 2.5e5, 2.5e5, 1.5e4, 1.5e4, 3e5, 3e5]
    assert split(*_windows([5e6] * 4 + after)).drop_at_s is None


def test_a_split_in_slow_start_is_no_drop() -> None:
    assert split(*_windows([1e4, 1e5, 1e6, 1e6, 1e6, 1e6, 1e6, 1e6])).drop_at_s is None


def test_short_transfers() -> None:
    assert split([1e6], [W]) == rates.Split()
    assert split([], []).sustained_bps is None
    three = split(*_windows([5e5, 1e6, 1e6]))
    assert three.drop_at_s is None and three.sustained_bps == pytest.approx(1e6)
    assert not three.precise
    with pytest.raises(ValueError, match="counts and seconds"):
        split([1.0, 2.0], [W])


def test_precision_needs_time_windows_and_a_steady_rate() -> None:
    rng = random.Random(5)
    steady = [1e6 * rng.uniform(0.9, 1.1) for _ in range(12)]  # 3 s
    s = split(*_windows(steady))
    assert s.precise and s.precision is not None and s.precision <= rates.PRECISION
    # 1.5 s: too short, however steady
    assert not split(*_windows(steady[:6])).precise
    noisy = [1e6 * rng.choice((0.2, 1.8)) for _ in range(12)]
    n = split(*_windows(noisy))
    assert not n.precise and n.precision is not None and n.precision > rates.PRECISION


def test_uneven_windows_are_weighted_by_their_length() -> None:
    counts = [1e6, 1e6, 1e4, 1e4, 1e4, 2e4]
    seconds = [0.5, 0.5, 0.5, 0.5, 0.5, 1.0]
    s = split(counts, seconds)
    assert s.drop_at_s == pytest.approx(1.0)
    assert s.sustained_bps == pytest.approx(5e4 / 2.5)
