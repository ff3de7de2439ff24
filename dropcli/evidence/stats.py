"""Statistics over seeds: the mean and the half-width of its 95% t-interval."""

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


def mean_ci(values) -> Stat:
    """Mean and 95% confidence half-width (t, N - 1 df) of the finite numbers in ``values``."""
    x = np.array([v for v in values if isinstance(v, (int, float)) and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Stat(math.nan, math.nan, 0)
    ci = t_critical(n - 1) * x.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    return Stat(float(x.mean()), float(ci), n)


