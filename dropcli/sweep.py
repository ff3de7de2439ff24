"""Sweeps: the cartesian grid of a config's ``sweep:`` axes, run into one sweep folder.

Every grid point is an ordinary run (``runner.train_run``) in ``<sweep-dir>/<run_id>``.
Running the same sweep again resumes it: runs that are done (``done_statuses``) are
skipped, the rest (pending, interrupted, crashed, corrupt) run again; a run another sweep
of the same runs folder already finished is linked in, not trained again, and one that
another live process is training is waited for. With ``jobs > 1`` runs go to worker
processes, each with its BLAS threads capped so that ``jobs`` workers share the cores
instead of oversubscribing them; results do not depend on ``jobs`` because every run
draws only from its own seed's streams.

Interruption: KeyboardInterrupt in the sweep's process (Ctrl-C; the CLI turns SIGTERM
into one) sends SIGTERM to the workers, each marks its run ``interrupted`` and returns,
runs not started are cancelled, summary.csv is written, and the KeyboardInterrupt goes
on. Workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; the
sweep decides) and interrupt their run on SIGTERM or when the sweep's process dies.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from .config import Config, config_to_dict, run_config, with_values
from .errors import DropcliError
from .runs import (
    LOCKS_DIR, SCHEMA_VERSION, RunBusyError, atomic_write_text, lock_is_live, read_json, run_status, safe_name,
)


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    values: dict  # the swept values of this grid point, by dotted key
    config: Config


@dataclass(frozen=True)
class SweepPlan:
    path: Path  # the sweep folder
    axes: dict  # dotted key -> list of values, in grid order
    base: Config
    runs: tuple[PlannedRun, ...]

    @property
    def sweep_id(self) -> str:
        return self.path.name


def plan_sweep(config: Config, runs_dir: Path) -> SweepPlan:
    """The runs of ``config``'s grid (its ``sweep`` section) under ``runs_dir``.

    A config with an empty grid is a sweep of one run. Grid points that resolve to the
    same config are run once.
    """
    from .runner import run_id

    axes = {key: list(values) for key, values in config.sweep.items()}
    base = run_config(config)
    runs, seen = [], set()
    for point in itertools.product(*axes.values()):
        values = dict(zip(axes, point))
        cfg = run_config(with_values(base, values, source="sweep"))
        rid = run_id(cfg)
        if rid not in seen:
            seen.add(rid)
            runs.append(PlannedRun(rid, values, cfg))
    digest = hashlib.sha256(
        json.dumps({"base": config_to_dict(base), "axes": axes}, sort_keys=True, default=list).encode()
    ).hexdigest()[:8]
    path = Path(runs_dir) / f"{safe_name(config.name)}-sweep-{digest}"
    return SweepPlan(path=path, axes=axes, base=base, runs=tuple(runs))


def write_spec(plan: SweepPlan) -> None:
    import yaml

    spec = {
        "schema_version": SCHEMA_VERSION,
        "sweep_id": plan.sweep_id,
        "name": plan.base.name,
        "axes": {k: _plain(v) for k, v in plan.axes.items()},
        "base": config_to_dict(plan.base),
        "runs": [{"run_id": r.run_id, "values": _plain(r.values)} for r in plan.runs],
    }
    plan.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan.path / "sweep.yaml", yaml.safe_dump(_plain(spec), sort_keys=False))


def _plain(value):
    """Tuples to lists, so YAML and JSON write plain sequences."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def done_statuses(*, force: bool = False, retry_failed: bool = False) -> tuple[str, ...]:
    """The statuses a sweep does not train again: completed, diverged and failed (the
    same config and seed end the same way every time); only completed with
    ``retry_failed``; none with ``force``."""
    if force:
        return ()
    return ("completed",) if retry_failed else ("completed", "diverged", "failed")


# What another process's run may end as for a sweep that waited for it to accept it.
OTHERS_RESULT = ("completed", "diverged", "failed")


def pending_runs(plan: SweepPlan, *, force=False, retry_failed=False) -> list[PlannedRun]:
    """The runs still to do: those whose status is not in ``done_statuses``."""
    done = done_statuses(force=force, retry_failed=retry_failed)
    return [r for r in plan.runs if not done or run_status(plan.path / r.run_id) not in done]


def check_data(runs) -> None:
    """Load each distinct data setting of ``runs`` once: DataError before anything is written."""
    import numpy as np

    from .data import load_data
    from .nn import streams

    seen = set()
    for run in runs:
        key = json.dumps([config_to_dict(run.config)["data"], run.config.train.dtype], sort_keys=True)
        if key not in seen:
            seen.add(key)
            load_data(run.config.data, streams(run.config.seed)["data"], dtype=np.dtype(run.config.train.dtype))


