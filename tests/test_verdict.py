"""The verdict of a sweep (dropcli.report.verdict): fake sweeps whose runs end with known
accuracies (tests/runstore_fixtures.py), and the words and numbers each one must produce."""

import html
import math
import re

import numpy as np
import pytest

from dropcli.evidence.stats import seeds_needed
from dropcli.report.plot import plot_all
from dropcli.report.verdict import sweep_verdict
from runstore_fixtures import BASE, write_sweep

T95 = {1: 12.7062047, 2: 4.3026527}  # 97.5% quantiles of Student's t, from a printed table
KEEP = "dropout.keep_prob"


def verdict_of(tmp_path, axes: dict, outcomes: dict, special=None) -> list[str]:
    """The verdict of a sweep over ``axes`` whose run at grid point ``values`` (a tuple in
    the order of ``axes``) ends with (train, val) accuracy ``outcomes[values]``; ``special``
    maps a grid point to other ``write_run`` arguments (a status)."""
    def run_args(values):
        point = tuple(values.values())
        return {"accuracy": outcomes[point], **(special or {}).get(point, {})}

    sweep_dir, _ = write_sweep(tmp_path, "v", BASE, axes, run_args)
    return sweep_verdict(sweep_dir)


def interval(diffs) -> tuple[str, str, str]:
    """Mean and 95% t-interval of paired differences in points, as the verdict prints them."""
    x = 100 * np.array(diffs)
    half = T95[len(x) - 1] * x.std(ddof=1) / math.sqrt(len(x))
    return f"{x.mean():+.1f}", f"{x.mean() - half:+.1f}", f"{x.mean() + half:+.1f}"


BASE_VAL, BASE_TRAIN = (0.60, 0.62, 0.64), (1.0, 1.0, 1.0)
# keep_prob -> (train, val) per seed 0, 1, 2, each against keep_prob 1 = BASE_*
OUTCOMES = {
    0.25: ((0.45, 0.47, 0.44), (0.40, 0.44, 0.41)),  # both much lower: underfits
    0.5: ((0.90, 0.92, 0.91), (0.66, 0.69, 0.70)),  # +6.3 points, smaller gap: helped
    0.75: ((1.0, 1.0, 1.0), (0.57, 0.60, 0.61)),  # lower val, the same train: hurt, not underfitting
    0.9: ((0.98, 0.99, 0.98), (0.55, 0.56, 0.59)),  # train lower, but less than val
    1.0: (BASE_TRAIN, BASE_VAL),
}


@pytest.fixture
def five_keeps(tmp_path):
    outcomes = {(k, s): (train[s], val[s]) for k, (train, val) in OUTCOMES.items() for s in range(3)}
    return verdict_of(tmp_path, {KEEP: list(OUTCOMES), "seed": [0, 1, 2]}, outcomes)


def diffs(keep, which=1):
    return [a - b for a, b in zip(OUTCOMES[keep][which], OUTCOMES[1.0][which])]


def test_one_sentence_per_keep_prob_below_1_in_order(five_keeps):
    assert [re.match(r"keep_prob ([\d.]+) ", s).group(1) for s in five_keeps] == ["0.25", "0.5", "0.75", "0.9"]


def test_helped_gives_the_gain_its_interval_and_the_gap(five_keeps):
    mean, low, high = interval(diffs(0.5))
    gap_before = 100 * np.mean([t - v for t, v in zip(BASE_TRAIN, BASE_VAL)])
    gap_after = 100 * np.mean([t - v for t, v in zip(*OUTCOMES[0.5])])
    assert five_keeps[1] == (
        f"keep_prob 0.5 (drop rate 0.5) raised final validation accuracy by {mean} points over keep_prob 1 "
        f"(95% CI {low} to {high}, 3 paired seeds) and shrank the train-val gap from {gap_before:.1f} to "
        f"{gap_after:.1f} points.")
    assert (mean, low, high) == ("+6.3", "+4.9", "+7.8")  # the numbers of this fixture, written out once


def test_too_much_dropout_underfits_when_train_accuracy_falls_too(five_keeps):
    mean, low, high = interval(diffs(0.25))
    train = 100 * np.mean(OUTCOMES[0.25][0])
    assert five_keeps[0] == (
        f"keep_prob 0.25 (drop rate 0.75) lost {mean.lstrip('-')} points of final validation accuracy against "
        f"keep_prob 1 (95% CI {low} to {high}, 3 paired seeds): too much dropout underfits "
        f"(train acc {train:.1f}% vs 100.0% at keep_prob 1).")


def test_hurt_without_underfitting_says_why_not(five_keeps):
    assert "lost 2.7 points" in five_keeps[2] and "underfits" not in five_keeps[2]
    assert five_keeps[2].endswith("but not by underfitting: its train accuracy is not clearly lower "
                                  "(train acc 100.0% vs 100.0% at keep_prob 1).")
    # clearly lower train accuracy is not enough: it must fall at least as far as validation accuracy
    assert "lost 5.3 points" in five_keeps[3] and "underfits" not in five_keeps[3]
    assert "its train accuracy fell less than its validation accuracy (train acc 98.3% vs 100.0%" in five_keeps[3]


