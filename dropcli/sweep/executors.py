"""Where a sweep's runs train: the executors behind one interface (``job.Executor``).

* ``serial``: one after another in the sweep's process (``-j 1``);
* ``processes``: ``-j N`` local worker processes, BLAS threads split among them;
* ``dask``: a dask.distributed cluster, local (``LocalCluster``) or at a scheduler's
  address; workers need no shared file system (``pip install 'dropcli[dask]'``).
"""

from __future__ import annotations

from dropcli.errors import ConfigError
from dropcli.experiment.threads import available_cores
from dropcli.sweep.dask_cluster import DaskExecutor
from dropcli.sweep.job import Executor, SweepJob, failed
from dropcli.sweep.processes import ProcessExecutor
from dropcli.sweep.serial import SerialExecutor

EXECUTORS = ("serial", "processes", "dask")

__all__ = ["EXECUTORS", "Executor", "SweepJob", "failed", "make_executor"]


def make_executor(name: str = "auto", *, jobs: int | None = 1, scheduler: str | None = None) -> Executor:
    """The executor called ``name``. ``jobs``: how many runs train at once (None: one per
    available core). ``auto`` is ``processes`` when that is more than one, else
    ``serial``. For dask, ``scheduler`` is the address of a running scheduler (without
    one a LocalCluster of ``jobs`` workers starts)."""
    jobs = available_cores() if jobs is None else jobs
    if name == "auto":
        name = "processes" if jobs > 1 else "serial"
    if scheduler is not None and name != "dask":
        raise ConfigError(f"--scheduler {scheduler}: a scheduler address needs --executor dask")
    if name == "serial":
        return SerialExecutor()
    if name == "processes":
        return ProcessExecutor(jobs)
    if name == "dask":
        return DaskExecutor(scheduler=scheduler, workers=jobs)
    raise ConfigError(f"--executor {name}: expected one of {', '.join(EXECUTORS)}")
