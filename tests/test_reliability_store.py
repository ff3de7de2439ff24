"""The runs store under damage and contention: statuses that tell the truth, readers that
tolerate torn and hostile files, locks that two processes never both win, and resume
rules (--retry-failed, --force, reuse across sweeps) that do what the help says."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.errors import RunStoreError
from dropcli.store.locks import RunBusyError, claim_run
from dropcli.store.files import atomic_write_text, read_metrics, write_json
from dropcli.store.layout import RUN_FILES, run_key
from dropcli.store.runs import read_run, run_status
from runstore_fixtures import BASE, make_store, params_npz, write_run

runner = CliRunner()
DEAD = {"pid": 2**22 + 12345, "host": socket.gethostname()}  # above pid_max on common systems
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


# --- writes ----------------------------------------------------------------------------------


def test_atomic_writes_are_0644_and_leave_no_temporary_file(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        write_json(tmp_path / "b.json", {"k": 1})
    finally:
        os.umask(old)
    for name in ("a.txt", "b.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json"]


def test_a_failed_atomic_write_names_the_file_not_its_temporary(tmp_path):
    target = tmp_path / "gone" / "report.md"  # its folder is missing: the temporary file cannot be made
    for write in (lambda: atomic_write_text(target, "x"), lambda: write_json(target, {"k": 1})):
        with pytest.raises(OSError) as raised:
            write()
        assert raised.value.filename == str(target), raised.value


# --- statuses --------------------------------------------------------------------------------


def _run(tmp_path, name, *, summary=None, lock=None, metrics=None):
    """A run folder with these files; a summary saying completed or diverged comes with
    the sound files it promises (metrics.jsonl, params.npz, expectation.json)."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(BASE))
    if isinstance(summary, dict) and summary.get("status") in ("completed", "diverged"):
        metrics = b'{"kind": "epoch", "epoch": 0}\n' if metrics is None else metrics
        (run_dir / "params.npz").write_bytes(params_npz(BASE))
        (run_dir / "expectation.json").write_text(json.dumps({"layers": []}))
    if metrics is not None:
        (run_dir / "metrics.jsonl").write_bytes(metrics)
    if summary is not None:
        (run_dir / "summary.json").write_bytes(summary if isinstance(summary, bytes) else json.dumps(summary).encode())
    if lock is not None:
        (run_dir / "lock").write_bytes(lock if isinstance(lock, bytes) else json.dumps(lock).encode())
    return run_dir


@pytest.mark.parametrize("files,status", [
    ({}, "pending"),
    ({"summary": {"status": "completed"}}, "completed"),
    ({"summary": {"status": "diverged"}}, "diverged"),
    ({"summary": {"status": "interrupted"}, "lock": DEAD}, "interrupted"),
    ({"summary": {"status": "failed"}}, "failed"),
    ({"summary": b'{"status": "compl'}, "corrupt"),  # torn (not possible with atomic writes, but disks lie)
    ({"summary": b"[1, 2]"}, "corrupt"),
    ({"summary": {"final": {}}}, "corrupt"),
    ({"summary": {"status": "great"}}, "corrupt"),
    ({"summary": b"\xff\xfe\x00"}, "corrupt"),
    ({"summary": b"[" * 100_000}, "corrupt"),
    ({"summary": b"{}", "lock": {"pid": os.getpid(), "host": socket.gethostname()}}, "corrupt"),
    ({"lock": {"pid": os.getpid(), "host": socket.gethostname()}}, "running"),
    ({"lock": DEAD}, "crashed"),
    ({"lock": {"pid": os.getpid(), "host": "elsewhere"}}, "crashed"),
    ({"lock": {"pid": 0, "host": socket.gethostname()}}, "crashed"),  # 0 and -1 name process groups
    ({"lock": {"pid": -1, "host": socket.gethostname()}}, "crashed"),
    ({"lock": {"pid": 2**80, "host": socket.gethostname()}}, "crashed"),
    ({"lock": {"pid": True, "host": socket.gethostname()}}, "crashed"),
    ({"lock": b"\x00garbage"}, "crashed"),
    ({"metrics": b'{"kind": "epoch", "epoch": 0}\n'}, "crashed"),  # started, no summary, no lock
])
def test_status_is_read_truthfully(tmp_path, files, status):
    assert run_status(_run(tmp_path, "r", **files)) == status


