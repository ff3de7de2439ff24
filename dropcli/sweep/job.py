"""The executor interface: what a sweep hands to whatever trains its runs.

An executor trains the runs it is given and reports each one through the job's
``finished(run, summary)`` as it ends, whatever its status. It must leave the runs
store exactly as a local ``train_run`` would, so that resume, ``dropcli runs`` and
``dropcli plot`` cannot tell executors apart:

* a run is trained only while its process holds ``claim_run`` on it (for executors
  whose workers share no file system, the sweep's process holds it for them);
* a run that another live process is training is not waited for by the executor: it is
  returned from ``run`` and the sweep waits for it;
* a run that raises before training (its data, say) is reported failed with the reason
  and nothing is written for it (it is retried when the sweep runs again);
* on KeyboardInterrupt, the runs in progress end ``interrupted``, nothing else starts,
  and the KeyboardInterrupt propagates.

Executors are context managers: ``__enter__`` acquires what they need (a cluster, a
connection) before the sweep writes anything, so a wrong scheduler address is an error
with nothing written.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol


@dataclass(frozen=True)
class SweepJob:
    """What every executor needs from the sweep."""

    path: Path  # the sweep folder; each run goes to path / run.run_id
    threads: int  # BLAS threads every run trains with, whichever executor and -j (see sweep.run.run_threads)
    argv: list | None  # recorded in each run's meta.json
    force: bool  # train even runs that are done (no reuse)
    done: tuple  # statuses that need no training (see sweep.run.done_statuses)
    finished: Callable  # finished(run, summary): a run ended (any status)
    emit: Callable  # emit(kind, run, summary): progress events ("wait")

    @property
    def root(self) -> Path:
        """The runs folder (its .locks and reusable peers)."""
        return self.path.parent


class Executor(Protocol):
    name: str
    trains_here: bool  # runs load their data on this machine (so the sweep checks it first)
    description: str | None  # where runs train, for the sweep's start line (set by __enter__)

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc) -> None: ...

    def run(self, job: SweepJob, todo: list) -> list:
        """Train ``todo`` (PlannedRuns); return those another live process is training."""
        ...


def failed(run, error: BaseException) -> dict:
    """The summary of a run that raised before training: reported, never written."""
    return {"run_id": run.run_id, "status": "failed", "reason": f"{type(error).__name__}: {error}"}


@contextlib.contextmanager
def signals_blocked(*signals):
    """Block ``signals`` in this thread; threads and processes started meanwhile inherit
    the mask (a spawned process keeps it across exec until it unblocks them).

    multiprocessing's resource tracker is started first if it is not running: starting it
    unblocks SIGINT and SIGTERM in the calling thread, which would undo the block."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a signal that came meanwhile is delivered now