def run_sweep(plan: SweepPlan, *, jobs=1, force=False, retry_failed=False, argv=None, on_event=None,
              poll=0.5) -> list[dict]:
    """Run the plan's runs that are not done and return every run's summary, in plan order.

    ``on_event(kind, run, summary)`` is called with ``"start"`` (run None) once the data is
    checked and the sweep folder written, ``"skip"`` for runs already done,
    ``"wait"`` for a run another live process is training (it is waited for, after the
    others, and its result taken), and ``"done"`` after each run finishes, whatever its
    status (``"reused_from"`` in the summary if it was linked in from another sweep). A
    run that fails does not stop the others, nor does a worker process that dies (its run
    reads ``crashed``; the runs it took down with the pool are run again). Bad data
    settings raise DataError before anything is written. KeyboardInterrupt interrupts
    the running runs, cancels the rest, writes summary.csv and propagates.
    """
    from .runner import train_run

    emit = on_event or (lambda kind, run, summary: None)
    done = done_statuses(force=force, retry_failed=retry_failed)
    todo = pending_runs(plan, force=force, retry_failed=retry_failed)
    if todo:
        check_data(todo)
    write_spec(plan)
    emit("start", None, {})
    todo_ids = {r.run_id for r in todo}
    results = {}
    for run in plan.runs:
        if run.run_id not in todo_ids:
            results[run.run_id] = _read_summary(plan.path / run.run_id)
            emit("skip", run, results[run.run_id])

    def finished(run, summary):
        results[run.run_id] = summary
        write_summary_csv(plan)
        emit("done", run, summary)

    root = plan.path.parent
    busy = []
    try:
        if jobs <= 1 or len(todo) <= 1:
            for run in todo:
                try:
                    finished(run, train_run(run.config, plan.path, argv=argv, force=force, skip=done, root=root))
                except RunBusyError:
                    busy.append(run)
                    emit("wait", run, {"status": "running"})
                except DropcliError as e:  # this grid point's data or net: nothing written, as with workers
                    finished(run, {"run_id": run.run_id, "status": "failed", "reason": f"{type(e).__name__}: {e}"})
        else:
            busy = _run_parallel(plan, todo, jobs, force, done, argv, finished, emit)
        while busy:  # runs another process is training: take its result, or train them if it stopped
            time.sleep(poll)
            for run in list(busy):
                if _held_elsewhere(root, run.run_id):
                    continue
                try:
                    summary = train_run(run.config, plan.path, argv=argv, skip=OTHERS_RESULT, root=root)
                except RunBusyError:
                    continue
                busy.remove(run)
                finished(run, summary)
    finally:
        write_summary_csv(plan)
    return [results.get(r.run_id) or _read_summary(plan.path / r.run_id) for r in plan.runs]


def _held_elsewhere(root: Path, run_id: str) -> bool:
    """True while a live process holds the run id's lock (cheap: no data is loaded)."""
    lock = _read_json_quiet(Path(root) / LOCKS_DIR / run_id)
    return lock is not None and lock_is_live(lock)


def _read_json_quiet(path: Path) -> dict | None:
    try:
        return read_json(path)
    except Exception:  # a lock torn mid-write: treat it as free, the real lock decides
        return None


# --- worker processes ------------------------------------------------------------------

_WORKERS: set = set()  # worker processes of the sweeps running in this process (for kill_workers)


def _run_parallel(plan, todo, jobs, force, done, argv, finished, emit) -> list:
    """Run ``todo`` in worker processes; return the runs another process is training.

    A pool whose worker died breaks (Python then SIGTERMs the other workers, whose runs
    are interrupted); the runs that pool did not finish, except the dead worker's own
    (``crashed``), go to a new pool, as long as each round finishes at least one run."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    root = plan.path.parent
    busy, remaining = [], list(todo)
    while remaining:
        retry, progress = [], False

        def outcome(run, summary, error):
            nonlocal progress
            run_dir = plan.path / run.run_id
            if summary is not None and summary.get("busy"):
                busy.append(run)
                emit("wait", run, {"status": "running"})
            elif (error or summary.get("status") == "interrupted") and (
                    _settled_status(run_dir) in ("pending", "interrupted")):
                retry.append(run)  # its worker was stopped or taken down with the pool, not by its own doing
            else:
                reason = {} if error is None else {"reason": f"worker process died ({type(error).__name__})"}
                finished(run, {**_read_summary(run_dir), **reason} if error else summary)
                progress = True

        with ProcessPoolExecutor(max_workers=min(jobs, len(remaining)), mp_context=_spawn(),
                                 initializer=_worker_init) as pool:
            futures, workers = {}, []
            try:
                with _signals_blocked():  # workers start with them blocked, until their handlers are set
                    for run in remaining:
                        futures[pool.submit(_worker, run.config, plan.path, root, argv, force, done, threads)] = run
                    workers = list((getattr(pool, "_processes", None) or {}).values())
                    _WORKERS.update(workers)
                _collect(futures, set(futures), outcome)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                for process in workers:  # each marks its run interrupted and exits
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(process.pid, signal.SIGTERM)
                for process in workers:
                    process.join()
                raise
            finally:
                _WORKERS.difference_update(workers)
        if retry and not progress:
            for run in retry:
                finished(run, {**_read_summary(plan.path / run.run_id), "reason": "its worker processes kept stopping"})
            break
        remaining = retry
    return busy


def _settled_status(run_dir: Path, timeout: float = 60.0) -> str:
    """The run's status once no live process holds it: a pool that broke is still
    stopping its other workers, each writing its run's summary."""
    deadline = time.monotonic() + timeout
    while (status := run_status(run_dir)) == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    return status