def test_readers_report_torn_and_unreadable_metrics_lines(tmp_path):
    good = [json.dumps({"kind": "epoch", "epoch": e, "val_acc": 0.5}) for e in range(3)]
    text = "\n".join([good[0], "garbage", good[1], '{"kind": "epoch"}', "\xff", good[2]]) + '\n{"kind": "epo'
    run_dir = _run(tmp_path, "r", metrics=text.encode("utf-8", "surrogateescape"))
    records, warnings = read_metrics(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert len(warnings) == 4 and "truncated last line" in warnings[-1] and ":7:" in warnings[-1]
    assert all("unreadable line" in w for w in warnings[:3])


def test_a_damaged_store_is_listed_and_plotted_with_warnings(tmp_path):
    store = make_store(tmp_path / "runs", keeps=(0.5, 1.0), seeds=(0, 1), grid=False, singles=False)
    root = store.root
    victims = sorted(store.runs.values())
    (victims[0] / "summary.json").write_text('{"status": "compl')  # corrupt
    (victims[2] / "summary.json").unlink()  # missing: a crash before the end (metrics, no lock)
    (victims[3] / "notes.txt").write_text("mine")  # foreign
    (victims[3] / ".summary.json.x1y2.tmp").write_text("{")  # leftover of an interrupted write
    broken = write_run(root, {**BASE, "seed": 9})
    (broken / "config.yaml").write_bytes(b"\xff\xfe")  # unreadable config: the run cannot be read at all
    (root / "stray.txt").write_text("not a run")

    result = invoke("runs", root)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for status in ("corrupt", "crashed", "completed", "unreadable"):
        assert status in result.stdout, status
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    for needle in ("summary.json: not valid JSON", "truncated last line", "notes.txt: not a dropcli file",
                   "leftover temporary file", "config.yaml: cannot read"):
        assert any(needle in w for w in warnings), (needle, warnings)

    result = invoke("plot", root)
    assert result.exit_code == 0, result.output
    report = (root / "report.md").read_text()
    for needle in ("not valid JSON", "truncated last line", "notes.txt", "config.yaml: cannot read"):
        assert needle in report, needle
    assert not (root / "stray.txt.png").exists() and (root / "report.html").is_file()


@pytest.mark.parametrize("damage,named", [
    ({"final": "x"}, "final is \"x\"; expected an object of numbers"),
    ({"best": "x"}, "best is \"x\"; expected an object of numbers"),
    ({"best": 3}, "best is 3; expected an object of numbers"),
    ({"best": [1, 2]}, "best is [1, 2]; expected an object of numbers"),
    ({"test": True}, "test is true; expected an object of numbers"),
    ({"final": {"val_acc": "x", "train_acc": 0.5}}, "final.val_acc is \"x\"; expected a number"),
    ({"best": {"val_acc": [0.5], "epoch": 2}}, "best.val_acc is [0.5]; expected a number"),
])
def test_summary_values_of_the_wrong_type_are_a_warning_and_missing(tmp_path, damage, named):
    store = make_store(tmp_path / "runs", keeps=(0.5, 1.0), seeds=(0, 1), grid=False, singles=False)
    victim = store.runs[(0.5, 0)] / "summary.json"
    victim.write_text(json.dumps({**json.loads(victim.read_text()), **damage}))
    for command in ("plot", "runs"):
        result = invoke(command, store.root)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output and "could not plot" not in result.output, result.output
        warnings = [line for line in result.stderr.splitlines() if "summary.json" in line]
        assert warnings == [f"warning: {victim}: {named} (ignored)"], (command, result.stderr)
    report = (store.sweep / "report.md").read_text()
    assert "not plotted" not in report and (store.sweep / "keep_prob.png").is_file()


def test_run_files_are_the_documented_ones():
    assert {"config.yaml", "meta.json", "metrics.jsonl", "summary.json", "params.npz", "expectation.json",
            "lock"} <= RUN_FILES


# --- hostile files, generated ------------------------------------------------------------------

junk = st.one_of(
    st.binary(max_size=40),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
                 lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
                     ["status", "final", "best", "epoch", "val_acc", "kind", "wall_time", "pid", "host", "runs",
                      "run_id", "axes", "dropout", "keep_prob", "layers", "seed"]), inner, max_size=4)),
                 max_leaves=8).map(lambda v: json.dumps(v).encode()),
)
TARGETS = ["summary.json", "metrics.jsonl", "config.yaml", "expectation.json", "lock", "../sweep.yaml"]


