"""The split of a transfer's windows into a first part and a sustained rate
(agent/probes/rates.py)."""

from __future__ import annotations

import random

import pytest

from agent.probes.rates import MIN_AFTER_WINDOWS, split


def _windows(rates: list[float], width: float = 0.25) -> tuple[list[float], list[float]]:
    return [r * width for r in rates], [width] * len(rates)


def test_a_burst_then_a_policer_rate() -> None:
    s = split(*_windows([2.5e6, 2.5e6, 1.2e5, 1.3e5, 1.25e5, 1.2e5, 1.3e5, 1.25e5]))
    assert s.drop_at_s == pytest.approx(0.5)
    assert s.first_part_bps == pytest.approx(2.5e6)
    assert s.sustained_bps == pytest.approx(1.25e5, rel=0.05)


def test_a_steady_transfer_has_no_drop_and_its_sustained_rate_is_its_steady_part() -> None:
    rng = random.Random(7)
    rates = [1e6 * rng.uniform(0.7, 1.3) for _ in range(16)]
    s = split(*_windows(rates))
    assert s.drop_at_s is None
    assert s.first_part_bps == pytest.approx(sum(rates[:8]) / 8)
    # every window after the first (no slow start here to leave out), not the second half
    assert s.sustained_bps == pytest.approx(sum(rates[1:]) / 15)


def test_slow_start_is_not_a_drop() -> None:
    assert split(*_windows([1e4, 1e5, 1e6, 1e6, 1e6, 1e6])).drop_at_s is None


def test_a_stall_near_the_end_is_not_a_drop() -> None:
    rates = [1e6] * 10 + [0.0, 1e6]
    assert split(*_windows(rates)).drop_at_s is None


def test_a_drop_needs_enough_windows_after_it() -> None:
    few = [1e6] * 10 + [1e4] * (MIN_AFTER_WINDOWS - 1)
    enough = [1e6] * 10 + [1e4] * MIN_AFTER_WINDOWS
    assert split(*_windows(few)).drop_at_s is None
    assert split(*_windows(enough)).drop_at_s == pytest.approx(2.5)


def test_a_moderate_dip_is_not_a_drop() -> None:
    # 30 % slower after the middle: not the halving a policer makes
    assert split(*_windows([1e6] * 8 + [7e5] * 8)).drop_at_s is None


def test_uneven_windows_are_weighted_by_their_length() -> None:
    counts = [1e6, 1e6, 1e4, 1e4, 1e4, 2e4]
    seconds = [0.5, 0.5, 0.5, 0.5, 0.5, 1.0]
    s = split(counts, seconds)
    assert s.drop_at_s == pytest.approx(1.0)
    assert s.sustained_bps == pytest.approx(5e4 / 2.5)


def test_too_few_windows_gives_nothing() -> None:
    assert split([1e6], [0.25]).sustained_bps is None
    assert split([], []).first_part_bps is None
    with pytest.raises(ValueError, match="counts and seconds"):
        split([1.0, 2.0], [0.25])
