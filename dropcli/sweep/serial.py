"""Runs one after another in the sweep's own process (``-j 1``)."""

from __future__ import annotations

from dropcli.experiment.run import train_run
from dropcli.store.locks import RunBusyError
from dropcli.sweep.job import SweepJob, failed


class SerialExecutor:
    name = "serial"
    trains_here = True
    description = None  # nothing worth naming on the sweep's start line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, job: SweepJob, todo: list) -> list:
        busy = []
        for run in todo:
            try:
                summary = train_run(run.config, job.path, folder=run.run_id, argv=job.argv, force=job.force,
                                    skip=job.done, root=job.root, threads=job.threads)
            except RunBusyError:
                busy.append(run)
                job.emit("wait", run, {"status": "running"})
                continue
            except Exception as e:  # before training (this grid point's data or net): nothing written for it
                summary = failed(run, e)
            job.finished(run, summary)
        return busy
