"""A sweep's verdict: one sentence per setting with dropout, every number read from its
runs, shown at the top of the sweep's report and under ``dropcli sweep``'s table.

Each setting with keep_prob < 1 is compared with the keep_prob = 1 runs of the same other
settings, paired by seed (``SweepGroups.baseline`` and ``paired``: the pairs of the report's
"Did dropout help?" table). Δ = final validation accuracy minus its twin's, over the pairs:

- helped / lost: the 95% t-interval of Δ lies above / below 0; the sentence adds what
  happened to the train - val gap (shrank or widened if the interval of its paired Δ
  excludes 0, else "about the same");
- underfits: lost, and the final train accuracy is clearly lower too: the interval of its
  paired Δ lies below 0 and it fell at least as far as validation accuracy did (the net
  fits its own training data worse, rather than generalising worse);
- no measurable difference: the interval contains 0; the sentence says how many seeds a
  two-sided 95% paired t-test would need for 80% power at the observed mean and SD of Δ
  (``evidence.stats.seeds_needed``);
- one pair: no interval, so no claim; no keep_prob = 1 runs, or none below 1: nothing to
  compare, and the sentence says so.
"""

from __future__ import annotations

import math
from pathlib import Path

from dropcli.evidence.stats import Stat, seeds_needed
from dropcli.report.format import plural
from dropcli.report.groups import KEEP, METRICS, Group, SweepGroups, group_sweep, paired
from dropcli.store.sweeps import read_sweep

RULES = (
    "Each keep_prob is compared with keep_prob 1 of the same other settings, paired by seed (the table "
    "\"Did dropout help?\" below). It raised or lost accuracy when the 95% t-interval of the paired difference "
    "excludes 0; \"too much dropout underfits\" when the final train accuracy is clearly lower too (its paired "
    "interval below 0, and a fall at least as large as validation accuracy's); when the interval contains 0, the "
    "seeds needed are those with which a two-sided 95% paired t-test has 80% power, taking the observed mean and "
    "SD of the differences as true."
)


def sweep_verdict(sweep_dir: Path) -> list[str]:
    """The verdict of the sweep folder ``sweep_dir`` as read from the store (see ``verdict``)."""
    record = read_sweep(sweep_dir)
    return verdict(group_sweep(record.spec, record.runs))


def verdict(sweeps: SweepGroups) -> list[str]:
    """One sentence per setting with keep_prob < 1 (see the module docstring), or one saying
    why the sweep cannot tell what dropout did."""
    keeps = sorted({g.keep_prob for g in sweeps.groups if g.keep_prob is not None})
    if not any(g.included for g in sweeps.groups):
        runs = sum(len(g.runs) for g in sweeps.groups)
        return [f"{plural(runs, 'run')}, none completed yet, so there is nothing to compare."]
    if 1 not in keeps:
        shown = ",".join(f"{k:g}" for k in keeps) or "0.5"
        return [f"This sweep has no keep_prob = 1 (no dropout) runs to compare with, so it cannot say whether "
                f"dropout helped: add 1 to the keep_prob values (e.g. --keep {shown},1)."]
    if keeps == [1]:
        return ["Every run has keep_prob 1 (no dropout), so this sweep cannot say what dropout does: add a "
                "keep_prob below 1 (e.g. --keep 0.5,1)."]
    others = [k for k in sweeps.varying if k != KEEP]
    out, single = [], False
    settings = list(dict.fromkeys(g.label(others) for g in sweeps.groups))  # in grid order
    compared = [g for g in sweeps.groups if g.keep_prob is not None and g.keep_prob != 1]
    for grp in sorted(compared, key=lambda g: (settings.index(g.label(others)), g.keep_prob)):
        sentence, one_pair = _compare(grp, sweeps.baseline(grp))
        single |= one_pair
        out.append(f"With {grp.label(others)}, {sentence}" if others else sentence)
    if single:
        out.append("With one paired seed there is no interval, so those differences cannot be told from "
                   "seed-to-seed noise: run more seeds (e.g. --seeds 0,1,2).")
    return out


def _pts(x: float, signed: bool = False) -> str:
    """A fraction in percentage points, one decimal: ``+6.6`` (signed) or ``6.6``."""
    text = f"{100 * x + 0.0:{'+' if signed else ''}.1f}"
    return text.replace("-0.0", "+0.0" if signed else "0.0")


