"""What `dropcli plot` and the terminal tables say, over real runs trained into a tmp folder:
test accuracy, comparisons paired by seed, HTML pages, and tables that never cut a run id."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.report.plot import plot_all
from dropcli.report.format import pm
from dropcli.store.runs import read_run
from dropcli.evidence.stats import mean_ci

runner = CliRunner()
T95 = {1: 12.7062047, 2: 4.3026527}  # 97.5% quantiles of Student's t, from a printed table
# A long name, as real configs have: run ids are 37 characters wide.
CONFIG = """\
name: a-rather-long-experiment-name
seed: 0
data: {dataset: digits, num_train: 200, num_val: 100}
model: {hidden_dims: [32]}
dropout: {keep_prob: 0.5}
train: {epochs: 3, batch_size: 50, learning_rate: 0.005}
"""


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def dropcli(*args, columns):
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run([sys.executable, "-m", "dropcli", *map(str, args)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """variant inverted/vanilla x keep_prob 0.5/1 x seeds 0, 1, 2, a sweep without keep_prob 1,
    and a single run; plotted."""
    tmp = tmp_path_factory.mktemp("reports")
    config = tmp / "long.yaml"
    config.write_text(CONFIG)
    root = tmp / "runs"
    invoke("sweep", config, "--variant", "inverted,vanilla", "--keep", "0.5,1", "--seeds", "0,1,2", "--runs-dir", root)
    invoke("sweep", config, "--keep", "0.5", "--seeds", "0,1", "--set", "model.hidden_dims=[24]", "--runs-dir", root)
    invoke("train", config, "--runs-dir", root, "--set", "seed=7")
    sweeps = sorted(p for p in root.iterdir() if (p / "sweep.yaml").exists())
    main, no_baseline = sorted(sweeps, key=lambda p: -len(list(p.glob("*/summary.json"))))
    return root, main, no_baseline, plot_all(root)


def summaries(sweep: Path) -> list[dict]:
    out = []
    for path in sorted(sweep.glob("*/summary.json")):
        config = read_run(path.parent).config
        out.append({**json.loads(path.read_text()), "seed": config["seed"], "variant": config["dropout"]["variant"]})
    return out


def expected(values) -> str:
    """mean ± 95% CI in %, computed here with a printed t table."""
    x = np.array(values)
    ci = T95[len(x) - 1] * x.std(ddof=1) / math.sqrt(len(x))
    text = f"{100 * x.mean():+.2f} ± {100 * ci:.2f}"
    return text if f"{100 * ci:.2f}" != "0.00" else text + " ("


def table(report: Path, header_start: str) -> list[dict]:
    """The first Markdown table of ``report`` whose header starts with ``header_start``,
    as one dict per row."""
    lines = report.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_start}"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


# --- what the sweep report says ----------------------------------------------------------------


def test_test_accuracy_is_a_column_with_its_caption(store):
    root, main, _, _ = store
    rows = table(main / "report.md", "variant |")
    assert list(rows[0])[:6] == ["variant", "keep_prob", "drop rate", "final val acc", "best val acc", "test acc"]
    runs = summaries(main)
    for row in rows:
        accs = [s["test"]["acc"] for s in runs
                if s["variant"] == row["variant"] and f"{s['keep_prob']:g}" == row["keep_prob"]]
        assert len(accs) == 3 and row["N"] == "3"
        assert row["test acc"].startswith(expected(accs).lstrip("+")), row
    text = (main / "report.md").read_text()
    assert "Best val acc is optimistic, because that epoch was chosen on it" in text
    assert "| test acc |" in (root / "report.md").read_text()  # the index shows the same table


def test_did_dropout_help_pairs_each_seed_with_its_keep_prob_1_twin(store):
    _, main, _, _ = store
    section = main / "report.md"
    assert "## Did dropout help? Paired by seed against keep_prob = 1" in section.read_text()
    rows = table(section, "variant | keep_prob | drop rate | Δ final val acc | Δ test acc | N pairs |")
    assert [(r["variant"], r["keep_prob"]) for r in rows] == [("inverted", "0.5"), ("vanilla", "0.5")]
    runs = summaries(main)
    for row in rows:
        twin = {s["seed"]: s for s in runs if s["variant"] == row["variant"] and s["keep_prob"] == 1}
        mine = [s for s in runs if s["variant"] == row["variant"] and s["keep_prob"] == 0.5]
        for column, read in (("Δ final val acc", lambda s: s["final"]["val_acc"]),
                             ("Δ test acc", lambda s: s["test"]["acc"])):
            diffs = [read(s) - read(twin[s["seed"]]) for s in mine]
            assert row[column].startswith(expected(diffs)), (column, row[column], diffs)
        assert row["N pairs"] == "3" and row["drop rate"] == "0.5"


def test_variants_are_compared_per_keep_prob_paired_by_seed(store):
    _, main, _, _ = store
    text = (main / "report.md").read_text()
    section = text.split("## Inverted vs vanilla")[1].split("## Runs")[0]
    rows = table(main / "report.md", "variants |")
    assert [(r["variants"], r["keep_prob"]) for r in rows] == [("vanilla - inverted", "0.5")]  # keep_prob 1: one net
    runs = summaries(main)
    ref = {s["seed"]: s for s in runs if s["variant"] == "inverted" and s["keep_prob"] == 0.5}
    diffs = [s["test"]["acc"] - ref[s["seed"]]["test"]["acc"] for s in runs if s["variant"] == "vanilla"
             and s["keep_prob"] == 0.5]
    assert rows[0]["Δ test acc"].startswith(expected(diffs)) and rows[0]["N pairs"] == "3"
    assert "| inverted |" in section and "| vanilla |" in section  # the expectation check per variant
    assert "over all their keep_probs" not in section  # no pooled interval over keep_probs


def test_a_sweep_without_keep_prob_1_says_it_has_no_baseline(store):
    _, _, no_baseline, _ = store
    text = (no_baseline / "report.md").read_text()
    assert "## Verdict\n\n- This sweep has no keep_prob = 1 (no dropout) runs to compare with" in text
    assert text.count("no keep_prob = 1 (no dropout) runs") == 1  # said once, in the verdict
    assert "| keep_prob | drop rate | Δ" not in text


def test_an_interval_of_zero_says_the_seeds_tied():
    assert pm(mean_ci([0.9, 0.9, 0.9])) == "90.00 ± 0.00 (all 3 seeds tied)"
    assert pm(mean_ci([0.0, 0.0]), signed=True) == "+0.00 ± 0.00 (both seeds tied)"
    assert pm(mean_ci([0.01, 0.01, 0.01]), signed=True) == "+1.00 ± 0.00 (the same Δ for all 3 seeds)"
    assert pm(mean_ci([0.9, 0.8])).endswith(")") is False


def test_run_report_labels_and_index_grammar(store):
    root, main, _, _ = store
    run = next(p for p in sorted(main.iterdir()) if (p / "expectation.json").exists()
               and json.loads((p / "expectation.json").read_text())["layers"])
    assert "| dropped fraction (of non-zero inputs) |" in (run / "report.md").read_text()
    index = (root / "report.md").read_text()
    assert "in 2 sweeps and 1 single run;" in index
    assert "1 runs" not in index and "1 sweeps" not in index


# --- HTML ---------------------------------------------------------------------------------------


def test_every_run_and_sweep_has_an_html_page_that_report_html_links(store):
    root, main, no_baseline, result = store
    runs = sorted(p.parent for p in root.rglob("summary.json"))
    assert len(runs) == 12 + 2 + 1
    pages = [run / "report.html" for run in runs] + [main / "report.html", no_baseline / "report.html"]
    for page in pages:
        assert page.is_file() and page in result.files, page
        assert page.read_text().startswith("<!DOCTYPE html>")
    index = (root / "report.html").read_text()
    hrefs = re.findall(r'href="([^"]+)"', index)
    assert not [h for h in hrefs if h.endswith(".md")], "report.html links Markdown"
    for page in pages:
        assert str(page.relative_to(root)) in hrefs, page
    sweep_page = (main / "report.html").read_text()
    assert all(f"{run.name}/report.html" in sweep_page for run in runs if run.parent == main)
    assert "report.html)" not in (main / "report.md").read_text()  # the Markdown still links Markdown
    assert not list(root.rglob("*.tmp"))


def test_a_figure_the_sweep_does_not_get_is_not_linked(tmp_path, monkeypatch):
    from dropcli.report import render

    config = tmp_path / "long.yaml"
    config.write_text(CONFIG)
    root = tmp_path / "runs"
    invoke("sweep", config, "--variant", "inverted,vanilla", "--seeds", "0", "--runs-dir", root)
    (sweep,) = [p for p in root.iterdir() if p.is_dir()]
    (sweep / "keep_prob.png").write_bytes(b"drawn by an older dropcli")
    monkeypatch.setitem(render.SWEEP_FIGURES, "keep_prob.png", lambda groups, title: None)  # keep_prob not swept
    plot_all(root)
    assert not (sweep / "keep_prob.png").exists()
    for page in (sweep / "report.md", sweep / "report.html", root / "report.md", root / "report.html"):
        assert "keep_prob.png" not in page.read_text(), page
        for href in re.findall(r'(?:src="|\]\()([^")]+\.png)', page.read_text()):
            assert (page.parent / unquote(href)).is_file(), (page, href)


def test_every_link_of_every_html_page_resolves(store):
    root = store[0]
    pages = sorted(root.rglob("*.html"))
    assert len(pages) == 15 + 2 + 1
    for page in pages:
        for href in re.findall(r'(?:src|href)="([^"]+)"', page.read_text()):
            assert not href.startswith(("/", "http:", "file:")), (page, href)
            assert (page.parent / unquote(href)).exists(), f"{page}: broken link {href}"


def test_run_folders_hold_only_runs_store_files_after_plot(store):
    root = store[0]
    for summary in root.rglob("summary.json"):
        assert not [w for w in read_run(summary.parent).warnings if "not a dropcli file" in w]


# --- terminal tables ----------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 120])
def test_runs_shows_whole_run_ids_grouped_by_sweep_with_drop_rate(store, columns):
    root, main, _, _ = store
    out = dropcli("runs", root, columns=columns)
    assert "…" not in out
    assert out.count(main.name) == 1  # the sweep once, as a heading
    flat = " ".join(out.split())
    assert f"sweep {main.name}: 12 runs" in flat and ": 1 run;" in flat
    for summary in root.rglob("summary.json"):
        s = json.loads(summary.read_text())
        run_id = summary.parent.name
        # the whole id, then keep_prob and (where the terminal has room) drop rate beside it
        rate = rf"\s+{1 - s['keep_prob']:g}" if columns >= 120 else ""
        assert re.search(rf"^{run_id}\s+{s['keep_prob']:g}{rate}\s", out, re.M), (run_id, out)
    assert max(map(len, out.splitlines())) <= columns


def test_runs_lists_a_sweep_in_grid_order(store):
    root, main, _, _ = store
    out = dropcli("runs", root, columns=200)
    block = out.split(f"sweep {main.name}")[1].split("\n\n")[0]
    ids = re.findall(r"^(a-rather-long-experiment-name-\S+-\w{8})\s", block, re.M)
    spec = main / "sweep.yaml"
    assert ids == [r["run_id"] for r in yaml.safe_load(spec.read_text())["runs"]]


@pytest.mark.parametrize("columns", [80, 120])
def test_sweep_table_fits_and_keeps_drop_rate_beside_keep_prob(tmp_path, columns):
    config = tmp_path / "long.yaml"
    config.write_text(CONFIG)
    out = dropcli("sweep", config, "--variant", "inverted,vanilla", "--keep", "0.5,1", "--seeds", "0,1",
                  "--runs-dir", tmp_path / "runs", columns=columns)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines() if str(tmp_path) not in line) <= columns  # paths: whole
    assert len(re.findall(r"^(inverted|vanilla)\s+0\.5\s+0\.5\s+[01]\s", out, re.M)) == 4
    assert len(re.findall(r"^(inverted|vanilla)\s+1\s+0\s+[01]\s", out, re.M)) == 4
    assert re.search(r"; all: .*\bstatus completed", " ".join(out.split()))
    # under the table, the verdict: the sentences the sweep's report starts with
    from dropcli.report.verdict import sweep_verdict

    (sweep,) = (tmp_path / "runs").glob("*-sweep-*")
    sentences = sweep_verdict(sweep)
    assert [s.split(",")[0] for s in sentences] == ["With variant=inverted", "With variant=vanilla"]
    flat = " ".join(out.split())
    assert flat.index("status completed") < flat.index("verdict (paired by seed against keep_prob 1")
    assert all(f"- {s}" in flat for s in sentences), (sentences, out)


def test_train_summary_shows_variant_normalization_and_seed(tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(CONFIG)
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--set", "seed=5",
                                 "--set", "dropout.variant=vanilla", "--set", "model.normalization=layernorm"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert re.search(r"variant / normalization\s+│\s+vanilla / layernorm", result.stdout), result.stdout
    assert re.search(r"│ seed\s+│\s+5 ", result.stdout), result.stdout


def test_a_paired_difference_that_rounds_to_zero_has_no_minus_sign():
    from dropcli.report.format import pm
    from dropcli.evidence.stats import Stat

    assert pm(Stat(-1e-9, 0.0379, 3), signed=True) == "+0.00 ± 3.79"
    assert pm(Stat(-0.0123, 0.01, 3), signed=True) == "-1.23 ± 1.00"
    assert pm(Stat(-0.0, 0.0, 3), signed=True) == "+0.00 ± 0.00 (all 3 seeds tied)"


# --- examples and early stopping (summary.json's "examples", "patience", "stopped_early") -------

PATIENT = """\
name: patient-runs-with-a-long-name
seed: 0
data: {dataset: digits, num_train: 200, num_val: 100}
model: {hidden_dims: [32]}
train: {epochs: 40, batch_size: 50, learning_rate: 0.01, patience: 2}
"""


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """keep_prob 0.5 / 1 x seeds 0, 1 with train.patience 2 on a digits subsample, and one
    run whose summary.json is made to look like an older dropcli's; plotted."""
    tmp = tmp_path_factory.mktemp("patient")
    config = tmp / "patient.yaml"
    config.write_text(PATIENT)
    root = tmp / "runs"
    invoke("sweep", config, "--keep", "0.5,1", "--seeds", "0,1", "--runs-dir", root)
    (sweep,) = [p for p in root.iterdir() if p.is_dir()]
    runs = sorted(p for p in sweep.iterdir() if (p / "summary.json").exists())
    old = runs[-1]
    summary = json.loads((old / "summary.json").read_text())
    for key in ("examples", "patience", "stopped_early", "stop_reason"):
        summary.pop(key, None)
    (old / "summary.json").write_text(json.dumps(summary))
    plot_all(root)
    return sweep, runs[:-1], old


