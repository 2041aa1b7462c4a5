"""The statistics against independently known values: closed forms of Student's t for
small degrees of freedom, the binomial identity of the incomplete beta, hypergeometric
tails by hand, the Mann-Whitney null distribution by enumeration, and the normal
approximation worked through by hand (no scipy)."""

from __future__ import annotations

import itertools
import math

import pytest

from coordinator.analysis.stats import (
    betainc,
    fisher_greater,
    mann_whitney_less,
    median,
    normal_cdf,
    paired_t_less,
    student_t_cdf,
)

# ---------------------------------------------------------------- median and normal


def test_median_of_nothing_says_so() -> None:
    with pytest.raises(ValueError, match=r"^median: needs at least one value$"):
        median([])


def test_median_of_one_and_of_an_even_count() -> None:
    assert median([7.5]) == 7.5
    assert median([10, 1]) == 5.5
    assert median([9, 1, 5, 3, 7, 11]) == 6.0  # mean of 5 and 7


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        (0.0, 0.5),
        (1.959963984540054, 0.975),  # the two-sided 95% quantile
        (-1.6448536269514722, 0.05),  # the one-sided 5% quantile
        (-3.090232306167813, 0.001),
    ],
)
def test_normal_cdf_matches_the_quantile_tables(z: float, expected: float) -> None:
    assert normal_cdf(z) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- Mann-Whitney


def _enumerated_tail(x: list[float], y: list[float]) -> float:
    """P(U <= u_observed) under H0, by enumerating every way of choosing which ranks
    belong to x (no ties): an independent route to the exact null distribution."""
    n1, n2 = len(x), len(y)
    observed = sum(1 for a in x for b in y if a > b)
    count = 0
    for ranks in itertools.combinations(range(n1 + n2), n1):
        chosen = set(ranks)
        u = sum(sum(1 for r in range(rank) if r not in chosen) for rank in ranks)
        if u <= observed:
            count += 1
    return count / math.comb(n1 + n2, n1)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1.0, 4.0, 6.0], [2.0, 3.0, 5.0, 7.0, 8.0]),  # 3 vs 5, U = 5
        ([2.0, 3.0, 5.0, 7.0, 8.0], [1.0, 4.0, 6.0]),  # 5 vs 3, U = 10
        ([3.0, 8.0], [1.0, 2.0, 4.0, 5.0, 6.0, 7.0]),  # 2 vs 6, U = 8
        ([0.5, 2.5, 3.5, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0]),  # 4 vs 5, U = 10
    ],
)
def test_mann_whitney_exact_p_equals_the_enumerated_null_distribution(
    x: list[float], y: list[float]
) -> None:
    assert mann_whitney_less(x, y) == pytest.approx(_enumerated_tail(x, y), rel=1e-12)


def test_mann_whitney_four_by_four_table() -> None:
    """The textbook null distribution of U for 4 vs 4 (70 arrangements): counts of
    U = 0..16 are 1 1 2 3 5 5 7 7 8 7 7 5 5 3 2 1 1."""
    counts = [1, 1, 2, 3, 5, 5, 7, 7, 8, 7, 7, 5, 5, 3, 2, 1, 1]
    y = [10.0, 20.0, 30.0, 40.0]
    for u in range(17):
        # x_i beats k_i of the y's (k_i = 0..4 summing to u); the offsets keep x distinct
        x = [5.0 + 10.0 * min(max(u - 4 * i, 0), 4) + 0.1 * i for i in range(4)]
        assert sum(1 for a in x for b in y if a > b) == u
        assert mann_whitney_less(x, y) == pytest.approx(sum(counts[: u + 1]) / 70, rel=1e-12)


def test_mann_whitney_single_value_samples_are_tested_not_skipped() -> None:
    # one x below three y's: P(U = 0) = 1/C(4, 1)
    assert mann_whitney_less([0.0], [1.0, 2.0, 3.0]) == pytest.approx(0.25)
    # three x's below one y: P(U = 0) = 1/C(4, 3)
    assert mann_whitney_less([1.0, 2.0, 3.0], [5.0]) == pytest.approx(0.25)


