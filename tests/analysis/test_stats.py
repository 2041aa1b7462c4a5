from __future__ import annotations

import math
import random

import pytest

from coordinator.analysis.stats import (
    betainc,
    fisher_greater,
    mann_whitney_less,
    median,
    paired_t_less,
    student_t_cdf,
)


def test_median_odd_even_and_empty() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError, match="median"):
        median([])


def test_mann_whitney_exact_full_separation() -> None:
    # P(U = 0) = 1 / C(8, 4) = 1/70 for 4 vs 4; 1 / C(12, 6) = 1/924 for 6 vs 6
    assert mann_whitney_less([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(1 / 70)
    assert mann_whitney_less(list(range(6)), list(range(10, 16))) == pytest.approx(1 / 924)
    # the other direction is not evidence for "x smaller"
    assert mann_whitney_less([5, 6, 7, 8], [1, 2, 3, 4]) == pytest.approx(1.0)


def test_mann_whitney_exact_one_overlap() -> None:
    # x = {1, 2, 3, 6}, y = {4, 5, 7, 8}: U (pairs x > y) = 2; P(U <= 2) = 4/70
    # (rank-sum tables: counts of U = 0, 1, 2 are 1, 1, 2)
    assert mann_whitney_less([1, 2, 3, 6], [4, 5, 7, 8]) == pytest.approx(4 / 70)


def test_mann_whitney_normal_approximation_close_to_exact() -> None:
    rng = random.Random(7)
    x = [rng.gauss(0.0, 1.0) for _ in range(20)]
    y = [rng.gauss(0.8, 1.0) for _ in range(20)]
    exact = mann_whitney_less(x, y)
    # 30 values each take the approximation branch; compare with the exact one on a subset
    big = mann_whitney_less(
        x + [rng.gauss(0, 1) for _ in range(10)], y + [rng.gauss(0.8, 1) for _ in range(10)]
    )
    assert 0.0 < exact < 0.05
    assert 0.0 < big < 0.05
    ties = mann_whitney_less([1.0, 1.0, 2.0, 2.0], [2.0, 3.0, 3.0, 3.0])
    assert 0.0 < ties < 0.1
    assert mann_whitney_less([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert mann_whitney_less([], [1.0]) == 1.0


def test_fisher_greater_known_values() -> None:
    assert fisher_greater(4, 4, 0, 4) == pytest.approx(1 / 70)
    assert fisher_greater(0, 4, 4, 4) == pytest.approx(1.0)
    # hypergeometric tail by hand: N=10, K=5 failures, group of 5 with 4 failures
    tail = (math.comb(5, 4) * math.comb(5, 1) + math.comb(5, 5)) / math.comb(10, 5)
    assert fisher_greater(4, 5, 1, 5) == pytest.approx(tail)
    with pytest.raises(ValueError, match="exceed"):
        fisher_greater(5, 4, 0, 4)


def test_student_t_cdf_matches_tables() -> None:
    assert student_t_cdf(0.0, 10) == pytest.approx(0.5)
    assert student_t_cdf(-1.812, 10) == pytest.approx(0.05, abs=2e-4)  # t_0.95,10
    assert student_t_cdf(2.228, 10) == pytest.approx(0.975, abs=2e-4)  # t_0.975,10
    assert student_t_cdf(-6.314, 1) == pytest.approx(0.05, abs=2e-4)  # t_0.95,1
    assert betainc(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-4)


def test_paired_t_less() -> None:
    assert paired_t_less([-1.0]) == 1.0  # one pair is no test
    assert paired_t_less([-2.0, -2.0, -2.0]) == 0.0  # identical, negative: certain
    assert paired_t_less([0.1, -0.1, 0.05, -0.05]) > 0.3
    assert paired_t_less([-5.2, -5.3, -5.1, -5.25]) < 1e-4
