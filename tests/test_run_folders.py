"""Run folders named by what varies (schema_version 2), and runs stores written before
(schema_version 1, ``tests/fixtures/runs_schema1``) still read, resumed and reused."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.config import config_hash, load_config
from dropcli.store.layout import SCHEMA_VERSION, run_key
from dropcli.store.sweeps import read_sweep
from dropcli.sweep.grid import run_folder

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / "config.yaml").is_file())


def test_a_sweeps_run_folders_say_what_varies_and_end_in_the_runs_hash(tiny_config, tmp_path):
    result = invoke("sweep", tiny_config, "--keep", "0.25,1", "--seeds", "0,2", "--variant", "inverted",
                    "-j", "1", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (sweep,) = (tmp_path / "runs").glob("tiny-sweep-*")
    names = [p.name for p in run_dirs(sweep)]
    # the single-valued axis (variant) says nothing; seed comes last
    assert [n.rsplit("-", 1)[0] for n in names] == ["tiny-keep0.25-seed0", "tiny-keep0.25-seed2",
                                                   "tiny-keep1-seed0", "tiny-keep1-seed2"]
    for path in run_dirs(sweep):
        assert run_key(path.name) == config_hash(load_config(path / "config.yaml"))
        assert json.loads((path / "summary.json").read_text())["run_id"] == path.name
    spec = yaml.safe_load((sweep / "sweep.yaml").read_text())
    assert spec["schema_version"] == SCHEMA_VERSION == 2
    assert sorted(r["run_id"] for r in spec["runs"]) == names


def test_a_single_train_keeps_name_and_hash(tiny_config, tmp_path):
    result = invoke("train", tiny_config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path / "runs")
    assert run.name == f"tiny-{config_hash(load_config(tiny_config))}"


def test_folder_names_are_sanitised_short_and_readable():
    key = "1a2b3c4d"
    assert run_folder("mnist1d", key, {"dropout.keep_prob": 0.25, "seed": 2}) == "mnist1d-keep0.25-seed2-1a2b3c4d"
    assert run_folder("m", key, {"model.hidden_dims": (256, 256), "model.max_norm": None,
                                 "dropout.variant": "gaussian", "model.reg": 1e-3}) == \
        "m-h256x256-maxnormoff-gaussian-reg0.001-1a2b3c4d"
    hostile = run_folder("x" * 64, key, {"data.path": "../../etc/passwd", "train.learning_rate": 1e-5})
    assert "/" not in hostile and not hostile.startswith(".") and len(hostile) <= 73
    assert run_key(hostile) == key
    assert run_folder("plain", key, {}) == "plain-1a2b3c4d"


def test_a_run_trained_alone_is_linked_into_a_sweep_under_its_new_name(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    assert invoke("train", tiny_config, "--runs-dir", runs).exit_code == 0
    result = invoke("sweep", tiny_config, "--keep", "0.5,1", "-j", "1", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (sweep,) = runs.glob("tiny-sweep-*")
    linked = next(p for p in run_dirs(sweep) if p.name.startswith("tiny-keep0.5-"))
    summary = json.loads((linked / "summary.json").read_text())
    assert summary["reused_from"] == f"tiny-{run_key(linked.name)}" and summary["run_id"] == linked.name


# --- a runs folder written by dropcli before schema_version 2 --------------------------------


def old_store(tmp_path) -> tuple[Path, Path]:
    """A copy of the fixture: a 2-run sweep and a single run written by the dropcli of
    commit e7a0b55 (run folders ``<name>-<hash8>``), and the config that made them."""
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "runs_schema1", runs)
    config = tmp_path / "tiny.yaml"
    shutil.copy(FIXTURES / "runs_schema1_tiny.yaml", config)
    return runs, config


def fingerprint(runs: Path) -> dict:
    """Every trained file's inode and modification time: changed if a run is trained again."""
    return {str(p.relative_to(runs)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in runs.rglob("params.npz")}


def test_an_old_sweep_is_resumed_in_place_and_nothing_is_retrained(tmp_path):
    runs, config = old_store(tmp_path)
    before = fingerprint(runs)
    proc = subprocess.run([sys.executable, "-m", "dropcli", "sweep", str(config), "--runs-dir", str(runs)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("skipped (completed)") >= 1 and "sweep tiny-sweep-73796c5f" in proc.stderr
    assert fingerprint(runs) == before
    assert sorted(p.name for p in runs.iterdir()) == ["tiny-ca57b1e7", "tiny-sweep-73796c5f"]
    assert [p.name for p in run_dirs(runs / "tiny-sweep-73796c5f")] == ["tiny-004071d4", "tiny-84ffe6a6"]
    spec = yaml.safe_load((runs / "tiny-sweep-73796c5f" / "sweep.yaml").read_text())
    assert [r["run_id"] for r in spec["runs"]] == ["tiny-004071d4", "tiny-84ffe6a6"]
    assert spec["schema_version"] == 1  # a sweep keeps the version it was created with

    again = subprocess.run([sys.executable, "-m", "dropcli", "train", str(config), "--set", "seed=1",
                            "--runs-dir", str(runs)], capture_output=True, text=True)
    assert again.returncode == 0 and "already completed" in again.stderr, again.stderr
    assert fingerprint(runs) == before


def test_an_old_store_is_listed_plotted_and_evaluated(tmp_path):
    runs, _ = old_store(tmp_path)
    listed = invoke("runs", runs)
    assert listed.exit_code == 0, listed.output
    for name in ("tiny-ca57b1e7", "tiny-004071d4", "tiny-84ffe6a6"):
        assert name in listed.output
    plotted = invoke("plot", runs)
    assert plotted.exit_code == 0, plotted.output
    assert (runs / "tiny-sweep-73796c5f" / "tiny-004071d4" / "report.md").is_file()
    evaluated = invoke("eval", runs / "tiny-sweep-73796c5f" / "tiny-004071d4", "--mc", "1,5", "--repeats", "2")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((runs / "tiny-sweep-73796c5f" / "tiny-004071d4" / "mc_eval.json").read_text())["run_id"] == \
        "tiny-004071d4"


def test_a_run_added_to_an_old_sweep_is_named_the_old_way(tmp_path):
    runs, config = old_store(tmp_path)
    (runs / "tiny-sweep-73796c5f" / "tiny-84ffe6a6").rename(tmp_path / "gone")  # as if never trained
    assert invoke("sweep", config, "--runs-dir", runs).exit_code == 0
    assert [p.name for p in run_dirs(runs / "tiny-sweep-73796c5f")] == ["tiny-004071d4", "tiny-84ffe6a6"]


def test_two_folders_of_one_run_in_a_sweep_count_once(tmp_path):
    runs, _ = old_store(tmp_path)
    sweep = runs / "tiny-sweep-73796c5f"
    shutil.copytree(sweep / "tiny-004071d4", sweep / "tiny-keep0.5-004071d4")  # what a newer dropcli would name it
    record = read_sweep(sweep)
    assert [r.path.name for r in record.runs] == ["tiny-004071d4", "tiny-84ffe6a6"]
    assert any("tiny-keep0.5-004071d4: the same run as tiny-004071d4" in w for w in record.warnings), record.warnings
