"""Runs in local worker processes (``-j N``), each with its BLAS threads capped so that
N workers share the cores instead of oversubscribing them.

Workers are spawned (never forked: BLAS thread pools do not survive a fork), ignore
SIGINT (a terminal's Ctrl-C reaches the whole process group; the sweep decides), and
interrupt their run on SIGTERM or when the sweep's process dies, even if it died before
they started (none outlives a ``kill -9`` of the sweep, holding its output open). A pool
whose worker died breaks (Python then SIGTERMs the other workers, whose runs are
interrupted); the runs it did not finish, except the dead worker's own (``crashed``), go
to a new pool, as long as each round finishes at least one run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from dropcli.experiment.run import train_run
from dropcli.store.locks import RunBusyError
from dropcli.store.runs import read_summary, run_status
from dropcli.sweep.job import SweepJob, failed, signals_blocked
from dropcli.sweep.serial import SerialExecutor

_WORKERS: set = set()  # worker processes of the sweeps running in this process (for kill_workers)


class ProcessExecutor:
    name = "processes"
    trains_here = True
    description = None  # nothing worth naming on the sweep's start line

    def __init__(self, jobs: int):
        self.jobs = jobs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, job: SweepJob, todo: list) -> list:
        if len(todo) <= 1:  # not worth a worker's start-up
            return SerialExecutor().run(job, todo)
        threads = job.threads
        busy, remaining = [], list(todo)
        while remaining:
            retry, progress = [], False

            def outcome(run, summary, error):
                nonlocal progress
                run_dir = job.path / run.run_id
                if summary is not None and summary.get("busy"):
                    busy.append(run)
                    job.emit("wait", run, {"status": "running"})
                elif (error or summary.get("status") == "interrupted") and (
                        _settled_status(run_dir) in ("pending", "interrupted")):
                    retry.append(run)  # its worker was stopped or taken down with the pool, not by its own doing
                else:
                    reason = {} if error is None else {"reason": f"worker process died ({type(error).__name__})"}
                    job.finished(run, {**read_summary(run_dir), **reason} if error else summary)
                    progress = True

            self._round(job, remaining, threads, outcome)
            if retry and not progress:
                for run in retry:
                    job.finished(run, {**read_summary(job.path / run.run_id),
                                       "reason": "its worker processes kept stopping"})
                break
            remaining = retry
        return busy

    def _round(self, job, runs, threads, outcome) -> None:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=min(self.jobs, len(runs)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(os.getpid(),)) as pool:
            futures, workers = {}, []
            try:
                with signals_blocked(signal.SIGINT, signal.SIGTERM):  # workers start with them blocked, until their handlers are set
                    for run in runs:
                        futures[pool.submit(_worker, run.config, run.run_id, job.path, job.root, job.argv, job.force,
                                            job.done, threads)] = run
                    workers = list((getattr(pool, "_processes", None) or {}).values())
                    _WORKERS.update(workers)
                _collect(futures, outcome)
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


def _settled_status(run_dir: Path, timeout: float = 60.0) -> str:
    """The run's status once no live process holds it: a pool that broke is still
    stopping its other workers, each writing its run's summary."""
    deadline = time.monotonic() + timeout
    while (status := run_status(run_dir)) == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    return status


def _collect(futures: dict, outcome) -> None:
    """Call ``outcome(run, summary, error)`` for each future as it completes; ``error``
    is the exception of a pool whose worker died."""
    pending = set(futures)
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
                outcome(run, failed(run, error), None)


def kill_workers() -> None:
    """SIGKILL every worker of the sweeps running in this process (a second Ctrl-C)."""
    for process in list(_WORKERS):
        with contextlib.suppress(OSError, ValueError):
            os.kill(process.pid, signal.SIGKILL)


# --- in the worker process -------------------------------------------------------------

_WORKER = {"in_run": False, "raised": False}


def _worker_init(sweep_pid: int):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the sweep's process decides
    signal.signal(signal.SIGTERM, _worker_stop)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    # The sweep's own pid, not getppid(): a sweep killed before this runs has already left
    # the worker to a reaper, which getppid() would name.
    threading.Thread(target=_watch_parent, args=(sweep_pid,), daemon=True).start()


def _worker_stop(signum, frame):
    """SIGTERM: interrupt the run in progress (it is marked interrupted, then the worker
    exits: see ``_worker``); an idle worker has nothing to save and exits at once."""
    if not _WORKER["in_run"]:
        os._exit(0)
    if not _WORKER["raised"]:
        _WORKER["raised"] = True
        raise KeyboardInterrupt


def _watch_parent(parent: int) -> None:
    """If the sweep's process dies (SIGKILL), even before this worker started, stop the
    way SIGTERM does. (Once no worker is left, multiprocessing's resource tracker reads
    EOF and exits too.)"""
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)  # the run's summary is written by then
    os._exit(1)


def _worker(config, folder, sweep_dir, root, argv, force, skip, threads):
    try:
        _WORKER["in_run"] = True
        return train_run(config, sweep_dir, folder=folder, argv=argv, force=force, skip=skip, root=root,
                         threads=threads)
    except KeyboardInterrupt:
        # The run is marked interrupted and its locks are released; the sweep that sent
        # SIGTERM reads that from disk and wants nothing more from this worker.
        os._exit(0)
    except RunBusyError:
        return {"busy": True}
    finally:
        _WORKER["in_run"] = False
