"""Confidence intervals over seeds (dropcli.evidence.stats)."""

import builtins
import math

import pytest

from dropcli.evidence import stats

# 97.5% quantiles of Student's t (scipy.stats.t.ppf(0.975, df), 6 decimals).
KNOWN = {1: 12.706205, 2: 4.302653, 10: 2.228139, 30: 2.042272, 31: 2.039513, 40: 2.021075, 60: 2.000298,
         120: 1.979930, 1000: 1.962339}


@pytest.fixture
def no_scipy(monkeypatch):
    real = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(f"no {name} here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    stats.t_critical.cache_clear()
    yield
    stats.t_critical.cache_clear()


@pytest.mark.parametrize("df", sorted(KNOWN))
def test_t_quantiles_without_scipy(no_scipy, df):
    assert stats.t_critical(df) == pytest.approx(KNOWN[df], abs=6e-4)  # the table has 3 decimals


@pytest.mark.parametrize("df", [31, 40, 60, 120, 1000])
def test_beyond_the_table_the_expansion_is_exact_to_1e_5(df):
    assert stats._t975_expansion(df) == pytest.approx(KNOWN[df], abs=1e-5)


def test_mean_ci_uses_t_with_n_minus_1_df():
    values = [0.9, 0.8, 1.0, float("nan"), "x"]
    s = stats.mean_ci(values)
    assert s.n == 3 and s.mean == pytest.approx(0.9)
    assert s.ci == pytest.approx(KNOWN[2] * 0.1 / math.sqrt(3), rel=1e-4)
    assert math.isnan(stats.mean_ci([1.0]).ci) and stats.mean_ci([]).n == 0