@pytest.fixture(scope="module")
def small_store():
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp) / "clean", keeps=(0.5, 1.0), seeds=(0,), grid=False, singles=False)
        yield store


@settings(max_examples=60, **SETTINGS)
@given(st.lists(st.tuples(st.sampled_from(TARGETS), st.integers(0, 1), junk), min_size=1, max_size=4))
def test_runs_survives_hostile_run_files(small_store, damage):
    result = _invoke_on_damaged_copy("runs", small_store, damage)
    assert "Traceback" not in result.output


def _invoke_on_damaged_copy(command, store, damage):
    """Run ``dropcli COMMAND`` on a copy of ``store`` with ``damage`` written into its runs;
    it must end with exit 0 or 2 and never with an uncaught exception."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        shutil.copytree(store.root, root)
        runs = sorted(p for p in next(root.glob("*-sweep-*")).iterdir() if p.is_dir())
        for target, which, content in damage:
            (runs[which] / target).write_bytes(content)
        result = invoke(command, root)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@settings(max_examples=2, **SETTINGS)
@given(st.lists(st.tuples(st.sampled_from(TARGETS), st.integers(0, 1), junk), min_size=1, max_size=3))
def test_plot_survives_hostile_run_files(small_store, damage):
    _invoke_on_damaged_copy("plot", small_store, damage)


def test_a_hostile_sweep_yaml_cannot_point_outside_the_sweep(tmp_path):
    store = make_store(tmp_path / "runs", keeps=(0.5,), seeds=(0,), grid=False, singles=False)
    outside = write_run(tmp_path, {**BASE, "seed": 7})  # a run folder next to the runs folder
    spec = yaml.safe_load((store.sweep / "sweep.yaml").read_text())
    spec["runs"].append({"run_id": f"../../{outside.name}"})
    spec["runs"].append({"run_id": str(outside)})
    (store.sweep / "sweep.yaml").write_text(yaml.safe_dump(spec))
    before = sorted(p.name for p in outside.iterdir())
    assert invoke("plot", store.root).exit_code == 0
    assert sorted(p.name for p in outside.iterdir()) == before


def test_eval_refuses_damaged_params_in_one_line(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    assert invoke("train", tiny_config, "--runs-dir", runs).exit_code == 0
    (run_dir,) = runs.iterdir()
    good = (run_dir / "params.npz").read_bytes()
    damages = {
        "truncated": good[: len(good) // 2],
        "not a zip": b"hello",
        "wrong shapes": _npz(W1=np.zeros((3, 3)), b1=np.zeros(3), W2=np.zeros((3, 3)), b2=np.zeros(3)),
        "missing arrays": _npz(W1=np.zeros((64, 16))),
        "pickled objects": _npz(W1=np.array([{"a": 1}], dtype=object)),
    }
    for label, content in damages.items():
        (run_dir / "params.npz").write_bytes(content)
        result = invoke("eval", run_dir, "--mc", "1,2", "--repeats", "1")
        assert result.exit_code == 2, (label, result.output)
        lines = result.output.splitlines()
        assert len(lines) == 1 and "params.npz" in lines[0], (label, result.output)
        assert not (run_dir / "mc_eval.json").exists(), label


@pytest.mark.parametrize("content", ["a .npy array", "random bytes"])
def test_eval_says_params_that_are_not_a_zip_are_not_a_npz_file(tmp_path, tiny_config, content):
    import io

    runs = tmp_path / "runs"
    assert invoke("train", tiny_config, "--runs-dir", runs).exit_code == 0
    (run_dir,) = runs.iterdir()
    if content == "a .npy array":
        buf = io.BytesIO()
        np.save(buf, np.zeros(3))
        (run_dir / "params.npz").write_bytes(buf.getvalue())
    else:
        (run_dir / "params.npz").write_bytes(np.random.default_rng(0).bytes(300))
    result = invoke("eval", run_dir, "--mc", "1,2", "--repeats", "1")
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [f"error: {run_dir / 'params.npz'}: not a .npz file (not a zip archive)"]
    assert not (run_dir / "mc_eval.json").exists()


def _npz(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# --- damaged runs: files that do not hold what summary.json promises ---------------------------


def _without(path: Path, member: str) -> None:
    """Rewrite the zip archive at ``path`` without ``member``."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        kept = {name: z.read(name) for name in z.namelist() if name != member}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in kept.items():
            z.writestr(name, data)


