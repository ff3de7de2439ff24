"""`dropcli plot`: figures and reports over a fake runs store (tests/runstore_fixtures.py)."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from dropcli.evidence import stats
from dropcli.errors import RunStoreError
from dropcli.report.plot import plot_all
from runstore_fixtures import KEEPS, SEEDS, make_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T95 = {1: 12.7062047, 2: 4.3026527}  # 97.5% quantiles of Student's t, from a printed table


@pytest.fixture(scope="module")
def plotted(tmp_path_factory):
    """The full fake store, plotted once for the read-only tests of this module."""
    store = make_store(tmp_path_factory.mktemp("runs"))
    return store, plot_all(store.root)


def assert_png(path: Path):
    import matplotlib.image

    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, f"{path}: {pixels.shape}"
    assert float(np.var(pixels)) > 0, f"{path} is blank"


def links(report: Path) -> list[str]:
    text = report.read_text(encoding="utf-8")
    if report.suffix == ".html":
        return re.findall(r'(?:src|href)="([^"]+)"', text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def sweep_table(report: Path) -> dict[str, list[str]]:
    """The first Markdown table of a sweep report, as keep_prob -> its row's cells."""
    lines = report.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| keep_prob") or "| keep_prob |" in line)
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        rows[cells["keep_prob"]] = cells
    return rows


# --- files written -----------------------------------------------------------------------


def test_every_run_gets_curves_report_and_expectation_if_it_has_layers(plotted):
    store, result = plotted
    runs = list(store.runs.values()) + list(store.singles.values()) + sorted(store.grid.glob("grid-*"))
    assert len(runs) == 12 + 4 + 8
    for run in runs:
        assert_png(run / "curves.png")
        assert (run / "report.md").is_file()
        exp = run / "expectation.json"
        has_layers = exp.exists() and json.loads(exp.read_text())["layers"]
        assert (run / "expectation.png").exists() == bool(has_layers), run
        if has_layers:
            assert_png(run / "expectation.png")
    assert (store.runs[(1.0, 0)] / "report.md").read_text().count("no dropout layers") == 1


def test_every_sweep_gets_its_figures_and_report(plotted):
    store, result = plotted
    for sweep in (store.sweep, store.grid):
        for name in ("val_curves.png", "keep_prob.png", "gap.png"):
            assert_png(sweep / name)
        assert (sweep / "report.md").is_file()
    assert (store.root / "report.md").is_file() and (store.root / "report.html").is_file()


def test_result_lists_existing_files_and_no_temporaries_are_left(plotted):
    store, result = plotted
    assert result.files and all(Path(f).is_file() for f in result.files)
    assert len(set(result.files)) == len(result.files)
    assert not list(store.root.rglob("*.tmp"))


def test_only_warning_of_the_clean_store_is_the_torn_metrics_line(plotted):
    store, result = plotted
    assert len(result.warnings) == 1, result.warnings
    assert "metrics.jsonl" in result.warnings[0] and "truncated" in result.warnings[0]
    assert store.truncated.name in result.warnings[0]
    assert "truncated" in (store.root / "report.md").read_text()
    assert "truncated" in (store.root / "report.html").read_text()


# --- links -------------------------------------------------------------------------------


def test_every_link_and_image_in_every_report_resolves_relative_to_it(plotted):
    store, _ = plotted
    reports = sorted(store.root.rglob("report.md")) + [store.root / "report.html"]
    assert len(reports) > 20
    for report in reports:
        if report.parent.parent.name == "checks":
            continue  # written by `dropcli check`, not by plot
        found = links(report)
        assert found, f"{report} has no links"
        for href in found:
            assert not href.startswith(("/", "http:", "https:", "file:")), f"{report}: {href} is not relative"
            assert (report.parent / unquote(href)).exists(), f"{report}: broken link {href}"


