"""The cores a run may use and the BLAS threads it trains with. OpenBLAS rounds
differently at different thread counts, so the count is fixed per run and recorded in
meta.json: runs agree bit for bit only at the same count."""

from __future__ import annotations

import contextlib
import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def blas_threads(threads: int):
    """Cap the BLAS libraries of this process at ``threads`` while the block runs."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