def test_no_measurable_difference_says_how_many_seeds_would_show_it(tmp_path):
    val = {0: (0.61, 0.60), 1: (0.60, 0.62), 2: (0.68, 0.64)}  # seed -> (keep 0.5, keep 1): +1, -2, +4 points
    outcomes = {(k, s): (1.0, val[s][k == 1.0]) for k in (0.5, 1.0) for s in range(3)}
    (sentence,) = verdict_of(tmp_path, {KEEP: [0.5, 1.0], "seed": [0, 1, 2]}, outcomes)
    d = [0.01, -0.02, 0.04]
    mean, low, high = interval(d)
    n = seeds_needed(np.mean(d), np.std(d, ddof=1))
    assert n == 73  # mean 1/3 of the SD: 73 pairs give 80% power (checked against scipy's noncentral t in test_stats)
    assert sentence == (
        f"keep_prob 0.5 (drop rate 0.5) made no measurable difference to final validation accuracy against keep_prob 1 "
        f"at 3 paired seeds ({mean} points, 95% CI {low} to {high}); to show a difference of 1.0 points would take "
        f"about {n} seeds (80% power at the pairs' SD of 3.0 points).")


def test_other_settings_are_named_and_compared_separately(tmp_path):
    axes = {"data.num_train": [100, 300], KEEP: [0.5, 1.0], "seed": [0, 1, 2]}
    # at 100 dropout loses 5 points on every seed; at 300 it gains 4, 5, 6
    val = {(100, 0.5): (0.50,) * 3, (100, 1.0): (0.55,) * 3, (300, 0.5): (0.74, 0.75, 0.76), (300, 1.0): (0.70,) * 3}
    outcomes = {(n, k, s): (0.9, val[(n, k)][s]) for n in (100, 300) for k in (0.5, 1.0) for s in range(3)}
    first, second = verdict_of(tmp_path, axes, outcomes)
    assert first.startswith("With num_train=100, keep_prob 0.5 (drop rate 0.5) lost 5.0 points")
    assert "(95% CI -5.0 to -5.0, 3 paired seeds)" in first  # the same difference on every seed
    assert second.startswith("With num_train=300, keep_prob 0.5 (drop rate 0.5) raised final validation accuracy "
                             "by +5.0 points over keep_prob 1 (95% CI +2.5 to +7.5, 3 paired seeds)")


def test_one_seed_cannot_tell_an_effect_from_noise(tmp_path):
    outcomes = {(0.5, 0): (0.9, 0.66), (1.0, 0): (1.0, 0.60)}
    sentences = verdict_of(tmp_path, {KEEP: [0.5, 1.0], "seed": [0]}, outcomes)
    assert sentences == [
        "keep_prob 0.5 (drop rate 0.5) scored 66.0% final validation accuracy against 60.0% for keep_prob 1 "
        "(+6.0 points) on a single seed.",
        "With one paired seed there is no interval, so those differences cannot be told from seed-to-seed noise: "
        "run more seeds (e.g. --seeds 0,1,2)."]


def test_without_keep_prob_1_it_says_it_cannot_compare(tmp_path):
    outcomes = {(k, s): (0.9, 0.6) for k in (0.25, 0.5) for s in (0, 1)}
    assert verdict_of(tmp_path, {KEEP: [0.25, 0.5], "seed": [0, 1]}, outcomes) == [
        "This sweep has no keep_prob = 1 (no dropout) runs to compare with, so it cannot say whether dropout "
        "helped: add 1 to the keep_prob values (e.g. --keep 0.25,0.5,1)."]


def test_without_dropout_it_says_there_is_nothing_to_compare(tmp_path):
    outcomes = {(n, 1.0, s): (0.9, 0.6) for n in (100, 300) for s in (0, 1)}
    (sentence,) = verdict_of(tmp_path, {"data.num_train": [100, 300], KEEP: [1.0], "seed": [0, 1]}, outcomes)
    assert sentence.startswith("Every run has keep_prob 1 (no dropout), so this sweep cannot say what dropout does")


def test_a_setting_whose_baseline_runs_all_diverged_says_so(tmp_path):
    outcomes = {(k, s): (0.9, 0.6) for k in (0.5, 1.0) for s in (0, 1)}
    diverged = {(1.0, s): {"status": "diverged", "diverge_at": 3} for s in (0, 1)}
    assert verdict_of(tmp_path, {KEEP: [0.5, 1.0], "seed": [0, 1]}, outcomes, diverged) == [
        "keep_prob 0.5 (drop rate 0.5) has no completed run with the same seed as a completed keep_prob 1 run yet."]


def test_the_verdict_tops_the_sweep_report_in_markdown_and_html(tmp_path):
    outcomes = {(k, s): (OUTCOMES[k][0][s], OUTCOMES[k][1][s]) for k in (0.5, 1.0) for s in range(3)}
    sweep_dir, _ = write_sweep(tmp_path, "v", BASE, {KEEP: [0.5, 1.0], "seed": [0, 1, 2]},
                               lambda v: {"accuracy": outcomes[tuple(v.values())]})
    plot_all(tmp_path)
    (sentence,) = sweep_verdict(sweep_dir)
    md = (sweep_dir / "report.md").read_text()
    assert md.index("## Verdict") < md.index(f"- {sentence}") < md.index("## Settings") < md.index("## Did dropout")
    assert md.index("## Verdict") < md.index("| keep_prob |")  # above every table
    page = (sweep_dir / "report.html").read_text()
    assert page.index("<h2>Verdict</h2>") < page.index(f"<li>{html.escape(sentence)}</li>") < page.index("<table>")
    index = (tmp_path / "report.md").read_text()
    assert f"### Verdict\n\n- {sentence}" in index  # the index shows each sweep's verdict too


def test_with_no_completed_run_there_is_nothing_to_compare(tmp_path):
    pending = {(k, 0): {"status": "pending"} for k in (0.5, 1.0)}
    assert verdict_of(tmp_path, {KEEP: [0.5, 1.0], "seed": [0]}, {(k, 0): None for k in (0.5, 1.0)}, pending) == [
        "2 runs, none completed yet, so there is nothing to compare."]