def test_index_embeds_sweep_figures_and_links_every_run_and_check(plotted):
    store, _ = plotted
    html = (store.root / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    for sweep in (store.sweep, store.grid):
        for name in ("val_curves.png", "keep_prob.png", "gap.png"):
            assert f"{sweep.name}/{name}" in srcs
    for run in list(store.runs.values()) + list(store.singles.values()):
        assert str((run / "report.html").relative_to(store.root)) in html
    assert "checks/gradient/report.md" in html
    assert "<script" not in html and "http" not in html


def test_every_status_is_shown_and_labelled(plotted):
    store, _ = plotted
    index = (store.root / "report.md").read_text()
    for status, run in store.singles.items():
        row = next(line for line in index.splitlines() if f"[{run.name}]" in line)
        assert f"| {status} |" in row
        assert f"| {status}" in (run / "report.md").read_text()
    assert "diverged: " + store.diverged.name in (store.sweep / "report.md").read_text()


# --- statistics --------------------------------------------------------------------------


def expected_group(store, keep):
    """Mean and 95% CI of final/best val acc and gap over the completed seeds, computed
    here from the summary files with a printed t table."""
    summaries = [json.loads((store.runs[(keep, s)] / "summary.json").read_text()) for s in SEEDS]
    done = [s for s in summaries if s["status"] == "completed"]
    out = {}
    for name, read in (("final val acc", lambda s: s["final"]["val_acc"]), ("best val acc", lambda s: s["best"]["val_acc"]),
                       ("train - val gap", lambda s: s["final"]["train_acc"] - s["final"]["val_acc"])):
        x = np.array([read(s) for s in done])
        ci = T95[len(x) - 1] * x.std(ddof=1) / math.sqrt(len(x))
        out[name] = f"{100 * x.mean():.2f} ± {100 * ci:.2f}"
    return out, len(done), len(summaries) - len(done)


@pytest.mark.parametrize("keep", [0.25, 0.5])
def test_sweep_table_has_the_right_numbers(plotted, keep):
    store, _ = plotted
    rows = sweep_table(store.sweep / "report.md")
    assert set(rows) == {f"{k:g}" for k in KEEPS}
    row = rows[f"{keep:g}"]
    expected, n, diverged = expected_group(store, keep)
    for column, text in expected.items():
        assert row[column] == text, column
    assert row["N"] == str(n)
    assert row["drop rate"] == f"{1 - keep:g}"
    assert row["runs"] == (f"{n} completed, {diverged} diverged" if diverged else f"{n} completed")
    assert (n, diverged) == ((2, 1) if keep == 0.25 else (3, 0))


def test_grid_sweep_table_shows_only_the_varying_parameters(plotted):
    store, _ = plotted
    header = next(line for line in (store.grid / "report.md").read_text().splitlines() if line.startswith("| "))
    assert header.startswith("| variant | normalization | keep_prob | drop rate |")
    assert "seed" not in header.split("| runs |")[0] and "epochs" not in header


def test_t_critical_matches_the_table_with_and_without_scipy(monkeypatch):
    from dropcli.evidence import stats

    for df in (1, 2, 5, 30):
        assert stats.t_critical(df) == pytest.approx(stats._T95[df - 1], abs=1e-3)
    stats.t_critical.cache_clear()
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import now fails
    try:
        assert stats.t_critical(2) == 4.303
        assert stats.t_critical(100) == pytest.approx(1.983972, abs=1e-5)  # scipy's t.ppf(0.975, 100)
        assert math.isnan(stats.t_critical(0))
    finally:
        stats.t_critical.cache_clear()


def test_mean_ci_ignores_missing_values_and_has_no_ci_for_one_value():
    stat = stats.mean_ci([0.5, None, 0.7, float("nan")])
    assert (stat.mean, stat.n) == (pytest.approx(0.6), 2)
    assert stat.ci == pytest.approx(T95[1] * np.std([0.5, 0.7], ddof=1) / math.sqrt(2), rel=1e-4)
    assert math.isnan(stats.mean_ci([0.5]).ci) and stats.mean_ci([]).n == 0


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "file", "empty", "junk", "sweep-folder"])
def test_bad_runs_dir_raises_one_line(tmp_path, case):
    target = tmp_path / "runs"
    if case == "file":
        target.write_text("not a folder")
    elif case in ("empty", "junk"):
        target.mkdir()
        if case == "junk":
            (target / "notes").mkdir()
            (target / "notes" / "a.txt").write_text("x")
    elif case == "sweep-folder":
        target = make_store(tmp_path / "store", grid=False, singles=False).sweep
    with pytest.raises(RunStoreError) as err:
        plot_all(target)
    message = str(err.value)
    assert "\n" not in message and str(target) in message
    if case in ("empty", "junk"):
        assert "no runs found" in message and "dropcli sweep" in message


