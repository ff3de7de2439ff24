"""The command line, through typer's CliRunner and as real subprocesses."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.cli.app import config_located, pct
from dropcli.config import VARIANTS, load_config, with_sweep
from dropcli.errors import ConfigError, DataError
from dropcli.experiment.threads import available_cores
from dropcli.store.layout import SCHEMA_VERSION
from dropcli.sweep.grid import plan_sweep
from dropcli.sweep.run import run_threads

runner = CliRunner()
COMMANDS = ["train", "sweep", "plot", "runs", "check", "eval"]
TIMING = ("epoch_time", "elapsed")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"`dropcli {command} --help` shows no example"


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("dropcli ")


def test_help_does_not_import_numpy_matplotlib_or_sklearn():
    code = (
        "import sys; from typer.testing import CliRunner; from dropcli.cli import app\n"
        "for args in (['--help'], ['train', '--help'], ['sweep', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "heavy = [m for m in ('numpy', 'matplotlib', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_train_writes_a_complete_run(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = invoke("train", tiny_config, "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    assert run_dir.name.startswith("tiny-")
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "summary.json", "params.npz", "expectation.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "lock").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["schema_version"] == SCHEMA_VERSION
    assert summary["keep_prob"] == 0.5 and summary["drop_rate"] == 0.5
    assert [r["epoch"] for r in metrics(run_dir)] == [0, 1, 2]
    expectation = json.loads((run_dir / "expectation.json").read_text())
    assert [layer["layer"] for layer in expectation["layers"]] == ["hidden1"]
    assert expectation["pass"]


def test_train_again_skips_a_completed_run_unless_forced(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    invoke("train", tiny_config, "--runs-dir", runs)
    (run_dir,) = runs.iterdir()
    before = (run_dir / "summary.json").stat().st_mtime_ns
    result = invoke("train", tiny_config, "--runs-dir", runs)
    assert result.exit_code == 0 and "already completed" in result.output
    assert (run_dir / "summary.json").stat().st_mtime_ns == before
    assert invoke("train", tiny_config, "--runs-dir", runs, "--force").exit_code == 0
    assert (run_dir / "summary.json").stat().st_mtime_ns != before


def test_set_and_name_change_the_run(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = invoke("train", tiny_config, "--runs-dir", runs, "--set", "dropout.keep_prob=1", "--name", "nodrop")
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    assert run_dir.name.startswith("nodrop-")
    assert json.loads((run_dir / "expectation.json").read_text())["layers"] == []


@pytest.mark.parametrize("args,message", [
    (["--set", "dropout.rate=0.3"], "keep_prob=0.7"),
    (["--set", "model.hidden_dims=[0]"], "model.hidden_dims"),
    (["--set", "nonsense"], "KEY=VALUE"),
    (["--set", "data.num_train=5000"], "data.num_train"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tiny_config, tmp_path, args, message):
    runs = tmp_path / "runs"
    result = invoke("train", tiny_config, "--runs-dir", runs, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not runs.exists()


def test_bad_config_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel:\n  hiden_dims: [10]\n")
    result = invoke("train", bad, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "bad.yaml:3" in result.output and "hidden_dims" in result.output
    missing = invoke("train", tmp_path / "nope.yaml")
    assert missing.exit_code == 2 and "nope.yaml" in missing.output


def test_sweep_runs_the_grid_and_resumes(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = invoke("sweep", tiny_config, "--keep", "0.5,1", "--seeds", "0,1", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = runs.iterdir()
    run_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(run_dirs) == 4
    assert (sweep_dir / "sweep.yaml").is_file()
    rows = (sweep_dir / "summary.csv").read_text().splitlines()
    assert len(rows) == 5 and "keep_prob" in rows[0] and "drop_rate" in rows[0]
    stamps = {p: (p / "summary.json").stat().st_mtime_ns for p in run_dirs}
    again = invoke("sweep", tiny_config, "--keep", "0.5,1", "--seeds", "0,1", "--runs-dir", runs)
    assert again.exit_code == 0
    assert {p: (p / "summary.json").stat().st_mtime_ns for p in run_dirs} == stamps  # trained nothing


def test_sweep_reruns_unfinished_runs(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    invoke("sweep", tiny_config, "--keep", "0.5,1", "--runs-dir", runs)
    (sweep_dir,) = runs.iterdir()
    victim = sorted(p for p in sweep_dir.iterdir() if p.is_dir())[0]
    (victim / "summary.json").unlink()  # as if the process died mid-run
    other = sorted(p for p in sweep_dir.iterdir() if p.is_dir())[1]
    stamp = (other / "summary.json").stat().st_mtime_ns
    assert invoke("sweep", tiny_config, "--keep", "0.5,1", "--runs-dir", runs).exit_code == 0
    assert json.loads((victim / "summary.json").read_text())["status"] == "completed"
    assert (other / "summary.json").stat().st_mtime_ns == stamp


def test_sweep_with_no_config_uses_the_builtin_default(tmp_path):
    result = invoke("sweep", "--keep", "1", "--seeds", "0", "--set", "train.epochs=1", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = tmp_path.iterdir()
    assert sweep_dir.name.startswith("mnist1d-sweep-")


def test_sweep_bad_flag_value(tmp_path):
    result = invoke("sweep", "--keep", "0.5,0", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "keep_prob" in result.output
    assert not (tmp_path / "runs").exists()


def test_sweep_flags_become_axes_of_the_grid_and_say_where_each_was_given(tiny_config):
    from dropcli.sweep.flags import sweep_config

    config, given = sweep_config(tiny_config, {"--keep": "0.5,1", "--variant": None, "--seeds": "0,1"},
                                 ["model.hidden_dims=[8],[8,8]"])
    assert dict(config.sweep) == {"dropout.keep_prob": (0.5, 1.0), "seed": (0, 1),
                                  "model.hidden_dims": ((8,), (8, 8))}
    assert given == {"dropout.keep_prob": "--keep", "seed": "--seeds", "model.hidden_dims": "--set"}
    with pytest.raises(ConfigError, match=r"^--keep 0.5 and --set dropout.keep_prob=1 both set dropout.keep_prob"):
        sweep_config(tiny_config, {"--keep": "0.5"}, ["dropout.keep_prob=1"])


def test_an_error_is_placed_by_its_key_never_by_its_text(tmp_path):
    config = tmp_path / "x.yaml"
    config.write_text("name: x\ndata:\n  num_train: 50\nsweep:\n  data.num_val: [10, 20]\n")

    def placed(error, given=None, path=config):
        with pytest.raises(type(error)) as raised, config_located(path, given or {}):
            raise error
        return str(raised.value), raised.value.key

    assert placed(DataError("too many", key="data.num_train")) == (f"{config}:3: too many", "data.num_train")
    assert placed(DataError("too many", key="data.num_val")) == (f"{config}:5: too many", "data.num_val")  # the axis
    assert placed(DataError("too many", key="data.num_train"), {"data.num_train": "--set"}) == (
        "--set too many", "data.num_train")
    assert placed(ConfigError("model.hidden_dims [9]: too big", key="model.hidden_dims")) == (  # a default
        "model.hidden_dims [9]: too big", "model.hidden_dims")
    assert placed(DataError("data.num_train: no key given")) == ("data.num_train: no key given", None)
    assert placed(DataError("too many", key="data.num_train"), path=None) == ("too many", "data.num_train")


def test_the_cli_shows_percentages_with_the_reports_pct():
    from dropcli.report.format import pct as report_pct

    assert (pct(0.91234), report_pct(0.91234)) == ("91.2%", "91.23")
    assert pct(None) == pct("n/a") == pct(True) == "-"


def test_the_clis_choices_are_the_configs_vocabulary():
    import typer.main

    check = typer.main.get_command(app).commands["check"]
    assert next(p.default for p in check.params if p.name == "variant") == ",".join(VARIANTS)
    sweep = " ".join(runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "300"}).output.split())
    assert f"--variant {','.join(VARIANTS)}" in sweep
    result = invoke("check", "--variant", "nope")
    assert result.exit_code == 2 and f"expected one or more of {', '.join(VARIANTS)}" in result.output


def test_a_sweeps_results_do_not_depend_on_j_or_on_resuming(tiny_config, tmp_path):
    """Like with like, by design: every run of a sweep trains at the sweep's BLAS thread
    count (recorded in meta.json), whatever -j and however many runs are left, so the files
    agree bit for bit on any OpenBLAS kernel. BLAS is left free to use every core here."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    args = ["sweep", str(tiny_config), "--keep", "0.5,1", "--seeds", "0,1", "--set", "model.hidden_dims=[256]"]

    def sweep(jobs, folder):
        subprocess.run([sys.executable, "-m", "dropcli", *args, "-j", jobs, "--runs-dir", str(tmp_path / folder)],
                       check=True, capture_output=True, env=env)
        (path,) = (tmp_path / folder).iterdir()
        return path

    serial, parallel = sweep("1", "serial"), sweep("2", "parallel")
    assert serial.name == parallel.name
    names = sorted(p.name for p in serial.iterdir() if p.is_dir())
    assert names == sorted(p.name for p in parallel.iterdir() if p.is_dir()) and len(names) == 4
    shutil.rmtree(parallel / names[0])  # resumed with one run left: it trains in the sweep's own process
    assert sweep("2", "parallel") == parallel
    threads = run_threads(plan_sweep(with_sweep(load_config(tiny_config), {"dropout.keep_prob": [0.5, 1],
                                                                            "seed": [0, 1]}), tmp_path))
    for name in names:
        assert metrics(serial / name) == metrics(parallel / name), name
        assert (serial / name / "params.npz").read_bytes() == (parallel / name / "params.npz").read_bytes(), name
        limits = {json.loads((folder / name / "meta.json").read_text())["blas_threads_limit"]
                  for folder in (serial, parallel)}
        assert limits == {threads}, name