def _halve(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# label -> (how to damage a run folder, the file its warning names, what the warning says of it)
DAMAGES = {
    "params.npz truncated to 0 bytes": (lambda r: os.truncate(r / "params.npz", 0), "params.npz", "empty"),
    "params.npz deleted": (lambda r: (r / "params.npz").unlink(), "params.npz", "missing"),
    "params.npz cut in half": (lambda r: _halve(r / "params.npz"), "params.npz", "not a .npz file"),
    "params.npz without W2": (lambda r: _without(r / "params.npz", "W2.npy"), "params.npz", "has no W2"),
    "config.yaml emptied": (lambda r: (r / "config.yaml").write_bytes(b""), "config.yaml", "empty"),
    "config.yaml a list": (lambda r: (r / "config.yaml").write_text("- 1\n"), "config.yaml",
                           "not a mapping of config keys"),
    "metrics.jsonl deleted": (lambda r: (r / "metrics.jsonl").unlink(), "metrics.jsonl", "missing"),
    "metrics.jsonl emptied": (lambda r: os.truncate(r / "metrics.jsonl", 0), "metrics.jsonl", "empty"),
    "expectation.json emptied": (lambda r: os.truncate(r / "expectation.json", 0), "expectation.json",
                                 "not valid JSON"),
}


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory):
    """A runs folder with one run trained by `dropcli train` on the tiny digits config."""
    from conftest import TINY

    tmp = tmp_path_factory.mktemp("trained")
    (tmp / "tiny.yaml").write_text(TINY)
    result = invoke("train", tmp / "tiny.yaml", "--runs-dir", tmp / "runs")
    assert result.exit_code == 0, result.output
    return tmp / "runs"


@pytest.mark.parametrize("label", DAMAGES)
def test_a_damaged_completed_run_is_listed_and_plotted_corrupt(tmp_path, trained_store, label):
    import shutil

    damage, name, problem = DAMAGES[label]
    root = tmp_path / "runs"
    shutil.copytree(trained_store, root)
    (run_dir,) = root.iterdir()
    assert run_status(run_dir) == "completed"
    damage(run_dir)
    assert run_status(run_dir) == "corrupt", label
    warning = f"warning: {run_dir / name}: {problem}"
    promise = ", but summary.json says completed (status corrupt; a sweep trains it again)"

    listed = invoke("runs", root)
    assert listed.exit_code == 0 and "Traceback" not in listed.output, listed.output
    assert f"single runs in {root}: 1 run; all: status corrupt" in listed.stdout, listed.stdout
    lines = listed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(warning) and lines[0].endswith(promise), (label, lines)

    plotted = invoke("plot", root)
    assert plotted.exit_code == 0 and "Traceback" not in plotted.output, plotted.output
    assert "could not plot" not in plotted.output, plotted.output
    assert any(line.startswith(warning) for line in plotted.stderr.splitlines()), plotted.stderr
    assert f"| status | corrupt ({name}: {problem}" in (run_dir / "report.md").read_text(), label
    assert "corrupt" in (root / "report.md").read_text()


