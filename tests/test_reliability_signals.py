"""Real processes, real signals, real files.

* Three sweeps at once over overlapping grids (two of them the same sweep): every run id is
  trained exactly once, the copies in the other sweep are linked in, all complete.
* One sweep interrupted again and again at random points (seeded): SIGINT, SIGTERM and
  SIGKILL, sent to the sweep's process or to its whole process group (as a terminal's
  Ctrl-C or a power cut would), once or twice, with -j 2 and -j 1. After each: every run
  folder is readable, statuses are right, no worker is left; resuming ends with exactly
  the full set of completed runs, bit-identical to the uninterrupted sweep.
* `dropcli train` likewise.

Trainings are counted by a test-only ``sitecustomize`` that logs every call of
``dropcli.experiment.run._train_into`` (in the sweep's process and in its spawned workers).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from proc_util import live_processes_with_env, runner_hook

from dropcli.store.runs import find_runs, read_run, run_status

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals and process groups")

CONFIG = """\
name: sig
data: {dataset: digits, num_train: 300, num_val: 100}
model: {hidden_dims: [64]}
dropout: {keep_prob: 0.5}
train: {epochs: 300, batch_size: 50}
"""
GRID = ["--keep", "0.5,1", "--seeds", "0,1,2,3"]  # 8 runs, each ~1 s on one core
OVERLAP = ["--keep", "0.25,0.5", "--seeds", "2,3"]  # 4 runs, 2 of them in GRID
TIMING = ("epoch_time", "elapsed")
COUNTS = Counter()

HOOK = runner_hook("DROPCLI_TRAINING_LOG", "run._train_into", """
def wrap(train, log):
    def logged(run_dir, *args, **kwargs):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{os.getpid()} {run_dir}\\n".encode())
        os.close(fd)
        return train(run_dir, *args, **kwargs)
    return logged
""")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text(HOOK)
    (root / "sig.yaml").write_text(CONFIG)
    yield root
    print(f"\ninterruptions injected: {COUNTS['injected']} {dict(COUNTS)}; runs lost: {COUNTS['lost']}")


def _env(lab, log):
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(lab / "hook"), os.environ.get("PYTHONPATH", "")]), "DROPCLI_TRAINING_LOG": str(log), "COLUMNS": "200"}


def _start(lab, log, *args):
    return subprocess.Popen([sys.executable, "-m", "dropcli", *args], cwd=lab, env=_env(lab, log),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _trainings(log) -> Counter:
    if not Path(log).exists():
        return Counter()
    return Counter(Path(line.split(" ", 1)[1]).name for line in Path(log).read_text().splitlines())


def _metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _workers_of(log) -> list[int]:
    """Live processes started with our training log in their environment."""
    return live_processes_with_env("DROPCLI_TRAINING_LOG", str(log))


def _wait_quiet(log, runs, timeout=30.0):
    """Until no process of ours is alive and no run reads `running`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _workers_of(log) and all(run_status(p) != "running" for p in find_runs(runs)):
            return
        time.sleep(0.05)
    raise AssertionError(f"processes left behind: {_workers_of(log)}")