def _interval(stat: Stat) -> str:
    return f"95% CI {_pts(stat.mean - stat.ci, True)} to {_pts(stat.mean + stat.ci, True)}"


def _compare(grp: Group, base: Group | None) -> tuple[str, bool]:
    """The sentence for ``grp`` against its keep_prob = 1 twin ``base``, and whether it
    rests on a single pair."""
    me = f"keep_prob {grp.keep_prob:g} (drop rate {1 - grp.keep_prob:g})"
    if base is None:
        return f"{me} has no keep_prob 1 runs with the same other settings to compare with.", False
    diff = {m: paired(grp.included, base.included, METRICS[m][1]) for m in ("final_val", "gap", "final_train")}
    d = diff["final_val"]
    if d.n == 0:
        return f"{me} has no completed run with the same seed as a completed keep_prob 1 run yet.", False
    if d.n == 1:
        return (f"{me} scored {_pts(grp.stat('final_val').mean)}% final validation accuracy against "
                f"{_pts(base.stat('final_val').mean)}% for keep_prob 1 ({_pts(d.mean, True)} points) on a single "
                "seed."), True
    low, high = d.mean - d.ci, d.mean + d.ci
    if low > 0:
        return (f"{me} raised final validation accuracy by {_pts(d.mean, True)} points over keep_prob 1 "
                f"({_interval(d)}, {d.n} paired seeds){_gap(grp, base, diff['gap'])}."), False
    if high < 0:
        return (f"{me} lost {_pts(-d.mean)} points of final validation accuracy against keep_prob 1 "
                f"({_interval(d)}, {d.n} paired seeds){_why_lost(grp, base, d, diff['final_train'])}."), False
    return (f"{me} made no measurable difference to final validation accuracy against keep_prob 1 at "
            f"{d.n} paired seeds ({_pts(d.mean, True)} points, {_interval(d)}); {_seeds_for(d)}."), False


def _gap(grp: Group, base: Group, d_gap: Stat) -> str:
    """``and shrank the train-val gap from 34.2 to 23.8 points`` (or widened, or about the same)."""
    mine, theirs = grp.stat("gap").mean, base.stat("gap").mean
    if not (math.isfinite(mine) and math.isfinite(theirs)) or d_gap.n < 2:
        return ""
    numbers = f"from {_pts(theirs)} to {_pts(mine)} points"
    if d_gap.mean + d_gap.ci < 0:
        return f" and shrank the train-val gap {numbers}"
    if d_gap.mean - d_gap.ci > 0:
        return f" and widened the train-val gap {numbers}"
    return f", with the train-val gap about the same ({_pts(theirs)} vs {_pts(mine)} points)"


def _why_lost(grp: Group, base: Group, d_val: Stat, d_train: Stat) -> str:
    """``: too much dropout underfits (train acc 41.5% vs 100.0% at keep_prob 1)`` when the
    train accuracy is clearly lower too (module docstring), else why it is not underfitting."""
    mine, theirs = grp.stat("final_train").mean, base.stat("final_train").mean
    if not (math.isfinite(mine) and math.isfinite(theirs)) or d_train.n < 2:
        return ""
    train = f"train acc {_pts(mine)}% vs {_pts(theirs)}% at keep_prob 1"
    if d_train.mean + d_train.ci >= 0:
        return f", but not by underfitting: its train accuracy is not clearly lower ({train})"
    if d_train.mean > d_val.mean:
        return f", but not by underfitting: its train accuracy fell less than its validation accuracy ({train})"
    return f": too much dropout underfits ({train})"


def _seeds_for(d: Stat) -> str:
    """How many seeds would show a difference the size of ``d.mean`` (``seeds_needed``)."""
    n = seeds_needed(d.mean, d.sd)
    if n is None and d.mean == 0:
        return "the pairs differ by 0 on average, so there is no difference for more seeds to show"
    size = f"{100 * abs(d.mean):.{1 if 100 * abs(d.mean) >= 0.1 else 2}f} points"  # 0.03 points, not 0.0
    if n is None:
        return (f"a difference of {size} is too small against the pairs' spread (SD {_pts(d.sd)} points) for any "
                "practical number of seeds to show")
    return f"to show a difference of {size} would take about {n:,} seeds (80% power at the pairs' SD of " \
           f"{_pts(d.sd)} points)"