def test_mann_whitney_is_exact_up_to_25_values_per_sample() -> None:
    # full separation: P(U = 0) = 1/C(27, 2) = 1/351, however the 27 values are split
    assert mann_whitney_less([float(i) for i in range(25)], [100.0, 101.0]) == pytest.approx(
        1 / 351, rel=1e-12
    )
    assert mann_whitney_less([0.0, 1.0], [float(i) for i in range(10, 35)]) == pytest.approx(
        1 / 351, rel=1e-12
    )


def test_mann_whitney_uses_the_normal_approximation_above_25() -> None:
    # 26 vs 2, full separation: U = 0, mean 26, variance 26*2/12*29 = 125.67,
    # z = (0 - 26 + 0.5)/11.2102 = -2.27473, Phi(z) = 0.011461 (exact would be 1/378)
    assert mann_whitney_less([float(i) for i in range(26)], [100.0, 101.0]) == pytest.approx(
        0.011461022232829174, rel=1e-9
    )
    assert mann_whitney_less([0.0, 1.0], [float(i) for i in range(10, 36)]) == pytest.approx(
        0.011461022232829174, rel=1e-9
    )


def test_mann_whitney_normal_approximation_worked_by_hand() -> None:
    # x = 0..29, y = 10.5..37.5 (28 values): U = 1 + 2 + ... + 19 = 190;
    # mean 30*28/2 = 420, variance 30*28/12*59 = 4130 (no ties),
    # z = (190 - 420 + 0.5)/sqrt(4130) = -3.571146, Phi(z) = 1.777110e-4
    x = [float(i) for i in range(30)]
    y = [i + 10.5 for i in range(28)]
    assert mann_whitney_less(x, y) == pytest.approx(1.777110219538103e-4, rel=1e-9)


def test_mann_whitney_with_ties_uses_mid_ranks_and_the_tie_correction() -> None:
    # x = 1 1 2 2, y = 2 3 3 3: mid ranks 1.5 1.5 | 4 4 4 | 7 7 7, rank sum of x = 11,
    # U = 11 - 10 = 1; ties 2, 3, 3 give sum(t^3 - t) = 54; variance
    # 16/12 * (9 - 54/56) = 10.714286; z = (1 - 8 + 0.5)/3.273268 = -1.985783
    assert mann_whitney_less([1.0, 1.0, 2.0, 2.0], [2.0, 3.0, 3.0, 3.0]) == pytest.approx(
        0.02352872314108644, rel=1e-9
    )
    # x = 2 2 2 5 5, y = 1 2 5 5 5 7 7: mid ranks 1 | 3.5 x4 | 8 x5 | 11.5 x2, rank sum
    # of x = 26.5, U = 11.5; ties 4, 5, 2 give 186; variance 35/12 * (13 - 186/132)
    # = 33.806818; z = (11.5 - 17.5 + 0.5)/5.814363 = -0.945930
    assert mann_whitney_less([2.0, 2.0, 2.0, 5.0, 5.0], [1.0, 2.0, 5.0, 5.0, 5.0, 7.0, 7.0]) == (
        pytest.approx(0.17209128922127914, rel=1e-9)
    )


def test_mann_whitney_smallest_tie_worked_by_hand() -> None:
    # x = 1, y = 1 2: mid ranks 1.5 1.5 3, U = 1.5 - 1 = 0.5, mean 1, variance
    # 2/12 * (4 - 6/6) = 0.5, z = (0.5 - 1 + 0.5)/0.707 = 0: p = 1/2
    assert mann_whitney_less([1.0], [1.0, 2.0]) == pytest.approx(0.5)


def test_mann_whitney_without_evidence_is_one() -> None:
    assert mann_whitney_less([], []) == 1.0
    assert mann_whitney_less([1.0, 2.0], []) == 1.0
    assert mann_whitney_less([3.0] * 30, [3.0] * 30) == 1.0  # all equal, approximation branch


