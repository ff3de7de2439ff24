"""The dask executor, on real dask.distributed clusters of worker processes on 127.0.0.1.

* A dask sweep's files are bit-identical to the serial executor's (timing fields aside).
* A worker SIGKILLed mid-run: the scheduler reruns its task elsewhere; every run completes.
* A run whose worker dies every time: failed, with the reason; the other runs complete.
* Ctrl-C (SIGINT to the process group, as a terminal sends it): exit 130, no traceback, no
  worker left, runs in flight read interrupted; the same command resumes to the full set.
* Bad setups (no dask installed, a scheduler nobody listens at, --scheduler without
  --executor dask, an unknown executor, an address that is not scheme://host:port): one
  line, exit 2, nothing written, and at once (nothing printed after it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proc_util import live_processes_with_env, runner_hook

import dropcli
from dropcli.config import load_config
from dropcli.sweep.executors import make_executor
from dropcli.store.runs import find_runs, read_run, run_status
from dropcli.sweep.grid import plan_sweep
from dropcli.sweep.run import run_sweep, run_threads

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'dropcli[dask]'")

CONFIG = """\
name: dk
data: {dataset: digits, num_train: 300, num_val: 100}
model: {hidden_dims: [64]}
dropout: {keep_prob: 0.5}
train: {epochs: 300, batch_size: 50}
sweep: {seed: [0, 1, 2, 3]}
"""
TIMING = ("epoch_time", "elapsed", "wall_time", "finished_at")
MARK = "DROPCLI_DASK_TEST"

# Test instrumentation: a worker training the config whose seed is $DROPCLI_DIE_AT_SEED dies.
HOOK = runner_hook("DROPCLI_DIE_AT_SEED", "remote.train_files", """
def wrap(train_files, seed):
    def dying(config_yaml, **kwargs):
        if any(line.split("#")[0].split() == ["seed:", seed] for line in config_yaml.splitlines()):
            os._exit(17)
        return train_files(config_yaml, **kwargs)
    return dying