# --- concurrency -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(lab):
    """Three sweeps at once: GRID twice (the same sweep folder) and OVERLAP (another)."""
    runs, log = lab / "concurrent", lab / "concurrent.log"
    procs = [_start(lab, log, "sweep", "sig.yaml", *grid, "-j", "2", "--runs-dir", str(runs))
             for grid in (GRID, GRID, OVERLAP)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    return runs, log


def test_concurrent_overlapping_sweeps_train_each_run_exactly_once(reference):
    runs, log = reference
    grid, overlap = sorted(runs.iterdir(), key=lambda p: len(list(p.glob("*/summary.json"))), reverse=True)
    folders = find_runs(runs)
    assert len(folders) == 8 + 4 and all(run_status(p) == "completed" for p in folders)
    ids = {p.name for p in folders}
    trainings = _trainings(log)
    assert set(trainings) == ids and set(trainings.values()) == {1}, trainings  # 10 run ids, each trained once
    for run_id in ids:
        copies = [p for p in folders if p.name == run_id]
        linked = [p for p in copies if json.loads((p / "summary.json").read_text()).get("reused_from")]
        assert len(linked) == len(copies) - 1, run_id  # the run's other copy is linked in, not trained
        assert len({(p / "metrics.jsonl").read_bytes() for p in copies}) == 1
    assert not (runs / ".locks").exists()


# --- interruptions, at random ------------------------------------------------------------------

# (signal, sent to the process group?, sent twice?) - every kind at least once, in a seeded order
KINDS = [("SIGINT", False, False), ("SIGINT", True, False), ("SIGTERM", False, False), ("SIGTERM", True, False),
         ("SIGKILL", False, False), ("SIGKILL", True, False), ("SIGINT", True, True), ("SIGTERM", False, True)]


def _lock_pid(run_dir):
    try:
        return json.loads((run_dir / "lock").read_text()).get("pid")
    except (OSError, ValueError):
        return None


def _wait_for(predicate, proc, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.01)
    return proc.poll() is None and predicate()


def _check_folders(runs, allowed):
    """Every run folder is readable, its status allowed, its metrics consistent."""
    statuses = {}
    for path in find_runs(runs):
        run = read_run(path)  # raises if unreadable
        assert run.status in allowed, (path.name, run.status, run.warnings)
        epochs = [r["epoch"] for r in run.metrics]
        assert epochs == list(range(len(epochs))), (path.name, epochs)
        if run.status == "interrupted":
            assert run.summary["epochs_completed"] == (epochs[-1] if epochs else 0), path.name
        statuses[path.name] = run.status
    return statuses


def _interrupt(proc, kind, delay):
    """Send the signal(s) after ``delay`` if the process is still running; True if sent."""
    name, group, twice = kind
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    sig = getattr(signal, name)
    send = (lambda: os.killpg(proc.pid, sig)) if group else (lambda: proc.send_signal(sig))
    send()
    if twice:
        time.sleep(0.02)
        if proc.poll() is None:
            send()
    return True


def test_a_sweep_interrupted_at_random_points_resumes_to_the_full_set(lab, reference):
    rng = random.Random(20240607)
    runs, log = lab / "interrupted", lab / "interrupted.log"
    kinds = rng.sample(KINDS, len(KINDS))
    completed_before, crashed_before = set(), set()
    for kind in kinds:
        jobs = rng.choice(["2", "2", "1"])
        started = time.time()
        proc = _start(lab, log, "sweep", "sig.yaml", *GRID, "-j", jobs, "--runs-dir", str(runs))
        spec = lambda: any(p.stat().st_mtime >= started for p in runs.glob("*/sweep.yaml"))  # noqa: E731
        if not _wait_for(spec, proc):  # it finished (or failed) before it was ready
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            continue
        sent = _interrupt(proc, kind, rng.uniform(0.1, 1.0))
        out, err = proc.communicate(timeout=60)
        _wait_quiet(log, runs)
        assert "Traceback" not in err, err
        name, group, twice = kind
        if not sent:
            assert proc.returncode == 0, err
            continue
        COUNTS["injected"] += 1
        COUNTS[f"{name}{' (group)' if group else ''}{' x2' if twice else ''}"] += 1
        # A second signal that lands while Python shuts down kills it by that signal: a
        # shell reports 128 + signal, the same 130 for SIGINT.
        codes = {0, -signal.SIGKILL} if name == "SIGKILL" else {0, 130, *([-getattr(signal, name)] if twice else [])}
        assert proc.returncode in codes, (kind, proc.returncode, err)
        allowed = {"completed", "interrupted", "pending", "crashed"}
        statuses = _check_folders(runs, allowed)
        done = {r for r, s in statuses.items() if s == "completed"}
        assert completed_before <= done, "a completed run was lost"
        crashed = {r for r, s in statuses.items() if s == "crashed"}
        if name != "SIGKILL" and not twice:
            assert crashed <= crashed_before, (kind, statuses)  # one Ctrl-C or SIGTERM: nothing new reads crashed
        completed_before, crashed_before = done, crashed

    # resume, uninterrupted: exactly the full set, bit-identical to the sweep that never stopped
    proc = _start(lab, log, "sweep", "sig.yaml", *GRID, "-j", "2", "--runs-dir", str(runs))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    (sweep_dir,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
    ref_runs, _ = reference
    ref_dir = next(p for p in ref_runs.iterdir() if p.name == sweep_dir.name)
    expected = {p.name for p in ref_dir.iterdir() if p.is_dir()}
    statuses = _check_folders(runs, {"completed"})
    COUNTS["lost"] += len(expected - set(statuses))
    assert set(statuses) == expected and len(expected) == 8
    for run_id in expected:
        assert _metrics(sweep_dir / run_id) == _metrics(ref_dir / run_id), run_id
    assert _workers_of(log) == []


def test_train_interrupted_at_random_points_then_completed(lab):
    rng = random.Random(7)
    runs, log = lab / "train", lab / "train.log"
    config = lab / "long.yaml"
    config.write_text(CONFIG.replace("epochs: 300", "epochs: 400"))
    for kind in rng.sample([("SIGINT", False, False), ("SIGTERM", True, False), ("SIGKILL", False, False),
                            ("SIGINT", False, True)], 4):
        proc = _start(lab, log, "train", str(config), "--runs-dir", str(runs))
        # ready: this process holds the run (its handlers are in place long before)
        ready = lambda: any(_lock_pid(p) == proc.pid for p in runs.glob("sig-*"))  # noqa: E731
        assert _wait_for(ready, proc), proc.communicate()
        sent = _interrupt(proc, kind, rng.uniform(0.0, 0.6))
        out, err = proc.communicate(timeout=60)
        _wait_quiet(log, runs)
        assert sent and "Traceback" not in err, err
        COUNTS["injected"] += 1
        COUNTS[f"train {kind[0]}{' x2' if kind[2] else ''}"] += 1
        folders = [p for p in runs.iterdir() if not p.name.startswith(".")]
        if not any((p / "config.yaml").exists() for p in folders):
            # The signal landed before the run wrote its first file: nothing of it is stored.
            assert not _check_folders(runs, set()) and proc.returncode != 0
            continue
        (run_dir,) = folders
        expected = {"SIGKILL": "crashed"}.get(kind[0], "crashed" if kind[2] else "interrupted")
        if kind[0] == "SIGKILL":
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode in (130, *([-getattr(signal, kind[0])] if kind[2] else [])), err
            assert "interrupted" in err
        status = _check_folders(runs, {"interrupted", "crashed"})[run_dir.name]
        assert status == expected or (kind[2] and status == "interrupted"), (kind, status)
    proc = _start(lab, log, "train", str(config), "--runs-dir", str(runs))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    statuses = _check_folders(runs, {"completed"})
    COUNTS["lost"] += sum(s != "completed" for s in statuses.values())
    assert len(statuses) == 1


def test_a_worker_killed_mid_run_does_not_take_the_sweep_down(lab):
    runs, log = lab / "worker", lab / "worker.log"
    grid = ["--keep", "0.5", "--seeds", "0,1,2"]
    proc = _start(lab, log, "sweep", "sig.yaml", *grid, "-j", "2", "--runs-dir", str(runs))
    held = []

    def a_worker_trains():
        held[:] = [(_lock_pid(p.parent), p.parent.name) for p in runs.glob("*/*/lock")]
        held[:] = [(pid, run) for pid, run in held if pid and pid != proc.pid]
        return bool(held)

    assert _wait_for(a_worker_trains, proc), proc.communicate()
    time.sleep(0.2)
    victim_pid, victim = held[0]
    os.kill(victim_pid, signal.SIGKILL)  # as the OOM killer would
    COUNTS["injected"] += 1
    COUNTS["SIGKILL (one worker)"] += 1
    out, err = proc.communicate(timeout=120)
    _wait_quiet(log, runs)
    assert proc.returncode == 1 and "Traceback" not in err, err  # one run crashed; the others went on
    statuses = _check_folders(runs, {"completed", "crashed"})
    assert len(statuses) == 3 and statuses.pop(victim) == "crashed", statuses
    assert set(statuses.values()) == {"completed"}
    assert "crashed" in out
    proc = _start(lab, log, "sweep", "sig.yaml", *grid, "-j", "2", "--runs-dir", str(runs))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    statuses = _check_folders(runs, {"completed"})
    COUNTS["lost"] += sum(s != "completed" for s in statuses.values())
    assert len(statuses) == 3