def test_a_single_train_records_its_blas_limit(tiny_config, tmp_path):
    result = invoke("train", tiny_config, "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    (meta,) = tmp_path.glob("*/meta.json")
    assert json.loads(meta.read_text())["blas_threads_limit"] == available_cores()


def test_runs_lists_every_run(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    invoke("train", tiny_config, "--runs-dir", runs)
    invoke("sweep", tiny_config, "--keep", "0.5,1", "--runs-dir", runs)
    result = runner.invoke(app, ["runs", str(runs)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    run_dirs = [p for p in runs.rglob("summary.json")]
    assert len(run_dirs) == 3
    for summary in run_dirs:
        assert summary.parent.name in result.output
    (sweep_dir,) = [p for p in runs.iterdir() if p.name.startswith("tiny-sweep-")]
    assert f"sweep {sweep_dir.name}: 2 runs; all: status completed" in result.output
    assert "single runs in" in result.output and ": 1 run; all: status completed" in result.output


def test_runs_on_missing_folder(tmp_path):
    result = invoke("runs", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such folder" in result.output


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_train_is_marked_and_exits_130(tmp_path, sig):
    import signal
    import time

    config = tmp_path / "long.yaml"
    config.write_text("name: long\ndata: {num_train: 300}\nmodel: {hidden_dims: [64]}\ntrain: {epochs: 100000}\n")
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "dropcli", "train", str(config), "--runs-dir", str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until a few epochs are on disk
        logs = list(runs.glob("*/metrics.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["epochs_completed"] >= 2
    assert not (run_dir / "lock").exists()
    assert "Traceback" not in stderr
