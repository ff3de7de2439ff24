"""Sweeps: the cartesian grid of a config's ``sweep:`` axes, run into one sweep folder.

Every grid point is an ordinary run (``runner.train_run``) in ``<sweep-dir>/<run_id>``.
Running the same sweep again resumes it: completed runs are skipped. With ``jobs > 1``
runs go to worker processes, each with its BLAS threads capped so that ``jobs`` workers
share the cores instead of oversubscribing them; results do not depend on ``jobs``
because every run draws only from its own seed's streams.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .config import Config, config_to_dict, run_config, with_values
from .runs import SCHEMA_VERSION, atomic_write_text, run_status, safe_name


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


def pending_runs(plan: SweepPlan, *, force=False) -> list[PlannedRun]:
    """The runs still to do: all with ``force``, else those not completed."""
    return [r for r in plan.runs if force or run_status(plan.path / r.run_id) != "completed"]


def run_sweep(plan: SweepPlan, *, jobs=1, force=False, argv=None, on_event=None) -> list[dict]:
    """Run the plan's pending runs and return every run's summary, in plan order.

    ``on_event(kind, run, summary)`` is called with ``"skip"`` for runs already completed
    and ``"done"`` after each run finishes (whatever its status). A run that fails does
    not stop the others. KeyboardInterrupt cancels the rest and propagates.
    """
    from .runner import train_run

    emit = on_event or (lambda kind, run, summary: None)
    write_spec(plan)
    todo = pending_runs(plan, force=force)
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

    if jobs <= 1 or len(todo) <= 1:
        for run in todo:
            finished(run, train_run(run.config, plan.path, argv=argv, force=force))
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=_spawn()) as pool:
            futures = {
                pool.submit(_worker, run.config, plan.path, argv, force, threads): run for run in todo
            }
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        run = futures[fut]
                        try:
                            summary = fut.result()
                        except Exception as e:  # the worker itself died
                            summary = {"run_id": run.run_id, "status": "failed", "reason": f"{type(e).__name__}: {e}"}
                        finished(run, summary)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    write_summary_csv(plan)
    return [results[r.run_id] for r in plan.runs]


def _spawn():
    import multiprocessing

    return multiprocessing.get_context("spawn")


def _worker(config, sweep_dir, argv, force, threads):
    from .runner import train_run

    return train_run(config, sweep_dir, argv=argv, force=force, threads=threads)


def _read_summary(run_dir: Path) -> dict:
    from .runs import read_json

    return read_json(run_dir / "summary.json") or {"status": run_status(run_dir)}


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