# ---------------------------------------------------------------- incomplete beta and t


def _binomial_upper_tail(a: int, b: int, x: float) -> float:
    """For integers a, b: I_x(a, b) = P(Binomial(a + b - 1, x) >= a)."""
    n = a + b - 1
    return math.fsum(math.comb(n, j) * x**j * (1.0 - x) ** (n - j) for j in range(a, n + 1))


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [
        (1, 1, 0.3),
        (2, 3, 0.4),
        (3, 2, 0.9),  # above (a + 1)/(a + b + 2): the symmetric branch
        (5, 5, 0.5),
        (1, 4, 0.2),
        (7, 2, 0.95),
        (4, 9, 0.1),
        (10, 3, 0.6),
    ],
)
def test_betainc_equals_the_binomial_tail(a: int, b: int, x: float) -> None:
    assert betainc(a, b, x) == pytest.approx(_binomial_upper_tail(a, b, x), abs=1e-12)


def test_betainc_at_the_ends_and_outside() -> None:
    assert betainc(2.0, 3.0, 0.0) == 0.0
    assert betainc(2.0, 3.0, 1.0) == 1.0
    with pytest.raises(ValueError, match=r"^betainc: x must be in \[0, 1\], got -0.1$"):
        betainc(2.0, 3.0, -0.1)
    with pytest.raises(ValueError, match=r"^betainc: x must be in \[0, 1\], got 1.5$"):
        betainc(2.0, 3.0, 1.5)


def _t1(t: float) -> float:  # Cauchy
    return 0.5 + math.atan(t) / math.pi


def _t2(t: float) -> float:
    return 0.5 + t / (2.0 * math.sqrt(2.0 + t * t))


def _t3(t: float) -> float:
    s = t / math.sqrt(3.0)
    return 0.5 + (s / (1.0 + s * s) + math.atan(s)) / math.pi


@pytest.mark.parametrize("t", [-12.0, -3.0, -1.0, -0.25, 0.0, 0.4, 1.5, 4.0, 30.0])
def test_student_t_cdf_matches_the_closed_forms_for_1_2_3_degrees_of_freedom(t: float) -> None:
    assert student_t_cdf(t, 1) == pytest.approx(_t1(t), abs=1e-11)
    assert student_t_cdf(t, 2) == pytest.approx(_t2(t), abs=1e-11)
    assert student_t_cdf(t, 3) == pytest.approx(_t3(t), abs=1e-11)


