"""A/B test statistics and sticky assignment: hashing the test id and subject gives a
subject the same variant on every replica with no state; Welch's t-test for means, a
two-proportion z-test and Wilson intervals for success rates, standard library only."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_UNIT = NormalDist()
# metrics where a smaller value is better
LOWER_IS_BETTER = frozenset({"latency_ms", "cost"})


def bucket(test_id: str, subject: str) -> float:
    """A uniform number in [0, 1) fixed by test and subject."""
    digest = hashlib.sha256(f"{test_id}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(test_id: str, subject: str, variants: Sequence[tuple[int, float]]) -> int:
    """The version (from (version, weight) pairs) that `subject` sees in this test."""
    total = sum(weight for _, weight in variants)
    point = bucket(test_id, subject) * total
    for version, weight in variants:
        point -= weight
        if point < 0:
            return version
    return variants[-1][0]


# --- Student t distribution ---------------------------------------------------------

def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isinf(df):
        return 2 * (1 - _UNIT.cdf(abs(t)))
    return _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T <= t) = p (bisection on the distribution; p in (0.5, 1))."""
    target = 2 * (1 - p)  # the two-sided tail at that t
    low, high = 0.0, 1e3
    for _ in range(200):
        mid = (low + high) / 2
        if t_two_sided_p(mid, df) > target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# --- per-variant summaries and tests ----------------------------------------------

@dataclass(frozen=True)
class Sample:
    """Sufficient statistics of one variant's metric: count, sum, sum of squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def mean_interval(sample: Sample, confidence: float) -> tuple[float, float] | None:
    """t confidence interval of a mean; None below two observations."""
    if sample.n < 2:
        return None
    half = t_quantile(1 - (1 - confidence) / 2, sample.n - 1) * math.sqrt(
        sample.variance / sample.n)
    return (sample.mean - half, sample.mean + half)


def proportion_interval(sample: Sample, confidence: float) -> tuple[float, float] | None:
    """Wilson score interval of a success rate (sample of 0/1 values)."""
    if sample.n == 0:
        return None
    z = _UNIT.inv_cdf(1 - (1 - confidence) / 2)
    n, p = sample.n, sample.mean
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Comparison:
    test: str  # "welch_t" | "two_proportion_z"
    statistic: float
    p_value: float
    difference: float  # treatment mean minus control mean


def welch_t_test(control: Sample, treatment: Sample) -> Comparison | None:
    """Welch's unequal-variances t-test; None when either side has < 2 observations."""
    if control.n < 2 or treatment.n < 2:
        return None
    v1, v2 = control.variance / control.n, treatment.variance / treatment.n
    difference = treatment.mean - control.mean
    if v1 + v2 == 0:
        p = 1.0 if difference == 0 else 0.0
        return Comparison("welch_t", 0.0 if difference == 0 else math.inf, p, difference)
    t = difference / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / (control.n - 1) + v2 * v2 / (treatment.n - 1))
    return Comparison("welch_t", t, t_two_sided_p(t, df), difference)


def two_proportion_z_test(control: Sample, treatment: Sample) -> Comparison | None:
    """Pooled two-proportion z-test; None when either side is empty."""
    if control.n == 0 or treatment.n == 0:
        return None
    difference = treatment.mean - control.mean
    pooled = (control.total + treatment.total) / (control.n + treatment.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    if se == 0:
        return Comparison("two_proportion_z", 0.0, 1.0, difference)
    z = difference / se
    return Comparison("two_proportion_z", z, 2 * (1 - _UNIT.cdf(abs(z))), difference)


def compare(metric: str, control: Sample, treatment: Sample) -> Comparison | None:
    if metric == "success":
        return two_proportion_z_test(control, treatment)
    return welch_t_test(control, treatment)


def better(metric: str, difference: float) -> bool:
    """Whether a treatment whose mean differs by `difference` from control is better."""
    return difference < 0 if metric in LOWER_IS_BETTER else difference > 0


def winner(metric: str, samples: Sequence[tuple[int, Sample]], alpha: float,
           min_samples: int) -> int | None:
    """The winning version, once every variant has `min_samples` observations: the best
    treatment significantly better than control (the first variant), or control when
    every treatment is significantly worse. Bonferroni-corrected for the comparisons."""
    if len(samples) < 2 or any(s.n < min_samples for _, s in samples):
        return None
    (control_version, control), treatments = samples[0], samples[1:]
    corrected = alpha / len(treatments)
    wins: list[tuple[float, int]] = []
    worse = 0
    for version, sample in treatments:
        result = compare(metric, control, sample)
        if result is None or result.p_value >= corrected:
            continue
        if better(metric, result.difference):
            wins.append((abs(result.difference), version))
        else:
            worse += 1
    if wins:
        return max(wins)[1]
    return control_version if worse == len(treatments) else None
