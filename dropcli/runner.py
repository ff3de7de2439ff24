"""One run, end to end: config -> data -> net -> training -> the runs store.

``train_run`` is what both ``dropcli train`` and every sweep worker call. Data is loaded
before anything is written, so a bad dataset setting leaves the runs folder untouched.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config, config_hash, config_to_dict, run_config, to_yaml
from .errors import RunStoreError
from .expectation import expectation_report
from .nn import FullyConnectedNet, streams
from .nn.seeding import STREAMS
from .runs import (
    MetricsLog, acquire_lock, read_json, release_lock, run_status, safe_name, write_json, atomic_write_text,
)
from .train import TrainSettings, evaluate, fit

OUTPUTS = ("metrics.jsonl", "summary.json", "params.npz", "expectation.json")


def run_id(config: Config) -> str:
    """The run's folder name: ``<name>-<hash8>`` of the resolved config."""
    return f"{safe_name(config.name)}-{config_hash(config)}"


def build_net(config: Config, input_dim: int, num_classes: int, rng_seed=None) -> FullyConnectedNet:
    m, d = config.model, config.dropout
    return FullyConnectedNet(
        hidden_dims=m.hidden_dims, input_dim=input_dim, num_classes=num_classes,
        keep_prob=d.keep_prob, input_keep_prob=d.input_keep_prob, variant=d.variant,
        normalization=None if m.normalization == "none" else m.normalization,
        activation=m.activation, reg=m.reg, weight_scale=m.weight_init,
        dtype=np.dtype(config.train.dtype), seed=config.seed if rng_seed is None else rng_seed,
        placement=d.placement,
    )


def train_settings(config: Config) -> TrainSettings:
    t = config.train
    return TrainSettings(
        optimizer=t.optimizer, learning_rate=t.learning_rate, lr_decay=t.lr_decay,
        batch_size=t.batch_size, epochs=t.epochs,
    )


def train_run(config: Config, runs_dir: Path, *, argv=None, force=False, threads=None, callback=None) -> dict:
    """Train ``config`` into ``runs_dir/<run_id>`` and return its summary.

    A run that is already completed is not trained again unless ``force``; its summary
    comes back with ``"skipped": True``. Raises ``RunStoreError`` if another live process
    is training the same run, ``DataError`` for bad data settings (nothing written).
    ``KeyboardInterrupt`` marks the run ``interrupted`` and propagates; any other
    exception marks it ``failed`` (with the reason) and is returned, not raised.
    """
    from .data import load_data

    config = run_config(config)
    run_dir = Path(runs_dir) / run_id(config)
    if not force and run_status(run_dir) == "completed":
        return {**read_json(run_dir / "summary.json"), "skipped": True}

    rngs = streams(config.seed)
    data = load_data(config.data, rngs["data"], dtype=np.dtype(config.train.dtype))

    run_dir.mkdir(parents=True, exist_ok=True)
    if not acquire_lock(run_dir):
        raise RunStoreError(f"{run_dir}: another dropcli process is training this run right now")
    try:
        for name in OUTPUTS:
            (run_dir / name).unlink(missing_ok=True)
        atomic_write_text(run_dir / "config.yaml", to_yaml(config))
        write_json(run_dir / "meta.json", _meta(config, argv, threads))
        with _blas_threads(threads):
            return _train_into(run_dir, config, data, rngs, callback)
    finally:
        release_lock(run_dir)


def _train_into(run_dir, config, data, rngs, callback):
    started = time.perf_counter()
    log = MetricsLog(run_dir / "metrics.jsonl")
    records = []

    def record(rec):
        log.append(rec)
        if rec["kind"] == "epoch":
            records.append(rec)
        if callback:
            callback(rec)

    net = build_net(config, data.input_dim, data.num_classes)
    summary = {"run_id": run_dir.name, "status": "failed", "reason": None}
    try:
        history = fit(
            net, data, train_settings(config),
            order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"], callback=record,
        )
        summary["status"] = history.status
        if history.status == "diverged":
            summary["reason"] = f"loss became non-finite in epoch {len(records)}"
        _save_params(run_dir / "params.npz", net)
        test = None
        if data.X_test is not None and len(data.X_test):
            acc, loss = evaluate(net, data.X_test, data.y_test)
            test = {"acc": acc, "loss": loss}
        summary["test"] = test
        write_json(run_dir / "expectation.json", {"split": "val", **expectation_report(net, data.X_val, rngs["eval"])})
    except KeyboardInterrupt:
        summary.update(status="interrupted", reason="interrupted by the user")
        raise
    except Exception as e:  # a failing run must not take a sweep down; its reason is kept
        summary["reason"] = f"{type(e).__name__}: {e}"
    finally:
        log.close()
        summary.update(_metrics_summary(config, records, history_best=_best(records)))
        summary["wall_time"] = time.perf_counter() - started
        summary["finished_at"] = _now()
        write_json(run_dir / "summary.json", summary)
    return summary


def _best(records):
    trained = [r for r in records if r["epoch"] > 0] or records
    return max(trained, key=lambda r: r["val_acc"], default=None)


def _metrics_summary(config, records, history_best):
    final = records[-1] if records else None
    pick = lambda r, keys: None if r is None else {k: r.get(k) for k in keys}  # noqa: E731
    return {
        "epochs": config.train.epochs,
        "epochs_completed": final["epoch"] if final else 0,
        "best": pick(history_best, ("epoch", "val_acc", "train_acc", "val_loss")),
        "final": pick(final, ("epoch", "train_acc", "val_acc", "train_loss", "val_loss")),
        "keep_prob": config.dropout.keep_prob,
        "drop_rate": 1 - config.dropout.keep_prob,
        "input_keep_prob": config.dropout.input_keep_prob,
        "variant": config.dropout.variant,
        "normalization": config.model.normalization,
    }


def _save_params(path: Path, net) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **net.params, **net.bn_state)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_params(run_dir: Path, config: Config, input_dim: int, num_classes: int) -> FullyConnectedNet:
    """Rebuild a run's trained net from params.npz."""
    net = build_net(config, input_dim, num_classes)
    with np.load(Path(run_dir) / "params.npz", allow_pickle=False) as z:
        for k in net.params:
            net.params[k] = z[k]
        for k in net.bn_state:
            net.bn_state[k] = z[k]
    return net


@contextlib.contextmanager
def _blas_threads(threads):
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git_commit() -> dict | None:
    """The commit of the dropcli source, if it runs from a git checkout."""
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


def _meta(config: Config, argv, threads) -> dict:
    from threadpoolctl import threadpool_info

    return {
        "dropcli_version": __version__,
        "argv": list(sys.argv if argv is None else argv),
        "started_at": _now(),
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
        "random_streams": {name: [config.seed, i] for i, name in enumerate(STREAMS)},
        "config_hash": config_hash(config),
        "config": config_to_dict(config),
    }
