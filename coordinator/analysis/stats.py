"""The small statistics the verdicts need, without scipy or numpy: medians, the one-sided
paired t-test (on log ratios), the one-sided Mann-Whitney U test and the one-sided Fisher
exact test.

All p-values are one-sided and conservative where a choice exists (continuity
correction in the normal approximation).

Total on finite input: no function here raises or returns NaN for finite numbers, however
large or small (an agent may report 1e308 against 1e-10); where the arithmetic would
overflow, the answer is the one that claims nothing (a p-value of 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

# Exact Mann-Whitney p-values are used when both samples are at most this large and
# there are no ties; otherwise the normal approximation with tie correction.
EXACT_MAX_N = 25


def median(values: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    n = len(values)
    if n == 0:
        raise ValueError("median: needs at least one value")
    ordered = sorted(values)
    mid = n // 2
    if n % 2:
        return float(ordered[mid])
    a, b = ordered[mid - 1], ordered[mid]
    # neither overflow (1e308 + 1e308) nor underflow (5e-324 / 2 is 0): a + (b - a) / 2
    # when both have one sign (b - a cannot overflow then), the plain mean otherwise
    return a + (b - a) / 2.0 if (a >= 0) == (b >= 0) else (a + b) / 2.0


def median_interval(values: Sequence[float]) -> tuple[float, float]:
    """A distribution-free 95% interval for the median: the order statistics k and n-1-k
    with k = floor((n - 1.96 sqrt(n)) / 2), the normal approximation to the binomial
    (Conover); the smallest and largest value below 6 samples, where no narrower order
    statistic holds 95%. Raises ValueError on no values."""
    n = len(values)
    if n == 0:
        raise ValueError("median_interval: needs at least one value")
    ordered = sorted(values)
    # the formula gives a 1-based rank; as a 0-based index it is one less (else the
    # interval covers 92-94%, not 95%)
    k = max(0, math.floor((n - 1.96 * math.sqrt(n)) / 2) - 1) if n >= 6 else 0
    return float(ordered[k]), float(ordered[n - 1 - k])


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@lru_cache(maxsize=512)
def _u_cumulative(n1: int, n2: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0 .. n1*n2 under H0 (no ties), U = #pairs with x > y.

    Counts follow c(i, j, u) = c(i-1, j, u-j) + c(i, j-1, u): the largest of the
    i + j values is either an x (beating all j y's) or a y.
    """
    # prev[j] holds the count list for (i-1, j); cur[j] for (i, j).
    prev: list[list[int]] = [[1] for _ in range(n2 + 1)]  # i = 0: U = 0 only
    for i in range(1, n1 + 1):
        cur: list[list[int]] = [[1]]  # j = 0: U = 0 only
        for j in range(1, n2 + 1):
            size = i * j + 1
            counts = [0] * size
            left = prev[j]  # (i-1, j), shifted by j
            for u, c in enumerate(left):
                counts[u + j] += c
            down = cur[j - 1]  # (i, j-1)
            for u, c in enumerate(down):
                counts[u] += c
            cur.append(counts)
        prev = cur
    counts = prev[n2]
    total = math.comb(n1 + n2, n1)
    running = 0
    out: list[float] = []
    for c in counts:
        running += c
        out.append(running / total)
    return tuple(out)


def mann_whitney_less(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided p-value of the Mann-Whitney U test for H1: x tends to be smaller than y.

    Exact for small samples without ties, else the normal approximation with tie and
    continuity correction. Returns 1.0 when either sample is empty.
    """
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = sorted([(float(v), 0) for v in x] + [(float(v), 1) for v in y])
    n = n1 + n2
    rank_sum_x = 0.0
    tie_term = 0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mid_rank = (i + j) / 2.0 + 1.0
        t = j - i + 1
        if t > 1:
            tie_term += t * t * t - t
        for k in range(i, j + 1):
            if pooled[k][1] == 0:
                rank_sum_x += mid_rank
        i = j + 1
    u_x = rank_sum_x - n1 * (n1 + 1) / 2.0  # pairs with x > y (ties count 1/2)
    if tie_term == 0 and n1 <= EXACT_MAX_N and n2 <= EXACT_MAX_N:
        cumulative = _u_cumulative(n1, n2)
        return min(1.0, cumulative[round(u_x)])
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0.0:
        return 1.0  # every value equal: no evidence either way
    z = (u_x - mean + 0.5) / math.sqrt(variance)
    return min(1.0, normal_cdf(z))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc: x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"student_t_cdf: df must be > 0, got {df}")
    if math.isnan(t):
        return 0.5  # no evidence either way
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t < 0 else 1.0 - tail


def paired_t_less(differences: Sequence[float]) -> float:
    """One-sided p-value of the paired t-test for H1: the mean difference is below 0.

    Used on log(test / control) of the same agent's paired measurements, so the link
    noise they share cancels. Returns 1.0 with fewer than 2 pairs.
    """
    n = len(differences)
    if n < 2 or not all(math.isfinite(d) for d in differences):
        return 1.0
    try:
        mean = math.fsum(differences) / n
        variance = math.fsum((d - mean) ** 2 for d in differences) / (n - 1)
    except OverflowError:  # differences near the float limit: nothing to conclude
        return 1.0
    if not (math.isfinite(mean) and math.isfinite(variance)):
        return 1.0
    if variance <= 0.0:
        return 0.0 if mean < 0 else 1.0
    t = mean / math.sqrt(variance / n)
    return min(1.0, max(0.0, student_t_cdf(t, n - 1)))


def fisher_greater(failed_a: int, total_a: int, failed_b: int, total_b: int) -> float:
    """One-sided Fisher exact p-value for H1: the failure rate of A exceeds that of B."""
    for name, value in (
        ("failed_a", failed_a),
        ("total_a", total_a),
        ("failed_b", failed_b),
        ("total_b", total_b),
    ):
        if value < 0:
            raise ValueError(f"fisher_greater: {name} must be >= 0, got {value}")
    if failed_a > total_a or failed_b > total_b:
        raise ValueError("fisher_greater: failures cannot exceed totals")
    if total_a == 0 or total_b == 0:
        return 1.0
    n = total_a + total_b
    k = failed_a + failed_b
    denominator = math.comb(n, total_a)
    numerator = 0
    for a in range(failed_a, min(total_a, k) + 1):
        numerator += math.comb(k, a) * math.comb(n - k, total_a - a)
    return min(1.0, numerator / denominator)