@pytest.fixture
def small_store(tmp_path):
    """One sweep: keep_prob 0.5 / 0.75 x seeds 0, 1, 2 (6 runs, one with a torn metrics line)."""
    return make_store(tmp_path / "runs", keeps=(0.5, 0.75), grid=False, singles=False)


def test_corrupt_summary_warns_and_the_rest_is_plotted(small_store):
    bad = small_store.runs[(0.75, 0)]
    (bad / "summary.json").write_text('{"schema_version": 1, "status": "compl')
    result = plot_all(small_store.root)
    assert any("summary.json" in w and bad.name in w for w in result.warnings), result.warnings
    for run in small_store.runs.values():
        assert_png(run / "curves.png")
    assert_png(small_store.sweep / "keep_prob.png")
    assert bad.name in (small_store.root / "report.html").read_text()
    assert sweep_table(small_store.sweep / "report.md")["0.75"]["N"] == "2"


def test_unreadable_config_of_one_run_warns_and_the_rest_is_plotted(small_store):
    bad = small_store.runs[(0.5, 2)]
    (bad / "config.yaml").write_text("model: [unclosed\n")
    result = plot_all(small_store.root)
    assert any("config.yaml" in w for w in result.warnings), result.warnings
    assert not (bad / "curves.png").exists()
    assert_png(small_store.runs[(0.5, 0)] / "curves.png")
    assert sweep_table(small_store.sweep / "report.md")["0.5"]["runs"] == "2 completed"


def test_a_failing_figure_is_a_warning_not_a_crash(small_store, monkeypatch):
    from dropcli.report.figures import curves

    victim = small_store.runs[(0.5, 0)]

    def flaky(run):
        if run.path == victim:
            raise ValueError("bad numbers")
        return original(run)

    original = curves.status_note  # called for each run drawn from the template, in the workers too
    monkeypatch.setattr(curves, "status_note", flaky)
    result = plot_all(small_store.root, processes=2)
    assert any(victim.name in w and "bad numbers" in w for w in result.warnings)
    assert not (victim / "curves.png").exists()
    for run in small_store.runs.values():
        if run != victim:
            assert_png(run / "curves.png")
    for report in (small_store.root / "report.md", small_store.root / "report.html"):
        for href in links(report):
            assert (report.parent / unquote(href)).exists(), href


# --- speed, rerun, imports ---------------------------------------------------------------


def test_a_second_plot_draws_only_what_changed(small_store):
    first = plot_all(small_store.root)
    assert not first.unchanged
    drawn = sorted(p for p in first.files if p.suffix == ".png")
    second = plot_all(small_store.root)
    assert not [p for p in second.files if p.suffix == ".png"] and sorted(second.unchanged) == drawn
    changed = small_store.runs[(0.5, 0)]
    summary = json.loads((changed / "summary.json").read_text())
    summary["wall_time"] += 1.0  # trained again: a new summary.json, the same curves
    (changed / "summary.json").write_text(json.dumps(summary))
    third = plot_all(small_store.root)
    # Its figures and the sweep's, whose inputs changed; not its seeds' (the limits they share did not change).
    assert {p for p in third.files if p.suffix == ".png"} == {
        changed / "curves.png", changed / "expectation.png",
        *(small_store.sweep / name for name in ("keep_prob.png", "val_curves.png", "gap.png"))}
    assert {p.name for p in third.files} >= {"report.md", "report.html"}
    forced = plot_all(small_store.root, force=True)
    assert not forced.unchanged and sorted(p for p in forced.files if p.suffix == ".png") == drawn


