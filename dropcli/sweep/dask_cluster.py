"""Runs on a dask.distributed cluster: a ``LocalCluster`` on this machine, or the
scheduler at ``--scheduler tcp://HOST:8786`` and whatever workers joined it.

Workers share no file system with the runs folder. Each task trains one resolved config
(sent as the YAML its config.yaml will hold) in a private temporary folder on its worker,
loading the data from the worker's own cache or path, and returns the run's files; the
sweep's process, which holds the run's claim meanwhile, writes them into the runs store,
summary.json last. So a run in flight reads ``running`` (the lock names the sweep's
process), and ``dropcli runs``/``plot``/resume see the same store as for local runs.

Failures: a worker that dies mid-run has its task rescheduled by the scheduler on another
worker; after ``ALLOWED_FAILURES`` deaths (the scheduler's
``distributed.scheduler.allowed-failures`` for a cluster we did not start) the run is
marked ``failed`` with the reason and the sweep goes on. A run that raises on its worker
before training (its data, say) is reported failed and not written, so that the next
sweep tries it again. Ctrl-C cancels the futures, marks the runs in flight
``interrupted``, and (for a LocalCluster) stops the workers.

BLAS threads per task: the sweep's per-run count (``SweepJob.threads``), as for every
executor, so that a run's numbers do not depend on where it trained; give each worker
machine one task slot per core.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import uuid

from dropcli.config import to_yaml
from dropcli.errors import DropcliError, ExecutorError
from dropcli.experiment.remote import store_files, train_files
from dropcli.experiment.run import mark_interrupted, settled, start_run
from dropcli.store.files import write_json
from dropcli.store.layout import SUMMARY_FILE
from dropcli.store.locks import RunBusyError, claim_run
from dropcli.sweep.job import SweepJob, failed, signals_blocked
from dropcli.version import __version__

ALLOWED_FAILURES = 2  # worker deaths a run survives on a LocalCluster (so 3 attempts in all)
WORKERS_TIMEOUT = 60  # seconds to wait for a scheduler's first worker
INSTALL_HINT = "pip install 'dropcli[dask]'"


class DaskExecutor:
    name = "dask"
    trains_here = False  # workers load their own data

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        if scheduler is not None:
            check_address(scheduler)
        self.scheduler, self.workers = scheduler, workers
        self.client = self.cluster = None
        self.description = "dask"

    # --- connecting ----------------------------------------------------------------------

    def __enter__(self):
        try:
            import distributed
        except ImportError:
            raise ExecutorError(f"--executor dask needs dask.distributed, which is not installed: "
                                f"{INSTALL_HINT}") from None
        try:
            if self.scheduler is None:
                # The cluster's thread, and so every worker process it ever starts, blocks
                # SIGINT: a terminal's Ctrl-C reaches the whole process group, and it is
                # this process that decides what happens (workers are stopped on close).
                # Its logs are silenced below CRITICAL: dropcli reports every run's fate
                # itself, and a worker whose heartbeat races the scheduler's shutdown on
                # Ctrl-C would otherwise print an ERROR with a traceback after our line.
                with signals_blocked(signal.SIGINT):
                    self.cluster = distributed.LocalCluster(
                        n_workers=self.workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL,
                        scheduler_kwargs={"allowed_failures": ALLOWED_FAILURES},
                    )
                self.client = distributed.Client(self.cluster, set_as_default=False)
            else:
                _reachable(self.scheduler)
                self.client = _connect(distributed, self.scheduler)
            self._check_workers()
        except BaseException as e:
            self.__exit__()
            if isinstance(e, (DropcliError, KeyboardInterrupt)):
                raise
            where = f"the dask scheduler at {self.scheduler}" if self.scheduler else "a local dask cluster"
            raise ExecutorError(f"cannot use {where}: {type(e).__name__}: {e}".splitlines()[0]) from None
        return self

    def _check_workers(self) -> None:
        """At least one worker, and every worker runs this version of dropcli."""
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except TimeoutError:
            raise ExecutorError(f"the dask scheduler at {self.scheduler} has no workers after {WORKERS_TIMEOUT} s; "
                                f"start some with: dask worker {self.scheduler}") from None
        try:
            versions = self.client.run(_dropcli_version)
        except Exception as e:  # a worker cannot unpickle our function: no dropcli there
            raise ExecutorError(f"dask workers cannot run dropcli ({type(e).__name__}: {e}); install it on every "
                                f"worker: {INSTALL_HINT}".splitlines()[0]) from None
        wrong = {addr: v for addr, v in versions.items() if v != __version__}
        if wrong:
            addr, version = next(iter(wrong.items()))
            raise ExecutorError(f"dask worker {addr} has dropcli {version}, this sweep {__version__} "
                                f"({len(wrong)} of {len(versions)} workers differ): install the same version everywhere")
        threads = sum(self.client.nthreads().values())
        where = "LocalCluster" if self.cluster is not None else f"scheduler {self.scheduler}"
        self.description = f"dask {where}: {len(versions)} workers, {threads} threads"

    def __exit__(self, *exc):
        for closing in (self.client, self.cluster):
            if closing is not None:
                with contextlib.suppress(Exception):
                    closing.close(timeout=10)
        self.client = self.cluster = None

    # --- running -------------------------------------------------------------------------

    def run(self, job: SweepJob, todo: list) -> list:
        from distributed import as_completed

        queue, busy = list(todo), []
        flight = {}  # future -> (run, the ExitStack holding its claim)
        completed = as_completed(loop=self.client.loop)
        try:
            while queue or flight:
                self._submit(job, queue, flight, completed, busy)
                if not flight:
                    continue
                future = next(completed)
                run, claim = flight[future]
                summary = _outcome(job.path / run.run_id, run, future)
                del flight[future]  # written: a Ctrl-C from here on leaves it as it is
                claim.close()
                job.finished(run, summary)
        except BaseException:
            self.client.cancel(list(flight), force=True)
            for run, claim in flight.values():
                with claim:
                    mark_interrupted(job.path / run.run_id)
            raise
        return busy

    def _submit(self, job, queue, flight, completed, busy) -> None:
        """Claim runs and submit them, keeping about two per task slot in flight (a run
        is claimed, and reads ``running``, only while it is in flight)."""
        if not queue:
            return
        window = max(2, 2 * sum(self.client.nthreads().values()))
        while queue and len(flight) < window:
            run = queue.pop(0)
            claim = _claim(job, run, busy)
            if claim is None:
                continue
            future = self.client.submit(_train_task, to_yaml(run.config), run.run_id, job.argv, __version__, job.threads,
                                        key=f"dropcli-{run.run_id}-{uuid.uuid4().hex[:8]}", pure=False)
            flight[future] = (run, claim)
            completed.add(future)


# --- the scheduler's address ----------------------------------------------------------------

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+):(?P<port>[0-9]{1,5})")


def check_address(address: str) -> None:
    """ExecutorError unless ``address`` reads ``scheme://host:port`` (or ``host:port``)."""
    m = _ADDRESS.fullmatch(address)
    if m is None or (m["scheme"] or "tcp") not in SCHEMES or not 0 < int(m["port"]) < 65536:
        raise ExecutorError(f"--scheduler {address}: expected a dask scheduler's address, scheme://host:port with a "
                            f"scheme of {', '.join(SCHEMES)} and a port number 1-65535, e.g. tcp://HOST:8786")


