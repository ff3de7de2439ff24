"""Running a sweep: the plan of its grid (``dropcli.sweep.grid``), run into one sweep folder.

Every grid point is an ordinary run (``experiment.run.train_run``) in ``<sweep-dir>/<run_id>``.
Running the same sweep again resumes it: runs that are done (``done_statuses``) are
skipped, the rest (pending, interrupted, crashed, corrupt) run again; a run another sweep
of the same runs folder already finished is linked in, not trained again, and one that
another live process is training is waited for. Results do not depend on where runs
train: every run draws only from its own seed's streams.

Where runs train is the executor's business (``dropcli.sweep.executors``: in this process,
in local worker processes, or on a dask cluster); resume, progress, failure handling
and the runs store are the same for all of them.

Interruption: KeyboardInterrupt in the sweep's process (Ctrl-C; the CLI turns SIGTERM
into one) stops the runs in progress (each marked ``interrupted``), cancels the rest,
writes summary.csv, and goes on.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from dropcli.config import Config, config_to_dict
from dropcli.experiment.build import load_run_data, make_net
from dropcli.experiment.threads import available_cores
from dropcli.store.files import read_json
from dropcli.store.layout import LOCKS_DIR, run_key
from dropcli.store.locks import lock_is_live
from dropcli.store.runs import read_summary, run_status
from dropcli.sweep.executors import make_executor
from dropcli.sweep.grid import PlannedRun, SweepPlan, write_spec
from dropcli.sweep.job import SweepJob
from dropcli.sweep.summary import write_summary_csv


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


def run_threads(plan: SweepPlan, cores: int | None = None) -> int:
    """The BLAS threads each of the plan's runs trains with: the cores shared among the
    grid's runs, at least one. It depends on the grid and the machine only, never on
    ``-j``, the executor or what is left to resume: OpenBLAS rounds differently at
    different thread counts, and a sweep's numbers must not depend on how it was run."""
    return max(1, (available_cores() if cores is None else cores) // max(1, len(plan.runs)))


def check_data(runs) -> None:
    """Load each distinct data setting of ``runs`` once and build each distinct net on it:
    DataError or ConfigError, naming the setting, before anything is written."""
    nets_by_data: dict[str, dict[str, Config]] = {}
    for run in runs:
        d = config_to_dict(run.config)
        nets = nets_by_data.setdefault(json.dumps([d["data"], run.config.train.dtype], sort_keys=True), {})
        nets.setdefault(json.dumps([d["model"], d["dropout"]], sort_keys=True), run.config)
    for nets in nets_by_data.values():  # one data set in memory at a time
        data = load_run_data(next(iter(nets.values())))
        for config in nets.values():
            make_net(config, data)


def run_sweep(plan: SweepPlan, *, jobs=1, executor=None, force=False, retry_failed=False, argv=None,
              on_event=None, poll=0.5) -> list[dict]:
    """Run the plan's runs that are not done and return every run's summary, in plan order.

    ``executor`` (see ``dropcli.sweep.executors``) trains them; by default the serial one, or
    ``jobs`` local worker processes. ``on_event(kind, run, summary)`` is called with
    ``"start"`` (run None) once the data is checked and the sweep folder written,
    ``"skip"`` for runs already done, ``"wait"`` for a run another live process is
    training (it is waited for, after the others, and its result taken), and ``"done"``
    after each run finishes, whatever its status (``"reused_from"`` in the summary if it
    was linked in from another sweep). A run that fails does not stop the others, nor
    does a worker that dies. Bad data settings, and nets that cannot be built on their
    data, raise DataError or ConfigError before anything is written (for executors that
    train on this machine; elsewhere such a run is reported failed). KeyboardInterrupt
    interrupts the running runs, cancels the rest, writes summary.csv and propagates.
    """
    executor = executor or make_executor("auto", jobs=jobs)
    emit = on_event or (lambda kind, run, summary: None)
    done = done_statuses(force=force, retry_failed=retry_failed)
    todo = pending_runs(plan, force=force, retry_failed=retry_failed)
    if todo and executor.trains_here:
        check_data(todo)
    with executor if todo else contextlib.nullcontext():  # nothing to train: no cluster to start
        write_spec(plan)
        emit("start", None, {})
        todo_ids = {r.run_id for r in todo}
        results = {}
        for run in plan.runs:
            if run.run_id not in todo_ids:
                results[run.run_id] = read_summary(plan.path / run.run_id)
                emit("skip", run, results[run.run_id])

        def finished(run, summary):
            results[run.run_id] = summary
            write_summary_csv(plan, results)  # from the summaries in hand; the last one below reads the disk
            emit("done", run, summary)

        threads = run_threads(plan)
        job = SweepJob(path=plan.path, threads=threads, argv=argv, force=force, done=done, finished=finished,
                       emit=emit)
        # Runs another process is training: once it lets go, take its result, or train them.
        others = SweepJob(path=plan.path, threads=threads, argv=argv, force=False, done=OTHERS_RESULT,
                          finished=finished, emit=lambda *event: None)
        try:
            busy = executor.run(job, todo) if todo else []
            while busy:
                time.sleep(poll)
                free = [run for run in busy if not _held_elsewhere(job.root, run.run_id)]
                if free:
                    busy = [run for run in busy if run not in free] + executor.run(others, free)
        finally:
            write_summary_csv(plan)
    return [results.get(r.run_id) or read_summary(plan.path / r.run_id) for r in plan.runs]


def _held_elsewhere(root: Path, run_id: str) -> bool:
    """True while a live process holds the run's lock (cheap: no data is loaded)."""
    lock = _read_json_quiet(Path(root) / LOCKS_DIR / run_key(run_id))
    return lock is not None and lock_is_live(lock)


def _read_json_quiet(path: Path) -> dict | None:
    try:
        return read_json(path)
    except Exception:  # a lock torn mid-write: treat it as free, the real lock decides
        return None