def test_run_report_says_how_many_examples_and_why_training_stopped(patient):
    sweep, runs, old = patient
    stopped = 0
    for run in runs:
        s = json.loads((run / "summary.json").read_text())
        ex = s["examples"]
        assert ex["train"] < ex["train_pool"] and ex["val"] < ex["val_pool"]  # num_train / num_val subsample
        row = {cells[0]: cells[1] for cells in
               (line.strip("|").split("|") for line in (run / "report.md").read_text().splitlines()[:30]
                if line.startswith("| ")) for cells in [[c.strip() for c in cells]]}
        assert row["examples"] == (f"train {ex['train']:,} of {ex['train_pool']:,} · val {ex['val']:,} of "
                                   f"{ex['val_pool']:,} · test {ex['test']:,}")
        if s["stopped_early"]:
            stopped += 1
            assert row["epochs completed"] == (f"stopped early at epoch {s['epochs_completed']} of {s['epochs']}: "
                                               f"{s['stop_reason']}")
        else:
            assert row["epochs completed"] == f"{s['epochs']} / {s['epochs']} (patience 2: did not stop early)"
    assert stopped, "no run stopped early: the test shows nothing"
    old_report = (old / "report.md").read_text()
    assert "| examples |" not in old_report and "stopped early" not in old_report and "patience" not in old_report


