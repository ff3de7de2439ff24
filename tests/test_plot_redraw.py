"""`dropcli plot` draws each figure again exactly when what it shows may have changed, draws
the same pixels in worker processes as in one, and writes valid PNGs. Real runs, trained
here (a second), plotted for real."""

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.report import stamps
from dropcli.report.figures.common import png_stamp
from dropcli.report.plot import plot_all

CONFIG = """\
name: redraw
seed: 0
data: {dataset: digits, num_train: 200, num_val: 100}
model: {hidden_dims: [16, 16]}
train: {epochs: 4, batch_size: 50}
sweep:
  dropout.keep_prob: [0.5, 1.0]
  seed: [0, 1, 2]
"""


def train_sweep(root: Path, name: str = "redraw") -> Path:
    from dropcli.config import load_config
    from dropcli.sweep.grid import plan_sweep
    from dropcli.sweep.run import run_sweep

    config = root / f"{name}.yaml"
    config.write_text(CONFIG.replace("name: redraw", f"name: {name}"))
    plan = plan_sweep(load_config(config), root / "runs")
    assert {s["status"] for s in run_sweep(plan)} == {"completed"}
    return plan.path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two real sweeps of 6 runs each, never plotted: each test copies them."""
    root = tmp_path_factory.mktemp("trained")
    train_sweep(root, "redraw")
    train_sweep(root, "other")
    return root / "runs"


@pytest.fixture
def runs(trained, tmp_path):
    import shutil

    shutil.copytree(trained, tmp_path / "runs")
    return tmp_path / "runs"


def sweep_of(root: Path, name: str) -> Path:
    return next(p for p in root.iterdir() if p.name.startswith(f"{name}-sweep-"))


def pngs(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*.png"))}


def drawn(result) -> set[Path]:
    return {p for p in result.files if p.suffix == ".png"}


def test_every_png_is_a_valid_stamped_png_and_every_link_resolves(runs):
    import matplotlib.image
    from PIL import Image

    result = plot_all(runs)
    assert not result.warnings, result.warnings
    files = pngs(runs)
    # per run: curves, diagnostics, expectation (keep_prob 0.5 only); per sweep: 4 figures
    assert len(files) == 2 * (6 * 2 + 3 + 4)
    for path in files:
        with Image.open(path) as im:
            im.verify()  # chunk CRCs and structure
        pixels = matplotlib.image.imread(path)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and float(np.var(pixels)) > 0, path
        assert png_stamp(path) is not None, path
    for report in sorted(runs.rglob("report.md")) + sorted(runs.rglob("report.html")):
        text = report.read_text()
        for href in (re_links(text, report.suffix)):
            assert (report.parent / unquote(href)).exists(), f"{report}: broken link {href}"


def re_links(text: str, suffix: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="([^"]+)"', text) if suffix == ".html" else re.findall(r"\]\(([^)\s]+)\)", text)


def test_worker_processes_draw_the_same_files_as_one_process(runs):
    plot_all(runs, processes=1)
    one = pngs(runs)
    result = plot_all(runs, force=True, processes=2)
    assert drawn(result) == set(one)
    assert pngs(runs) == one


def test_a_run_drawn_over_its_template_looks_like_the_template_drawn_whole(runs):
    """The blitted PNG (the shared background drawn once, the run's artists over it) against
    the same template with the run's data drawn in one go: the same picture, but for the
    order of overlapping artists (a bar over the zero line)."""
    from matplotlib.image import imread

    from dropcli.report.figures.common import save_figure
    from dropcli.report.figures.template import render
    from dropcli.report.render import RUN_FIGURES
    from dropcli.store.runs import read_run

    sweep = sweep_of(runs, "redraw")
    group = [read_run(p) for p in sorted(sweep.iterdir()) if (p / "config.yaml").exists()]
    for name, kind in RUN_FIGURES.items():
        members = [r for r in group if kind.applies(r)]
        run, limits = members[-1], kind.limits(members)
        blitted, whole = runs / f"blit-{name}", runs / f"whole-{name}"
        assert render(kind.template(kind.signature(run), limits), [(run, blitted, "s")]) == ([blitted], [])
        template = kind.template(kind.signature(run), limits)
        template.update(run)
        save_figure(template.fig, whole)
        a, b = imread(blitted), imread(whole)
        assert a.shape == b.shape
        differ = np.any(np.abs(a - b) > 0.02, axis=-1).mean()
        assert differ < 0.003, (name, differ)


def test_a_second_plot_of_an_unchanged_store_draws_nothing_and_loads_no_matplotlib(runs):
    plot_all(runs)
    code = ("import sys; from pathlib import Path; from dropcli.report.plot import plot_all; "
            f"r = plot_all(Path({str(runs)!r})); "
            "assert not [p for p in r.files if p.suffix == '.png'], r.files; "
            "assert 'matplotlib' not in sys.modules; print(len(r.unchanged))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(pngs(runs))


def test_a_resumed_run_is_drawn_again_with_the_seeds_it_shares_its_axes_with(runs):
    plot_all(runs)
    sweep, other = sweep_of(runs, "redraw"), sweep_of(runs, "other")
    run = next(p for p in sorted(sweep.iterdir()) if (p / "expectation.json").exists())
    metrics = run / "metrics.jsonl"
    last = json.loads(metrics.read_text().splitlines()[-1])
    metrics.write_text(metrics.read_text() + json.dumps({**last, "epoch": last["epoch"] + 3}) + "\n")  # resumed
    result = plot_all(runs)
    again = drawn(result)
    # Its epochs axis grew: every run figure of its sweep that shares the axis is drawn again,
    # and the sweep's figures; the other sweep is left alone.
    assert {run / "curves.png", run / "diagnostics.png", run / "expectation.png"} <= again
    assert {p / "curves.png" for p in sweep.iterdir() if (p / "config.yaml").exists()} <= again
    assert (sweep / "val_curves.png") in again
    assert not {p for p in again if other in p.parents}
    assert all(other in p.parents or p.name == "expectation.png" for p in result.unchanged)


def test_a_new_dropcli_or_a_png_without_a_stamp_is_drawn_again(runs, monkeypatch):
    plot_all(runs)
    sweep = sweep_of(runs, "redraw")
    run = next(p for p in sorted(sweep.iterdir()) if (p / "config.yaml").exists())
    (run / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # an older dropcli's, or a torn copy
    assert drawn(plot_all(runs)) == {run / "curves.png"}
    import dropcli.version

    monkeypatch.setattr(dropcli.version, "__version__", "99.0")
    stamps.code_digest.cache_clear()
    try:
        assert drawn(plot_all(runs)) == set(pngs(runs))
    finally:
        stamps.code_digest.cache_clear()


def test_a_figure_that_no_longer_applies_is_removed_and_not_linked(runs):
    plot_all(runs)
    sweep = sweep_of(runs, "redraw")
    run = next(p for p in sorted(sweep.iterdir()) if (p / "expectation.png").exists())
    expectation = json.loads((run / "expectation.json").read_text())
    (run / "expectation.json").write_text(json.dumps({**expectation, "layers": []}))
    plot_all(runs)
    assert not (run / "expectation.png").exists()
    for page in (run / "report.md", run / "report.html", sweep / "report.md", sweep / "report.html"):
        assert f"{run.name}/expectation.png" not in page.read_text() and "](expectation.png)" not in page.read_text()


def test_a_new_mc_eval_shows_in_the_run_report(runs):
    plot_all(runs)
    run = next(p for p in sorted(sweep_of(runs, "redraw").iterdir()) if (p / "expectation.png").exists())
    assert "Monte-Carlo" not in (run / "report.md").read_text()
    result = CliRunner().invoke(app, ["eval", str(run), "--mc", "1,3", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    plot_all(runs)
    report = (run / "report.md").read_text()
    assert "## Weight scaling vs Monte-Carlo averaging" in report and "](mc_eval.png)" in report