def test_a_run_whose_config_is_not_yaml_is_unreadable_and_corrupt(tmp_path, trained_store):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(trained_store, root)
    (run_dir,) = root.iterdir()
    (run_dir / "config.yaml").write_text("model: [16\n")
    assert run_status(run_dir) == "corrupt"
    listed = invoke("runs", root)
    assert listed.exit_code == 0 and "1 run; all: status unreadable" in listed.stdout, listed.output
    (line,) = listed.stderr.splitlines()
    assert line.startswith(f"warning: {run_dir / 'config.yaml'}: not valid YAML (") and line.endswith(
        "(status corrupt; a sweep trains it again)"), line
    plotted = invoke("plot", root)
    assert plotted.exit_code == 0 and line in plotted.stderr.splitlines(), plotted.output


def test_a_sweep_and_train_train_damaged_runs_again(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    args = ["sweep", tiny_config, "--keep", "0.25,0.5,0.75,1", "--seeds", "0", "--runs-dir", runs]
    assert invoke(*args).exit_code == 0
    (sweep_dir,) = runs.iterdir()
    a, b, c, d = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    params, config = (a / "params.npz").read_bytes(), (b / "config.yaml").read_bytes()
    os.truncate(a / "params.npz", 0)
    (b / "config.yaml").write_bytes(b"")
    (c / "config.yaml").write_text("model: [16\n")
    kept = (d / "summary.json").stat().st_mtime_ns
    assert [run_status(p) for p in (a, b, c, d)] == ["corrupt", "corrupt", "corrupt", "completed"]

    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert [run_status(p) for p in (a, b, c, d)] == ["completed"] * 4
    assert (a / "params.npz").read_bytes() == params and (b / "config.yaml").read_bytes() == config  # deterministic
    assert (d / "summary.json").stat().st_mtime_ns == kept
    assert [row.split(",")[1] for row in (sweep_dir / "summary.csv").read_text().splitlines()[1:]] == ["completed"] * 4

    single = invoke("train", tiny_config, "--runs-dir", runs)
    assert single.exit_code == 0, single.output
    (run_dir,) = [p for p in runs.iterdir() if p != sweep_dir]
    os.truncate(run_dir / "params.npz", 0)
    retrained = invoke("train", tiny_config, "--runs-dir", runs)
    assert retrained.exit_code == 0 and "already completed" not in retrained.output, retrained.output
    assert run_status(run_dir) == "completed" and (run_dir / "params.npz").stat().st_size > 0
    with np.load(run_dir / "params.npz") as z:
        assert "W1" in z.files


def test_a_damaged_run_is_not_linked_into_another_sweep(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    assert invoke("sweep", tiny_config, "--keep", "0.5,1", "--runs-dir", runs).exit_code == 0
    first = next(runs.iterdir())
    (shared,) = [p for p in first.iterdir()
                 if p.is_dir() and yaml.safe_load((p / "config.yaml").read_text())["dropout"]["keep_prob"] == 0.5]
    os.truncate(shared / "params.npz", 0)
    result = invoke("sweep", tiny_config, "--keep", "0.25,0.5", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (second,) = [p for p in runs.iterdir() if p != first]
    assert not any(s.get("reused_from") for s in _summaries(second).values())
    assert run_status(second / shared.name) == "completed" and (second / shared.name / "params.npz").stat().st_size
    assert run_status(shared) == "corrupt"  # left for its own sweep to train again

    # a single run of the same config links in the sound copy, never the damaged one
    single = invoke("train", tiny_config, "--runs-dir", runs)
    assert f"already completed in {second.name}/{shared.name}; linked its files in" in single.stderr, single.output
    # linked files share their content: damaged in place, both folders read corrupt
    alone = runs / f"tiny-{run_key(shared.name)}"  # a single run's folder: <name>-<hash8>
    os.truncate(alone / "params.npz", 0)
    assert run_status(alone) == run_status(second / shared.name) == "corrupt"


def test_a_healthy_run_of_each_normalization_reads_completed_and_a_missing_state_array_corrupt(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    result = invoke("sweep", tiny_config, "--norm", "none,batchnorm,layernorm", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = runs.iterdir()
    by_norm = {yaml.safe_load((p / "config.yaml").read_text())["model"]["normalization"]: p
               for p in sweep_dir.iterdir() if p.is_dir()}
    assert {norm: run_status(p) for norm, p in by_norm.items()} == dict.fromkeys(by_norm, "completed")
    _without(by_norm["batchnorm"] / "params.npz", "running_var1.npy")
    assert run_status(by_norm["batchnorm"]) == "corrupt"


# --- locks -----------------------------------------------------------------------------------


def _contend(run_dir, root, rounds, out):
    """Try to claim the run ``rounds`` times; while holding it, create a marker that only
    one holder at a time can create (O_EXCL). Writes (wins, overlaps) to ``out``."""
    wins = overlaps = 0
    marker = Path(run_dir) / "holder"
    for _ in range(rounds):
        try:
            with claim_run(Path(run_dir), Path(root)):
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    overlaps += 1
                    continue
                wins += 1
                time.sleep(0.001)
                os.close(fd)
                os.unlink(marker)
        except RunBusyError:
            time.sleep(0.0005)
    Path(out).write_text(json.dumps([wins, overlaps]))


def test_two_live_processes_never_both_hold_a_run(tmp_path):
    root = tmp_path / "runs"
    run_dir = root / "r-0000"
    run_dir.mkdir(parents=True)
    (run_dir / "lock").write_text(json.dumps(DEAD))  # a stale lock to take over, as after a crash
    (root / ".locks").mkdir()
    (root / ".locks" / run_key(run_dir.name)).write_text(json.dumps(DEAD))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_contend, args=(run_dir, root, 150, tmp_path / f"out{i}")) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    results = [json.loads((tmp_path / f"out{i}").read_text()) for i in range(4)]
    assert sum(w for w, _ in results) > 0 and sum(o for _, o in results) == 0, results
    assert not (run_dir / "lock").exists() and not (root / ".locks").exists()


def test_a_planted_lock_symlink_is_not_followed(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    assert invoke("train", tiny_config, "--runs-dir", runs).exit_code == 0
    (run_dir,) = [p for p in runs.iterdir()]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run_dir / "lock").symlink_to(victim)
    result = invoke("train", tiny_config, "--runs-dir", runs, "--force")
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    assert victim.read_text() == "precious"


def _hold(run_dir, root, ready, release):
    with claim_run(Path(run_dir), Path(root)):
        Path(ready).write_text("held")
        while not Path(release).exists():
            time.sleep(0.01)


def test_a_run_held_by_another_process_is_refused_by_train(tmp_path, tiny_config):
    from dropcli.config import load_config
    from dropcli.experiment.build import run_id

    runs = tmp_path / "runs"
    rid = run_id(load_config(tiny_config))
    holder = multiprocessing.get_context("spawn").Process(
        target=_hold, args=(runs / rid, runs, tmp_path / "ready", tmp_path / "release"))
    holder.start()
    try:
        while not (tmp_path / "ready").exists():
            time.sleep(0.01)
        assert run_status(runs / rid) == "running"
        result = invoke("train", tiny_config, "--runs-dir", runs)
        assert result.exit_code == 2, result.output
        assert f"(pid {holder.pid}) is training this run right now" in result.output
    finally:
        (tmp_path / "release").write_text("")
        holder.join(30)
    assert invoke("train", tiny_config, "--runs-dir", runs).exit_code == 0
    with pytest.raises(RunStoreError):
        read_run(runs / "nowhere")


def test_eval_and_runs_say_what_the_path_is(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    assert invoke("sweep", tiny_config, "--seeds", "0", "--runs-dir", runs).exit_code == 0
    (sweep_dir,) = runs.iterdir()
    (run_dir,) = [p for p in sweep_dir.iterdir() if p.is_dir()]
    expected = {
        ("eval", run_dir / "config.yaml"): f"{run_dir / 'config.yaml'}: not a run folder but a file; give the folder "
                                           f"that holds it (dropcli eval {run_dir})",
        ("eval", tmp_path / "nonexist"): f"{tmp_path / 'nonexist'}: no such folder",
        ("eval", sweep_dir): f"{sweep_dir}: a sweep folder; give one of the run folders that `dropcli runs` lists",
        ("eval", tmp_path): f"{tmp_path}: not a run folder (no config.yaml); give one of the run folders that "
                            "`dropcli runs` lists",
        ("runs", run_dir): f"{run_dir}: this is a run folder; list the runs folder that holds it "
                           f"(dropcli runs {sweep_dir})",
    }
    for (command, path), message in expected.items():
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        assert result.output.splitlines() == [f"error: {message}"], (command, path, result.output)


def test_a_file_where_the_run_folder_goes_is_named(tmp_path, tiny_config):
    from dropcli.config import load_config
    from dropcli.experiment.build import run_id

    runs = tmp_path / "runs"
    runs.mkdir()
    in_the_way = runs / run_id(load_config(tiny_config))
    in_the_way.write_text("mine")
    result = invoke("train", tiny_config, "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [f"error: {in_the_way}: a file is in the way; the run needs a folder here"]
    assert in_the_way.read_text() == "mine" and sorted(p.name for p in runs.iterdir()) == [in_the_way.name]


def test_warnings_are_one_line_each_at_80_columns(tmp_path):
    store = make_store(tmp_path / ("runs-" + "x" * 60), keeps=(0.5,), seeds=(0,), grid=False, singles=False)
    (victim,) = store.runs.values()
    (victim / "summary.json").write_text('{"status": "compl')
    for command in ("runs", "plot"):
        proc = subprocess.run([sys.executable, "-m", "dropcli", command, str(store.root)], capture_output=True,
                              text=True, env={**os.environ, "COLUMNS": "80"}, timeout=300)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stderr.splitlines()
        assert lines and all(line.startswith("warning: ") for line in lines), (command, proc.stderr)
        assert any(line.endswith("(status corrupt; a sweep trains it again)") for line in lines), proc.stderr


# --- resume rules: divergence, --retry-failed, --force, reuse ---------------------------------


def _summaries(sweep_dir):
    return {p.name: json.loads((p / "summary.json").read_text()) for p in sorted(sweep_dir.iterdir()) if p.is_dir()}


def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    args = ["sweep", tiny_config, "--set", "train.learning_rate=1e30,1e-3",
            "--runs-dir", runs]
    result = invoke(*args)
    assert result.exit_code == 1, result.output  # a run diverged
    (sweep_dir,) = runs.iterdir()
    by_status = {s["status"]: s for s in _summaries(sweep_dir).values()}
    assert set(by_status) == {"diverged", "completed"}, by_status
    diverged = by_status["diverged"]
    assert diverged["diverged_epoch"] == 1 and "non-finite in epoch 1" in diverged["reason"]
    assert diverged["epochs_completed"] == diverged["diverged_epoch"] - 1
    assert "diverged" in result.stdout

    assert invoke("plot", runs).exit_code == 0
    assert "diverged" in (sweep_dir / "report.md").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/summary.json")}

    again = invoke(*args)  # diverged runs are final: not run again by default
    assert again.exit_code == 1 and "--retry-failed" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    retried = invoke(*args, "--retry-failed")  # ... but with --retry-failed
    assert retried.exit_code == 1
    changed = [p for p in stamps if p.stat().st_mtime_ns != stamps[p]]
    assert len(changed) == 1 and json.loads(changed[0].read_text())["status"] == "diverged"


def test_interrupted_crashed_and_corrupt_runs_are_resumed_completed_ones_kept(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    args = ["sweep", tiny_config, "--keep", "0.5,1", "--seeds", "0,1", "--runs-dir", runs]
    assert invoke(*args).exit_code == 0
    (sweep_dir,) = runs.iterdir()
    a, b, c, d = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    s = json.loads((a / "summary.json").read_text())
    (a / "summary.json").write_text(json.dumps({**s, "status": "interrupted"}))
    (b / "summary.json").unlink()
    (b / "lock").write_text(json.dumps(DEAD))  # crashed
    (c / "summary.json").write_text("{")  # corrupt
    kept = (d / "summary.json").stat().st_mtime_ns
    assert [run_status(p) for p in (a, b, c, d)] == ["interrupted", "crashed", "corrupt", "completed"]
    assert invoke(*args).exit_code == 0
    assert [run_status(p) for p in (a, b, c, d)] == ["completed"] * 4
    assert (d / "summary.json").stat().st_mtime_ns == kept and not (b / "lock").exists()

    assert invoke(*args, "--force").exit_code == 0  # everything again
    assert (d / "summary.json").stat().st_mtime_ns != kept


def test_a_run_finished_in_another_sweep_is_linked_in_not_trained(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    assert invoke("sweep", tiny_config, "--keep", "0.5,1", "--runs-dir", runs).exit_code == 0
    first = next(runs.iterdir())
    result = invoke("sweep", tiny_config, "--keep", "0.25,0.5", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (second,) = [p for p in runs.iterdir() if p != first]
    summaries = _summaries(second)
    reused = {k: v for k, v in summaries.items() if v.get("reused_from")}
    assert len(summaries) == 2 and len(reused) == 1
    (rid, summary), = reused.items()
    assert summary["reused_from"] == f"{first.name}/{rid}" and summary["status"] == "completed"
    for name in ("metrics.jsonl", "params.npz", "config.yaml"):
        assert (second / rid / name).read_bytes() == (first / rid / name).read_bytes()
    # a single run of the same config reuses it too; --force trains it anyway
    assert "linked its files in" in invoke("train", tiny_config, "--runs-dir", runs).stderr
    assert invoke("sweep", tiny_config, "--keep", "0.25,0.5", "--runs-dir", runs, "--force").exit_code == 0
    assert not any(s.get("reused_from") for s in _summaries(second).values())


def test_sweep_help_says_what_resume_retry_and_force_do():
    text = " ".join(invoke("sweep", "--help").output.split())
    for needle in ("--retry-failed", "--force", "interrupted, crashed, corrupt and pending runs run again",
                   "a second Ctrl-C stops at once"):
        assert needle in text, needle


def test_a_claim_given_up_before_the_first_file_leaves_no_folder(tmp_path):
    """Ctrl-C between taking a run's lock and writing its config.yaml: no empty run folder
    (nor a stale .locks) stays behind; a run that wrote anything keeps its folder."""
    run_dir = tmp_path / "digits-00000000"
    with pytest.raises(KeyboardInterrupt):
        with claim_run(run_dir, tmp_path):
            assert (run_dir / "lock").is_file()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with claim_run(run_dir, tmp_path):
            (run_dir / "config.yaml").write_text("name: digits\n")
            raise KeyboardInterrupt
    assert [p.name for p in run_dir.iterdir()] == ["config.yaml"]
