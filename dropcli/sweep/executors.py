"""Where a sweep's runs train: the executors behind one interface (``base.Executor``).

* ``serial``: one after another in the sweep's process (``-j 1``);
* ``processes``: ``-j N`` local worker processes, BLAS threads split among them;
* ``dask``: a dask.distributed cluster, local (``LocalCluster``) or at a scheduler's
  address; workers need no shared file system (``pip install 'dropcli[dask]'``).
"""

from __future__ import annotations

from dropcli.sweep.job import Executor, SweepJob, failed

EXECUTORS = ("serial", "processes", "dask")

__all__ = ["EXECUTORS", "Executor", "SweepJob", "failed", "make_executor"]


def make_executor(name: str = "auto", *, jobs: int | None = 1, scheduler: str | None = None) -> Executor:
    """The executor called ``name``. ``jobs``: how many runs train at once (None: one per
    available core). ``auto`` is ``processes`` when that is more than one, else
    ``serial``. For dask, ``scheduler`` is the address of a running scheduler (without
    one a LocalCluster of ``jobs`` workers starts)."""
    from dropcli.experiment import available_cores

    jobs = available_cores() if jobs is None else jobs
    if name == "auto":
        name = "processes" if jobs > 1 else "serial"
    if scheduler is not None and name != "dask":
        from dropcli.errors import ConfigError

        raise ConfigError(f"--scheduler {scheduler}: a scheduler address needs --executor dask")
    if name == "serial":
        from dropcli.sweep.serial import SerialExecutor

        return SerialExecutor()
    if name == "processes":
        from dropcli.sweep.processes import ProcessExecutor

        return ProcessExecutor(jobs)
    if name == "dask":
        from dropcli.sweep.dask_cluster import DaskExecutor

        return DaskExecutor(scheduler=scheduler, workers=jobs)
    from dropcli.errors import ConfigError

    raise ConfigError(f"--executor {name}: expected one of {', '.join(EXECUTORS)}")