def test_a_running_run_is_drawn_every_time(plotted):
    store, _ = plotted
    again = plot_all(store.root)
    assert store.singles["running"] / "curves.png" in again.files
    assert store.singles["completed"] / "curves.png" in again.unchanged


def test_progress_is_reported_per_run_sweep_and_index(tmp_path):
    store = make_store(tmp_path / "runs", grid=False, singles=False)
    progress = []
    plot_all(store.root, on_progress=lambda done, total, label: progress.append((done, total)))
    assert progress == [(i, 12 + 1 + 1) for i in range(1, 15)]


def test_importing_the_report_does_not_import_matplotlib():
    code = "import sys, dropcli, dropcli.report.plot; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --- what the figures show: real runs, trained here --------------------------------------

REAL = """\
name: {name}
seed: 0
data: {{dataset: digits, num_train: 200, num_val: 100}}
model: {{hidden_dims: [32, 32]}}
dropout: {{keep_prob: 0.5}}
train: {{epochs: 3, batch_size: 50}}
sweep:
{axes}
"""
REAL_SWEEPS = {  # name -> sweep axes
    "variants": {"dropout.variant": ["inverted", "vanilla", "gaussian", "dropconnect"],
                 "dropout.keep_prob": [0.5, 1.0], "seed": [0, 1]},
    "norms": {"model.normalization": ["none", "batchnorm"], "dropout.keep_prob": [1.0], "seed": [0, 1]},
    "seeds": {"seed": [0, 1]},
}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Three small sweeps trained for real (about a second) and plotted: variant x
    keep_prob, normalization at keep_prob 1 (keep_prob not swept), and seeds only."""
    from dropcli.config import load_config
    from dropcli.sweep.grid import plan_sweep
    from dropcli.sweep.run import run_sweep

    root = tmp_path_factory.mktemp("real")
    sweeps = {}
    for name, axes in REAL_SWEEPS.items():
        config = root / f"{name}.yaml"
        config.write_text(REAL.format(name=name, axes="\n".join(f"  {k}: {json.dumps(v)}" for k, v in axes.items())))
        plan = plan_sweep(load_config(config), root / "runs")
        assert {s["status"] for s in run_sweep(plan)} == {"completed"}
        sweeps[name] = plan.path
    result = plot_all(root / "runs")
    assert not result.warnings, result.warnings
    return sweeps


def real_groups(sweep_dir):
    from dropcli.report.groups import group_sweep
    from dropcli.store.sweeps import read_sweep

    sweep = read_sweep(sweep_dir)
    return group_sweep(sweep.spec, sweep.runs)


def real_run(sweep_dir, **values):
    """The run of a real sweep whose config has the given dotted values."""
    from dropcli.store.runs import read_run

    runs = [read_run(p) for p in sorted(sweep_dir.iterdir()) if (p / "config.yaml").exists()]
    return next(r for r in runs if all(r.value(k.replace("__", ".")) == v for k, v in values.items()))


def bars_by_label(ax) -> dict:
    """Top panel of expectation.png: bar series label (first words) -> heights per layer."""
    return {c.get_label().split(":")[0].split(" (")[0]: np.array([b.get_height() for b in c]) for c in ax.containers}


@pytest.mark.parametrize("variant, train_ratio, test_ratio", [
    ("inverted", 1.0, 1.0), ("vanilla", 0.5, 0.5), ("gaussian", 1.0, 1.0), ("dropconnect", 1.0, 1.0)])
def test_expectation_figure_shows_each_variants_scaling(real, variant, train_ratio, test_ratio):
    from dropcli.report.figures.expectation import EXPECTATION
    from dropcli.report.figures.template import figure

    run = real_run(real["variants"], dropout__variant=variant, dropout__keep_prob=0.5, seed=0)
    assert_png(run.path / "expectation.png")
    layers = run.expectation["layers"]
    fig = figure(EXPECTATION, run)
    ax = fig.axes[0]
    bars = bars_by_label(ax)
    assert set(bars) == {"a", "train-time output mean", "test-time output mean"}
    assert all(len(h) == len(layers) == 2 for h in bars.values())
    # The bars are the file's numbers: a (the mean entering the layer; x W + b for
    # DropConnect), the measured train-time mean and the test-time mean.
    a = bars["a"]
    expected_a = [x["test_mean"]["predicted"] if variant == "dropconnect" else x["input_mean"] for x in layers]
    np.testing.assert_allclose(a, expected_a, rtol=1e-12)
    np.testing.assert_allclose(bars["train-time output mean"], [x["train_mean"]["measured"] for x in layers])
    np.testing.assert_allclose(bars["test-time output mean"], [x["test_mean"]["measured"] for x in layers])
    # ... and they show the rule: vanilla's test-time output is keep_prob x a, inverted's is a.
    np.testing.assert_allclose(bars["test-time output mean"] / a, test_ratio, rtol=1e-5)
    se = np.array([x["train_mean"]["se"] for x in layers])
    assert np.all(np.abs(bars["train-time output mean"] - train_ratio * a) <= 4 * se)
    # The predictions are marked on the train and test bars, one black segment per layer each.
    predicted = sorted(float(seg[0][1]) for c in ax.collections if c.get_gid() == "predicted"
                       for seg in c.get_segments())
    assert predicted == pytest.approx(sorted(x[q]["predicted"] for x in layers for q in ("train_mean", "test_mean")))
    # The title states the rule from the file's scales; the residual panel has every predicted z.
    title = fig._suptitle.get_text()
    rule = {"inverted": "train x mask x 1/keep (x2), test x 1", "vanilla": "train x mask x 1, test x keep (x0.5)",
            "gaussian": "train x N(1, (1 - keep)/keep) noise", "dropconnect": "test weights W x 1"}[variant]
    assert rule in title
    zs = [c for c in fig.axes[1].collections if len(c.get_offsets()) and c.get_offsets().shape[1] == 2
          and type(c).__name__ == "PathCollection"]
    assert sum(len(c.get_offsets()) for c in zs) == sum(len(x["predicts"]) for x in layers)


def test_expectation_legends_are_outside_the_axes(real):
    from dropcli.report.figures.expectation import EXPECTATION
    from dropcli.report.figures.template import figure

    fig = figure(EXPECTATION, real_run(real["variants"], dropout__variant="vanilla", dropout__keep_prob=0.5, seed=0))
    fig.draw_without_rendering()
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent().y0 >= ax.get_window_extent().y1 - 1, ax.get_title()


def test_keep_prob_series_are_dodged_and_show_every_seed(real):
    from dropcli.report.figures import sweep as plots_sweep

    groups = real_groups(real["variants"])
    for fig in (plots_sweep.keep_prob_figure(groups, "t"), plots_sweep.gap_figure(groups, "t")):
        ax = fig.axes[0]
        xs = [tuple(c.lines[0].get_xdata()) for c in ax.containers]  # one errorbar series per variant
        assert len(xs) == 4
        for j, keep in enumerate((0.5, 1.0)):
            at = [x[j] for x in xs]
            assert len(set(at)) == 4, f"series overlap at keep_prob {keep}: {at}"
            assert all(abs(x - keep) < 0.25 for x in at)
        seeds = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
        assert sum(len(c.get_offsets()) for c in seeds) == 16  # every completed run, one dot each
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "1"]


def test_error_bars_are_clipped_to_the_possible_range_and_the_title_says_so(tmp_path):
    from dropcli.report.figures import sweep as plots_sweep

    store = make_store(tmp_path / "runs", keeps=(0.5, 0.75), grid=False, singles=False)
    groups = real_groups(store.sweep)
    assert "clipped" not in plots_sweep.keep_prob_figure(groups, "t")._suptitle.get_text()
    for seed, acc in ((0, 1.0), (1, 0.8), (2, 1.0)):  # 93.3 ± 28.7: the CI reaches past 100%
        path = store.runs[(0.75, seed)] / "summary.json"
        summary = json.loads(path.read_text())
        summary["final"]["val_acc"] = summary["best"]["val_acc"] = acc
        path.write_text(json.dumps(summary))
    fig = plots_sweep.keep_prob_figure(real_groups(store.sweep), "t")
    assert "CI bars clipped to the possible range [0, 100] %" in fig._suptitle.get_text()
    for ax in fig.axes[:2]:
        tops = [seg[:, 1].max() for c in ax.containers for seg in c.lines[2][0].get_segments()]
        assert max(tops) == pytest.approx(100.0)


def test_without_swept_keep_prob_the_figures_use_the_swept_axis(real):
    from dropcli.report.figures import sweep as plots_sweep

    groups = real_groups(real["norms"])
    assert groups.x_key() == "model.normalization"
    for fig in (plots_sweep.keep_prob_figure(groups, "t"), plots_sweep.gap_figure(groups, "t")):
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "batchnorm"]
        assert ax.get_xlabel() == "normalization"
        title = fig._suptitle.get_text().replace("\n", " ")
        assert "vs normalization" in title and "vs keep_prob" not in title
        assert "keep_prob 1 (drop rate 0) in every run" in title
    for name in ("keep_prob.png", "gap.png"):
        assert_png(real["norms"] / name)


def test_a_sweep_of_seeds_only_has_no_keep_prob_figures_and_its_report_links_resolve(real):
    from dropcli.report.figures import sweep as plots_sweep

    sweep = real["seeds"]
    assert real_groups(sweep).x_key() is None
    assert plots_sweep.keep_prob_figure(real_groups(sweep), "t") is None
    assert not (sweep / "keep_prob.png").exists() and not (sweep / "gap.png").exists()
    assert_png(sweep / "val_curves.png")
    for report in (sweep / "report.md", sweep.parent / "report.md"):
        for href in links(report):
            assert (report.parent / unquote(href)).exists(), f"{report}: broken link {href}"
    (sweep / "keep_prob.png").write_bytes(b"stale")  # drawn when the grid still had an axis
    plot_all(sweep.parent)
    assert not (sweep / "keep_prob.png").exists()


def test_val_curves_have_integer_epochs_and_zoom_to_the_curves(plotted):
    from dropcli.report.figures import sweep as plots_sweep

    store, _ = plotted
    fig = plots_sweep.val_curves_figure(real_groups(store.sweep), "t")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    means = [line.get_ydata()[1:] for line in ax.get_lines() if line.get_linestyle() != ":"]
    later = np.concatenate(means)  # epochs 1..8 of every mean curve
    assert low > 20 and low <= later.min() and later.max() <= high <= 100, (low, high, later.min())
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_ylabel() == "validation accuracy (%)"
    assert "epoch 0 is the untrained net" in fig._suptitle.get_text()  # it lies below the axis


def test_a_keep_prob_has_one_colour_in_val_curves_and_grad_flow(real):
    from matplotlib.colors import to_rgba

    from dropcli.report.figures import sweep as plots_sweep

    groups = real_groups(real["variants"])
    curves = plots_sweep.val_curves_figure(groups, "t")
    flow = plots_sweep.grad_flow_figure(groups, "t")
    for keep in ("0.5", "1"):
        in_curves = {to_rgba(line.get_color()) for ax in curves.axes for line in ax.get_lines()
                     if line.get_label().startswith(f"keep_prob {keep} ")}
        in_flow = {to_rgba(line.get_color()) for line in flow.axes[1].get_lines()
                   if f"keep_prob={keep} " in line.get_label()}
        assert len(in_curves) == 1 and in_curves == in_flow, (keep, in_curves, in_flow)


def test_diagnostics_colour_hidden_layers_like_their_weights(real):
    from matplotlib.colors import to_rgba

    from dropcli.report.figures.diagnostics import DIAGNOSTICS
    from dropcli.report.figures.template import figure

    fig = figure(DIAGNOSTICS, real_run(real["variants"], dropout__variant="inverted", dropout__keep_prob=0.5, seed=0))
    colour = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            colour.setdefault(line.get_label(), set()).add(to_rgba(line.get_color()))
    assert all(len(c) == 1 for c in colour.values()), colour
    assert colour["h1"] == colour["W1"] and colour["h2"] == colour["W2"] != colour["W3"]
    dead = next(ax for ax in fig.axes if "dead" in ax.get_title())
    assert "fraction" in dead.get_title() and "fraction" in dead.get_ylabel()


# --- the figure against a numeric axis (vs_<axis>.png) ------------------------------------


@pytest.fixture(scope="module")
def data_size(tmp_path_factory):
    """A fake data-size sweep: num_train 100 / 1000 / 3000 (a factor of 30) x keep_prob 0.5 / 1
    x seeds 0, 1, 2, and a learning-rate sweep over a factor of 3, plotted."""
    from runstore_fixtures import BASE, write_sweep

    root = tmp_path_factory.mktemp("axis")
    sizes, _ = write_sweep(root, "size", BASE, {"data.num_train": [100, 1000, 3000], "dropout.keep_prob": [0.5, 1.0],
                                                "seed": [0, 1, 2]})
    rates, _ = write_sweep(root, "lr", BASE, {"train.learning_rate": [0.001, 0.003], "seed": [0, 1]})
    (sizes / "vs_reg.png").write_bytes(b"left by a sweep over model.reg")  # stale: removed by plot
    return sizes, rates, plot_all(root)


def test_a_numeric_axis_gets_its_figure_in_the_report(data_size):
    sizes, rates, result = data_size
    assert not result.warnings, result.warnings
    for sweep, name in ((sizes, "vs_num_train.png"), (rates, "vs_learning_rate.png")):
        assert_png(sweep / name)
        assert sweep / name in result.files
        for report in (sweep / "report.md", sweep / "report.html", sweep.parent / "report.md"):
            found = links(report)
            assert any(unquote(h).endswith(name) for h in found), (report, name)
            for href in found:
                assert (report.parent / unquote(href)).exists(), f"{report}: broken link {href}"
    assert not (sizes / "vs_reg.png").exists()
    assert not list(sizes.parent.glob("*/vs_keep_prob.png")) and not list(sizes.parent.glob("*/vs_seed.png"))


def test_the_axis_figure_has_one_line_per_keep_prob_with_bands_on_a_log_axis(data_size):
    from dropcli.report.figures.axis import axis_figure

    sizes, rates, _ = data_size
    groups = real_groups(sizes)
    assert groups.numeric_axes() == ["data.num_train"]
    fig = axis_figure(groups, "data.num_train", "t")
    accuracy, gap = fig.axes[:2]
    for ax, metric in ((accuracy, "final_val"), (gap, "gap")):
        assert ax.get_xscale() == "log"  # 100 to 3000 spans a factor of 30
        assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "1000", "3000"]
        lines = {line.get_label().split(" (N")[0]: line for line in ax.get_lines()
                 if not line.get_label().startswith("_")}  # not the zero line
        assert set(lines) == {"keep_prob 0.5 (drop rate 0.5)", "keep_prob 1 (drop rate 0)"}
        for line in lines.values():
            keep = 0.5 if "0.5" in line.get_label() else 1.0
            at = {g.value("data.num_train"): 100 * g.stat(metric).mean for g in groups.groups if g.keep_prob == keep}
            np.testing.assert_allclose(line.get_xdata(), [100, 1000, 3000])
            np.testing.assert_allclose(line.get_ydata(), [at[n] for n in (100, 1000, 3000)])
        bands = [c for c in ax.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")]
        assert len(bands) == 2  # one 95% band per keep_prob
    assert "num_train (log scale)" == accuracy.get_xlabel()
    lr = axis_figure(real_groups(rates), "train.learning_rate", "t")
    assert lr.axes[0].get_xscale() == "linear"  # 0.001 to 0.003: a factor of 3
    assert "keep_prob 0.5 (drop rate 0.5) in every run" in lr._suptitle.get_text().replace("\n", " ")


def test_only_numeric_axes_other_than_keep_prob_get_the_figure(plotted):
    from dropcli.report.figures.axis import axis_figures

    store, _ = plotted
    assert axis_figures(real_groups(store.sweep)) == []  # keep_prob and seed only
    assert axis_figures(real_groups(store.grid)) == []  # variant and normalization are not numbers
    assert not list(store.root.glob("*/vs_*.png"))