def _collect(futures: dict, pending: set, outcome) -> None:
    """Call ``outcome(run, summary, error)`` for each of ``pending`` as it completes;
    ``error`` is the exception of a pool whose worker died."""
    while pending:
        completed, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in completed:
            run = futures[fut]
            if fut.cancelled():
                continue
            error = fut.exception()  # never raises for a done future: a Ctrl-C here stays ours
            if error is None:
                outcome(run, fut.result(), None)
            elif isinstance(error, (BrokenProcessPool, KeyboardInterrupt)):  # the worker died or was stopped
                outcome(run, None, error)
            else:  # the run raised before training (its data, say): nothing written
                outcome(run, {"run_id": run.run_id, "status": "failed", "reason": f"{type(error).__name__}: {error}"},
                        None)


@contextlib.contextmanager
def _signals_blocked():
    """Block SIGINT and SIGTERM in this thread; processes started meanwhile inherit the mask."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a signal that came meanwhile is delivered now


def kill_workers() -> None:
    """SIGKILL every worker of the sweeps running in this process (a second Ctrl-C)."""
    for process in list(_WORKERS):
        with contextlib.suppress(OSError, ValueError):
            os.kill(process.pid, signal.SIGKILL)


def _spawn():
    import multiprocessing

    return multiprocessing.get_context("spawn")


_WORKER = {"in_run": False, "raised": False}


def _worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the sweep's process decides
    signal.signal(signal.SIGTERM, _worker_stop)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


def _worker_stop(signum, frame):
    """SIGTERM: interrupt the run in progress (it is marked interrupted, then the worker
    exits: see ``_worker``); an idle worker has nothing to save and exits at once."""
    if not _WORKER["in_run"]:
        os._exit(0)
    if not _WORKER["raised"]:
        _WORKER["raised"] = True
        raise KeyboardInterrupt


def _watch_parent(parent: int) -> None:
    """If the sweep's process dies (SIGKILL), stop the way SIGTERM does."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)  # the run's summary is written by then
    os._exit(1)


def _worker(config, sweep_dir, root, argv, force, skip, threads):
    from .runner import train_run

    try:
        _WORKER["in_run"] = True
        return train_run(config, sweep_dir, argv=argv, force=force, skip=skip, root=root, threads=threads)
    except KeyboardInterrupt:
        # The run is marked interrupted and its locks are released; the sweep that sent
        # SIGTERM reads that from disk and wants nothing more from this worker.
        os._exit(0)
    except RunBusyError:
        return {"busy": True}
    finally:
        _WORKER["in_run"] = False


def _read_summary(run_dir: Path) -> dict:
    """The run's summary, or just its status if it has none (or an unreadable one)."""
    try:
        summary = read_json(run_dir / "summary.json")
    except Exception:  # corrupt: the status says so
        summary = None
    if summary is None or summary.get("status") not in ("completed", "diverged", "interrupted", "failed"):
        return {"run_id": run_dir.name, "status": run_status(run_dir)}
    return summary


CSV_METRICS = (
    ("final_val_acc", ("final", "val_acc")),
    ("best_val_acc", ("best", "val_acc")),
    ("best_epoch", ("best", "epoch")),
    ("final_train_acc", ("final", "train_acc")),
    ("test_acc", ("test", "acc")),
)


def summary_rows(plan: SweepPlan) -> list[dict]:
    """One row per run: its swept values, status and headline metrics."""
    rows = []
    for run in plan.runs:
        summary = _read_summary(plan.path / run.run_id)
        row = {"run_id": run.run_id, "status": summary.get("status")}
        row.update({k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in run.values.items()})
        row["keep_prob"] = run.config.dropout.keep_prob
        row["drop_rate"] = round(1 - run.config.dropout.keep_prob, 12)
        for col, (section, key) in CSV_METRICS:
            row[col] = (summary.get(section) or {}).get(key)
        tr, va = row["final_train_acc"], row["final_val_acc"]
        row["train_val_gap"] = None if tr is None or va is None else tr - va
        row["epochs_completed"] = summary.get("epochs_completed")
        row["wall_time"] = summary.get("wall_time")
        rows.append(row)
    return rows


def write_summary_csv(plan: SweepPlan) -> None:
    rows = summary_rows(plan)
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(plan.path / "summary.csv", buf.getvalue())
