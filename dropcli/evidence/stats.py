"""Statistics over seeds: the mean and the half-width of its 95% t-interval, and how many
seeds a paired comparison would need to show a difference of a given size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# 97.5% quantiles of Student's t for df = 1..30 (two-sided 95%); beyond, _t975_expansion.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


@lru_cache(maxsize=None)
def t_critical(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (nan if df < 1).

    Uses scipy when it is importable (``scipy.special.stdtrit`` = ``scipy.stats.t.ppf``,
    which would cost a second to import), else the built-in table and, above 30 degrees
    of freedom, its series expansion (within 1e-5 of scipy there)."""
    if df < 1:
        return math.nan
    try:
        from scipy.special import stdtrit
    except ImportError:
        return _T95[df - 1] if df <= len(_T95) else _t975_expansion(df)
    return float(stdtrit(df, 0.975))


def _t975_expansion(df: int) -> float:
    """Student's t quantile from the normal one, z + g1/df + g2/df^2 + ... (Cornish-Fisher,
    as in Abramowitz & Stegun 26.7.5), for large df."""
    z = 1.959963984540054  # the normal 97.5% quantile
    g = ((z**3 + z) / 4,
         (5 * z**5 + 16 * z**3 + 3 * z) / 96,
         (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


@dataclass(frozen=True)
class Stat:
    mean: float  # nan without values
    ci: float  # half-width of the 95% t-interval of the mean; nan with fewer than 2 values
    n: int
    sd: float = math.nan  # sample standard deviation (N - 1); nan with fewer than 2 values


def mean_ci(values) -> Stat:
    """Mean and 95% confidence half-width (t, N - 1 df) of the finite numbers in ``values``."""
    x = np.array([v for v in values if isinstance(v, (int, float)) and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Stat(math.nan, math.nan, 0)
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    return Stat(float(x.mean()), t_critical(n - 1) * sd / math.sqrt(n) if n > 1 else math.nan, n, sd)


def paired_t_power(effect: float, n: int) -> float:
    """Power of the two-sided 95% paired t-test with ``n`` pairs when the true mean
    difference is ``effect`` standard deviations of the differences.

    With df = n - 1 and c = ``t_critical(df)``, the statistic is T = (Z + λ) / sqrt(V / df),
    Z ~ N(0, 1), V ~ χ²(df), λ = effect·√n (noncentral t), and the test rejects when |T| > c:
    power = E[Φ(λ - c·U/√df) + Φ(-λ - c·U/√df)] over U = √V, whose density is proportional
    to u^(df-1)·exp(-u²/2); the expectation is integrated numerically (trapezoid, step 0.01,
    ±10 around √df: within 1e-4 of scipy's noncentral t)."""
    if n < 2:
        return math.nan
    df = n - 1
    lam, c = abs(effect) * math.sqrt(n), t_critical(df)
    u = np.linspace(max(math.sqrt(df) - 10, 0.0), math.sqrt(df) + 10, 2001)
    log_density = (df - 1) * np.log(np.maximum(u, 1e-300)) - u**2 / 2
    density = np.exp(log_density - log_density.max())
    w = c * u / math.sqrt(df)
    tails = _normal_cdf(lam - w) + _normal_cdf(-lam - w)
    trapezoid = lambda f: f.sum() - (f[0] + f[-1]) / 2  # noqa: E731 (uniform step: it cancels in the ratio)
    return float(trapezoid(density * tails) / trapezoid(density))


_normal_cdf = np.vectorize(lambda x: 0.5 * math.erfc(-x / math.sqrt(2)), otypes=[float])

MAX_SEEDS = 10**7  # seeds_needed gives up beyond this


def seeds_needed(mean: float, sd: float, power: float = 0.8) -> int | None:
    """The fewest pairs (seeds) with which a two-sided 95% paired t-test has ``power``
    (80% by default) to find a true mean difference of ``mean`` when the differences have
    standard deviation ``sd``: ``paired_t_power`` at effect = |mean| / sd, searched over n
    (doubling, then bisection; power grows with n). At least 2. None if there is nothing
    to find (mean 0, or not finite) or it would take more than ``MAX_SEEDS``.

    It plugs in the observed mean and SD as if they were the truth, so with few seeds it is
    a rough guide (the SD of 3 differences is itself uncertain), not a promise."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0 or sd < 0:
        return None
    if sd == 0:  # every pair gave the same difference: two pairs already show it
        return 2
    effect = abs(mean) / sd
    enough = lambda n: paired_t_power(effect, n) >= power  # noqa: E731
    low, high = 1, 2
    while not enough(high):
        low, high = high, 2 * high
        if high > 2 * MAX_SEEDS:
            return None
    while high - low > 1:  # enough(high), not enough(low)
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high if high <= MAX_SEEDS else None