""")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    (root / "dk.yaml").write_text(CONFIG)
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text(HOOK)
    return root


@pytest.fixture(scope="module")
def reference(lab):
    """The same sweep with the serial executor."""
    plan = plan_sweep(load_config(lab / "dk.yaml"), lab / "serial")
    summaries = run_sweep(plan, executor=make_executor("serial"))
    assert [s["status"] for s in summaries] == ["completed"] * 4
    return plan.path


def _env(lab, **extra):
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", MARK: str(lab), "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join([str(lab / "hook"), os.environ.get("PYTHONPATH", "")]), **extra}


def _dropcli(lab, *args, **env):
    return subprocess.Popen([sys.executable, "-m", "dropcli", *args], cwd=lab, env=_env(lab, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _same_runs(sweep_dir: Path, reference: Path) -> None:
    """Every run of ``reference`` is in ``sweep_dir``, completed, with identical files."""
    runs = {p.name: p for p in find_runs(sweep_dir)}
    assert set(runs) == {p.name for p in find_runs(reference)}
    for run_id, run in runs.items():
        ref = reference / run_id
        assert run_status(run) == "completed", run_id
        assert (run / "params.npz").read_bytes() == (ref / "params.npz").read_bytes(), run_id
        for name in ("metrics.jsonl", "expectation.json"):
            assert _without_timing(run / name) == _without_timing(ref / name), (run_id, name)
        assert (run / "config.yaml").read_text() == (ref / "config.yaml").read_text()
        summary, expected = (json.loads((p / "summary.json").read_text()) for p in (run, ref))
        assert {k: v for k, v in summary.items() if k not in TIMING} == \
            {k: v for k, v in expected.items() if k not in TIMING}


def _without_timing(path: Path):
    text = path.read_text()
    rows = [json.loads(line) for line in text.splitlines()] if path.suffix == ".jsonl" else [json.loads(text)]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _quiet(lab, timeout=30.0) -> None:
    """Until no process started with our marker is alive (the sweep and its workers)."""
    deadline = time.monotonic() + timeout
    while live_processes_with_env(MARK, str(lab)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_with_env(MARK, str(lab)) == [], "processes left behind"


# --- results -----------------------------------------------------------------------------------


def test_a_dask_sweep_is_bit_identical_to_the_serial_one(lab, reference):
    plan = plan_sweep(load_config(lab / "dk.yaml"), lab / "local")
    events = []
    summaries = run_sweep(plan, executor=make_executor("dask", jobs=2),
                          on_event=lambda kind, run, summary: events.append(kind))
    assert [s["status"] for s in summaries] == ["completed"] * 4
    assert events.count("done") == 4 and events[0] == "start"
    _same_runs(plan.path, reference)
    meta = json.loads((plan.path / plan.runs[0].run_id / "meta.json").read_text())
    reference_meta = json.loads((reference / plan.runs[0].run_id / "meta.json").read_text())
    # like with like: the sweep fixes every run's BLAS threads, whichever executor trains it
    assert meta["blas_threads_limit"] == reference_meta["blas_threads_limit"] == run_threads(plan)
    assert not (lab / "local" / ".locks").exists()
    # Run again: everything is done, nothing is submitted.
    again = run_sweep(plan, executor=make_executor("dask", jobs=2),
                      on_event=lambda kind, run, summary: events.append(kind))
    assert [s.get("skipped") for s in again] == [None] * 4 and events.count("skip") == 4


def test_a_killed_worker_is_replaced_and_every_run_completes(lab, reference):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        proc = _dropcli(lab, "sweep", "dk.yaml", "--executor", "dask", "--scheduler", cluster.scheduler_address,
                        "--runs-dir", "killed")
        deadline, victim = time.monotonic() + 60, None
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            busy = [addr for addr, keys in client.processing().items() if keys]
            if busy:
                time.sleep(0.3)  # well into a run
                victim = client.run(os.getpid, workers=busy[:1])[busy[0]]
            time.sleep(0.02)
        assert victim is not None, proc.communicate()
        os.kill(victim, signal.SIGKILL)  # as the OOM killer would
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    _same_runs(next((lab / "killed").glob("dk-sweep-*")), reference)


def test_a_run_whose_worker_keeps_dying_is_failed_and_the_sweep_goes_on(lab):
    proc = _dropcli(lab, "sweep", "dk.yaml", "--set", "train.epochs=5", "--executor", "dask", "-j", "2",
                    "--runs-dir", "dying", DROPCLI_DIE_AT_SEED="2")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err  # a run failed
    assert "Traceback" not in err
    runs = {read_run(p).config["seed"]: read_run(p) for p in find_runs(lab / "dying")}
    assert runs[2].status == "failed" and "KilledWorker" in runs[2].summary["reason"], runs[2].summary
    assert {seed: r.status for seed, r in runs.items() if seed != 2} == {0: "completed", 1: "completed", 3: "completed"}
    assert "failed" in out
    _quiet(lab)


# --- interruption ------------------------------------------------------------------------------


def test_ctrl_c_stops_a_dask_sweep_cleanly_and_the_same_command_resumes_it(lab, reference):
    args = ["sweep", "dk.yaml", "--executor", "dask", "-j", "2", "--runs-dir", "interrupted"]
    proc = _dropcli(lab, *args)
    first = lambda: any(run_status(p) == "completed" for p in find_runs(lab / "interrupted"))  # noqa: E731
    deadline = time.monotonic() + 120
    while not first() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()  # all 4 runs done before we could interrupt: make runs longer
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "resumes the sweep" in err, err
    _quiet(lab)
    statuses = [run_status(p) for p in find_runs(lab / "interrupted")]
    assert "completed" in statuses and "interrupted" in statuses, statuses
    assert set(statuses) <= {"completed", "interrupted", "pending"}, statuses

    proc = _dropcli(lab, *args)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    _same_runs(next((lab / "interrupted").glob("dk-sweep-*")), reference)
    _quiet(lab)


# --- bad setups: one line, exit 2, nothing written -----------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["no dask", "nobody there", "scheduler without dask", "unknown executor"])
def test_bad_executor_setups_are_one_line_exit_2_and_write_nothing(lab, tmp_path, case):
    args, env, hint = ["--executor", "dask"], {}, "pip install 'dropcli[dask]'"
    if case == "no dask":  # a `distributed` that cannot be imported shadows the real one
        (tmp_path / "distributed").mkdir()
        (tmp_path / "distributed" / "__init__.py").write_text("raise ImportError('No module named distributed')\n")
        env["PYTHONPATH"] = str(tmp_path)
    elif case == "nobody there":
        address = f"tcp://127.0.0.1:{_closed_port()}"
        args += ["--scheduler", address]
        env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "2s"
        hint = f"cannot use the dask scheduler at {address}"
    elif case == "scheduler without dask":
        args, hint = ["--scheduler", "tcp://127.0.0.1:8786"], "needs --executor dask"
    else:
        args, hint = ["--executor", "slurm"], "expected one of serial, processes, dask"
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "dropcli", "sweep", str(lab / "dk.yaml"), *args, "--runs-dir", str(runs)],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and hint in lines[0], proc.stderr
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("address,hint", [
    ("foo", "--scheduler foo: expected a dask scheduler's address, scheme://host:port"),
    ("tcp://127.0.0.1:notaport", "--scheduler tcp://127.0.0.1:notaport: expected a dask scheduler's address"),
    ("http://127.0.0.1:8786", "expected a dask scheduler's address"),
    ("tcp://127.0.0.1:{closed}", "cannot use the dask scheduler at tcp://127.0.0.1:{closed}: connection refused"),
])
def test_a_bad_scheduler_address_is_one_line_at_once(lab, tmp_path, address, hint):
    closed = _closed_port()
    address, hint = address.format(closed=closed), hint.format(closed=closed)
    runs = tmp_path / "runs"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dropcli", "sweep", str(lab / "dk.yaml"), "--executor", "dask",
                           "--scheduler", address, "--runs-dir", str(runs)],
                          capture_output=True, text=True, timeout=120)
    # dask itself would retry a refused connection for 30 s, and a client it failed to make
    # would wait 60 s to close and print "Exception ignored in: <function Client.__del__ ...>"
    assert time.monotonic() - started < 20, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and hint in lines[0], proc.stderr
    assert not runs.exists()


def test_workers_with_another_dropcli_version_are_refused(lab, tmp_path):
    other = tmp_path / "other"  # a worker that imports another dropcli: this one, relabelled
    shutil.copytree(Path(dropcli.__file__).parent, other / "dropcli", ignore=shutil.ignore_patterns("__pycache__"))
    version = other / "dropcli" / "version.py"
    text = version.read_text()
    assert f'__version__ = "{dropcli.__version__}"' in text
    version.write_text(text.replace(f'__version__ = "{dropcli.__version__}"', '__version__ = "0.0.0-other"'))
    runs = tmp_path / "runs"
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, silence_logs=50) as cluster:
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", cluster.scheduler_address, "--nthreads", "1",
                                   "--no-dashboard"], env={**os.environ, "PYTHONPATH": str(other)}, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc = subprocess.run([sys.executable, "-m", "dropcli", "sweep", str(lab / "dk.yaml"), "--executor", "dask",
                                   "--scheduler", cluster.scheduler_address, "--runs-dir", str(runs)],
                                  capture_output=True, text=True, timeout=120)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has dropcli 0.0.0-other" in lines[0] and "same version" in lines[0], proc.stderr
    assert not runs.exists() or not any(runs.iterdir())
