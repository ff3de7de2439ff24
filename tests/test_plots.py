"""`dropcli plot`: figures and reports over a fake runs store (tests/runstore_fixtures.py)."""

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from dropcli import plots_run, stats
from dropcli.errors import RunStoreError
from dropcli.report import plot_all
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
        assert str((run / "report.md").relative_to(store.root)) in html
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
    from dropcli import stats

    for df in (1, 2, 5, 30):
        assert stats.t_critical(df) == pytest.approx(stats._T95[df - 1], abs=1e-3)
    stats.t_critical.cache_clear()
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import now fails
    try:
        assert stats.t_critical(2) == 4.303
        assert stats.t_critical(100) == 1.96
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
    victim = small_store.runs[(0.5, 0)]

    def flaky(run, path):
        if run.path == victim:
            raise ValueError("bad numbers")
        return original(run, path)

    original = plots_run.plot_run_curves
    monkeypatch.setattr(plots_run, "plot_run_curves", flaky)
    result = plot_all(small_store.root)
    assert any(victim.name in w and "bad numbers" in w for w in result.warnings)
    assert_png(small_store.runs[(0.5, 1)] / "curves.png")
    for report in (small_store.root / "report.md", small_store.root / "report.html"):
        for href in links(report):
            assert (report.parent / unquote(href)).exists(), href


# --- speed, rerun, imports ---------------------------------------------------------------


def test_a_second_plot_redraws_only_what_changed(small_store):
    first = plot_all(small_store.root)
    assert not first.unchanged
    changed = small_store.runs[(0.5, 0)]
    time.sleep(0.01)
    (changed / "summary.json").write_text((changed / "summary.json").read_text())
    second = plot_all(small_store.root)
    redrawn = {p for p in second.files if p.suffix == ".png" and p.parent.parent == small_store.sweep}
    assert redrawn == {changed / "curves.png", changed / "expectation.png"}
    assert len(second.unchanged) == len([p for p in first.files if p.name in ("curves.png", "expectation.png")]) - 2
    assert {p.name for p in second.files} >= {"report.md", "report.html", "keep_prob.png"}
    forced = plot_all(small_store.root, force=True)
    assert not forced.unchanged


def test_a_running_run_is_redrawn_every_time(plotted):
    store, _ = plotted
    again = plot_all(store.root)
    assert store.singles["running"] / "curves.png" in again.files
    assert store.singles["completed"] / "curves.png" in again.unchanged


def test_twelve_run_sweep_plots_quickly(tmp_path):
    store = make_store(tmp_path / "runs", grid=False, singles=False)
    progress = []
    started = time.perf_counter()
    plot_all(store.root, on_progress=lambda done, total, label: progress.append((done, total)))
    cold = time.perf_counter() - started
    started = time.perf_counter()
    plot_all(store.root)
    warm = time.perf_counter() - started
    assert progress[-1][0] == progress[-1][1] == 12 + 1 + 1
    # Target: well under 5 s cold on a laptop; the bound leaves room for slow shared CI machines.
    assert cold < 10.0, f"plotting 12 runs took {cold:.1f}s"
    assert warm < 2.5, f"re-plotting 12 unchanged runs took {warm:.1f}s"


def test_importing_the_report_does_not_import_matplotlib():
    code = "import sys, dropcli, dropcli.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
