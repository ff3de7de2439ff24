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


def test_mean_ci_keeps_the_sample_sd():
    assert stats.mean_ci([0.9, 0.8, 1.0]).sd == pytest.approx(0.1)
    assert math.isnan(stats.mean_ci([0.9]).sd)


# Pairs for 80% power of a two-sided 5% paired t-test at effect size d = mean / SD of the
# differences, as power tables (and G*Power) give them.
TABLE_N = {1.5: 6, 1.0: 10, 0.8: 15, 0.5: 34, 0.3: 90, 0.2: 199}


@pytest.mark.parametrize("effect", sorted(TABLE_N))
def test_seeds_needed_matches_the_power_tables(effect):
    assert stats.seeds_needed(0.02 * effect, 0.02) == TABLE_N[effect]
    assert stats.seeds_needed(-0.02 * effect, 0.02) == TABLE_N[effect]  # the sign does not matter


def test_seeds_needed_without_scipy_is_the_same(no_scipy):
    assert {d: stats.seeds_needed(d, 1.0) for d in TABLE_N} == TABLE_N


def test_seeds_needed_edge_cases():
    assert stats.seeds_needed(0.0, 0.01) is None  # nothing to find
    assert stats.seeds_needed(math.nan, 0.01) is None and stats.seeds_needed(0.01, math.nan) is None
    assert stats.seeds_needed(0.01, 0.0) == 2  # every pair the same: two show it
    assert stats.seeds_needed(1e-6, 1.0) is None  # more than MAX_SEEDS
    # large n: the normal limit ((z_0.975 + z_0.8) / effect)^2 = 7,848,879
    assert stats.seeds_needed(0.001, 1.0) == pytest.approx(7_848_879, rel=1e-5)


@pytest.mark.parametrize("effect", [0.1, 0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("n", [2, 3, 5, 10, 40, 200])
def test_power_matches_scipys_noncentral_t(effect, n):
    scipy_stats = pytest.importorskip("scipy.stats", reason="scipy gives the reference noncentral t")
    df, c = n - 1, scipy_stats.t.ppf(0.975, n - 1)
    nc = effect * math.sqrt(n)
    exact = scipy_stats.nct.sf(c, df, nc) + scipy_stats.nct.cdf(-c, df, nc)
    assert stats.paired_t_power(effect, n) == pytest.approx(exact, abs=1e-4)