def _reachable(address: str) -> None:
    """ExecutorError at once if nothing listens at the address: dask would retry a
    refused connection until its connect timeout (30 s unless configured)."""
    import dask.config
    from dask.utils import parse_timedelta

    m = _ADDRESS.fullmatch(address)
    if (m["scheme"] or "tcp") == "ucx":
        return
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    try:
        socket.create_connection((m["host"].strip("[]"), int(m["port"])), timeout=timeout).close()
    except socket.timeout:
        raise ExecutorError(f"cannot use the dask scheduler at {address}: no answer after {timeout:g} s") from None
    except socket.gaierror:
        raise ExecutorError(f"cannot use the dask scheduler at {address}: unknown host {m['host']}") from None
    except OSError as e:
        raise ExecutorError(f"cannot use the dask scheduler at {address}: {(e.strerror or str(e)).lower()} "
                            f"(is `dask scheduler` running there?)") from None


def _connect(distributed, address: str):
    """A Client of the scheduler at ``address`` (dask retries until its connect timeout).
    If connecting fails, the half-made client is closed here: left to the garbage
    collector, it would wait up to a minute and print a traceback after our error line."""
    made = []

    class Client(distributed.Client):
        def start(self, **kwargs):
            made.append(self)
            return super().start(**kwargs)

    try:
        return Client(address, set_as_default=False)
    except BaseException:
        for client in made:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
        raise


def _claim(job: SweepJob, run, busy: list):
    """Claim ``run`` for a worker and clear its folder; None if it needs no training (it
    is reported now) or another process is training it (it goes to ``busy``)."""
    run_dir = job.path / run.run_id
    claim = contextlib.ExitStack()
    try:
        claim.enter_context(claim_run(run_dir, job.root))
    except RunBusyError:
        busy.append(run)
        job.emit("wait", run, {"status": "running"})
        return None
    try:
        summary = settled(run_dir, job.root, job.done)
        if summary is None:
            start_run(run_dir, run.config)
            return claim
    except BaseException:
        claim.close()
        raise
    claim.close()
    job.finished(run, summary)
    return None


def _outcome(run_dir, run, future) -> dict:
    """Write what the run's future brought back; return the run's summary."""
    from distributed import KilledWorker

    try:
        files = future.result()
    except KilledWorker as e:
        summary = {"run_id": run.run_id, "status": "failed",
                   "reason": f"the dask workers training it kept dying (KilledWorker: {e})"}
        write_json(run_dir / SUMMARY_FILE, summary)
        return summary
    except Exception as e:  # raised before training (data, a worker without dropcli): nothing written
        return failed(run, e)
    return store_files(run_dir, files)


# --- on the workers ----------------------------------------------------------------------


def _dropcli_version() -> str:
    return __version__


def _train_task(config_yaml: str, folder: str, argv, version: str, threads: int) -> dict:
    from distributed import get_worker

    worker = get_worker()
    if version != __version__:
        raise ExecutorError(f"dask worker {worker.address} has dropcli {__version__}, the sweep {version}")
    # In the worker's own scratch folder: dask removes what a killed worker left there.
    return train_files(config_yaml, folder=folder, argv=argv, threads=threads, scratch=worker.local_directory)