def _t_even(t: float, df: int) -> float:
    """Student's t CDF for even df, exactly: 1/2 + t/(2 sqrt(df + t^2)) times
    sum_{k < df/2} C(2k, k)/4^k (df/(df + t^2))^k."""
    q = df / (df + t * t)
    series = math.fsum(math.comb(2 * k, k) / 4**k * q**k for k in range(df // 2))
    return 0.5 + t / (2.0 * math.sqrt(df + t * t)) * series


@pytest.mark.parametrize("df", [4, 40, 100, 200])
@pytest.mark.parametrize("t", [-3.0, -1.0, -0.1, 0.1, 0.5, 2.0])
def test_student_t_cdf_stays_exact_for_many_degrees_of_freedom(t: float, df: int) -> None:
    """Paired tests over a 7-day replay window have hundreds of pairs."""
    assert student_t_cdf(t, df) == pytest.approx(_t_even(t, df), abs=1e-12)


def test_student_t_cdf_with_half_integer_degrees_of_freedom_is_symmetric() -> None:
    for t in (0.3, 1.0, 2.5):
        assert student_t_cdf(t, 2.5) + student_t_cdf(-t, 2.5) == pytest.approx(1.0, abs=1e-12)
    assert student_t_cdf(2.0, 0.5) < student_t_cdf(2.0, 1)  # heavier tails than Cauchy


def test_student_t_cdf_at_infinity_and_with_bad_degrees_of_freedom() -> None:
    assert student_t_cdf(math.inf, 3) == 1.0
    assert student_t_cdf(-math.inf, 3) == 0.0
    with pytest.raises(ValueError, match=r"^student_t_cdf: df must be > 0, got 0$"):
        student_t_cdf(1.0, 0)
    with pytest.raises(ValueError, match=r"^student_t_cdf: df must be > 0, got -2$"):
        student_t_cdf(1.0, -2)


# ---------------------------------------------------------------- paired t


def test_paired_t_with_two_pairs_is_a_cauchy_tail() -> None:
    # d = -1, -3: mean -2, sd sqrt(2), t = -2/(sqrt(2)/sqrt(2)) = -2 on 1 df
    assert paired_t_less([-1.0, -3.0]) == pytest.approx(_t1(-2.0), rel=1e-12)


def test_paired_t_with_three_pairs_matches_the_two_df_closed_form() -> None:
    # d = -1, -2, -3: mean -2, sd 1, t = -2*sqrt(3) on 2 df: p = 0.0370900
    assert paired_t_less([-1.0, -2.0, -3.0]) == pytest.approx(_t2(-2.0 * math.sqrt(3.0)), rel=1e-12)
    # the opposite sign is evidence the other way: p = 1 - 0.0370900
    assert paired_t_less([1.0, 2.0, 3.0]) == pytest.approx(1.0 - _t2(-2.0 * math.sqrt(3.0)))


def test_paired_t_without_spread() -> None:
    assert paired_t_less([0.0, 0.0, 0.0]) == 1.0  # no difference at all: no evidence
    assert paired_t_less([0.5, 0.5]) == 1.0  # always faster: no evidence
    assert paired_t_less([-0.5, -0.5]) == 0.0  # always slower by the same amount
    assert paired_t_less([]) == 1.0


# ---------------------------------------------------------------- Fisher


@pytest.mark.parametrize(
    ("args", "name", "value"),
    [
        ((-1, 4, 0, 4), "failed_a", -1),
        ((0, -4, 0, 4), "total_a", -4),
        ((0, 4, -2, 4), "failed_b", -2),
        ((0, 4, 0, -3), "total_b", -3),
    ],
)
def test_fisher_names_the_negative_count(
    args: tuple[int, int, int, int], name: str, value: int
) -> None:
    with pytest.raises(ValueError, match=rf"^fisher_greater: {name} must be >= 0, got {value}$"):
        fisher_greater(*args)


def test_fisher_failures_cannot_exceed_totals_in_either_group() -> None:
    for args in ((5, 4, 0, 4), (0, 4, 5, 4)):
        with pytest.raises(ValueError, match=r"^fisher_greater: failures cannot exceed totals$"):
            fisher_greater(*args)


def test_fisher_accepts_zero_counts_and_full_failure() -> None:
    assert fisher_greater(0, 4, 0, 4) == 1.0  # nothing failed anywhere
    assert fisher_greater(0, 0, 3, 5) == 1.0  # an empty group is no evidence
    assert fisher_greater(3, 5, 0, 0) == 1.0
    assert fisher_greater(4, 4, 4, 4) == 1.0  # both always fail


def test_fisher_hypergeometric_tails_by_hand() -> None:
    # 1 of 1 failed vs 0 of 5: the single failure falls in A with probability 1/6
    assert fisher_greater(1, 1, 0, 5) == pytest.approx(1 / 6)
    # 4 of 4 vs 0 of 1: all 4 failures in A: C(4,4)C(1,0)/C(5,4) = 1/5
    assert fisher_greater(4, 4, 0, 1) == pytest.approx(1 / 5)
    # 3 of 4 vs 5 of 6 (K = 8 > |A|): (C(8,3)C(2,1) + C(8,4)C(2,0))/C(10,4) = 182/210
    assert fisher_greater(3, 4, 5, 6) == pytest.approx(182 / 210)
    # 2 of 6 vs 0 of 4 (K = 2 < |A|): C(2,2)C(8,4)/C(10,6) = 70/210
    assert fisher_greater(2, 6, 0, 4) == pytest.approx(1 / 3)