def test_sweep_table_has_train_and_val_n_and_the_epochs_patience_stopped_at(patient):
    sweep, runs, old = patient
    rows = {r["run"].split("]")[0].lstrip("["): r for r in table(sweep / "report.md", "run")}
    for run in runs:
        s = json.loads((run / "summary.json").read_text())
        ex, row = s["examples"], rows[run.name]
        assert row["train n"] == f"{ex['train']:,} of {ex['train_pool']:,}"
        assert row["val n"] == f"{ex['val']:,} of {ex['val_pool']:,}"
        assert row["epochs"] == f"{s['epochs_completed']}/{s['epochs']}" + (" early stop" if s["stopped_early"] else "")
    assert rows[old.name]["train n"] == rows[old.name]["val n"] == "-"


def test_sweep_report_says_what_patience_saved(patient):
    sweep, runs, old = patient
    from dropcli.store.early_stop import patience_savings

    saved = patience_savings([json.loads((r / "summary.json").read_text()) for r in [*runs, old]])
    text = " ".join((sweep / "report.md").read_text().split())
    assert (f"train.patience stopped {saved['stopped']} of {saved['runs']} runs early: about {saved['saved_s']:.1f} s "
            "of training saved") in text
    assert text.count("train.patience stopped") == 1
    index = " ".join((sweep.parent / "report.md").read_text().split())
    assert "train.patience stopped" in index  # the index shows each sweep's report head


def test_without_patience_there_is_no_patience_line(store):
    root, main, _, _ = store
    assert "train.patience" not in (main / "report.md").read_text()
