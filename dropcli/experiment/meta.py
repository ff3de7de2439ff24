"""What meta.json records about a run: dropcli and its source, the argv, Python, NumPy and
BLAS, the host, and the seeds of its random streams."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dropcli.config import Config, config_hash, config_to_dict
from dropcli.nn.seeding import STREAMS
from dropcli.version import __version__


def run_meta(config: Config, argv, threads) -> dict:
    """meta.json's object for a run of ``config`` started now with ``argv`` (default
    ``sys.argv``), training with ``threads`` BLAS threads."""
    from threadpoolctl import threadpool_info

    return {
        "dropcli_version": __version__,
        "argv": list(sys.argv if argv is None else argv),
        "started_at": now(),
        "git": _git_commit(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for info in threadpool_info() if info.get("user_api") == "blas"
        ],
        "blas_threads_limit": threads,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "pid": os.getpid(),
        "seed": config.seed,
        # Each stream is Generator(PCG64(SeedSequence(entropy, spawn_key=spawn_key))).
        "random_streams": {name: {"entropy": config.seed, "spawn_key": [i]} for i, name in enumerate(STREAMS)},
        "config_hash": config_hash(config),
        "config": config_to_dict(config),
    }


def now() -> str:
    """The time in UTC, to the second, as ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def _git_commit() -> dict | None:
    """The commit of the dropcli source, if it runs from a git checkout (asked once per
    process: two git calls cost ~5 ms, a tenth of a small run)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
