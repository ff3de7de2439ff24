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
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dropcli.version import __version__
from dropcli.config.schema import Config, config_hash, config_to_dict, run_config, to_yaml
from dropcli.errors import ConfigError, DataError, DropcliError, RunStoreError
from dropcli.evidence.expectation import expectation_report
from dropcli.nn import FullyConnectedNet, streams
from dropcli.nn.seeding import STREAMS
from dropcli.store.locks import claim_run
from dropcli.store.reuse import find_peer, remove_leftovers, reuse_run
from dropcli.store.runs import (
    MetricsLog, atomic_write_bytes, atomic_write_text, naming, read_json, read_metrics, run_status, safe_name,
    write_json,
)
from dropcli.train.loop import TrainSettings, evaluate, fit

# What a training attempt writes after config.yaml; summary.json first, so that an attempt
# cleared halfway never pairs an old summary with files it does not describe.
OUTPUTS = ("summary.json", "metrics.jsonl", "params.npz", "expectation.json")


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
        batch_size=t.batch_size, epochs=t.epochs, max_norm=config.model.max_norm,
    )


def train_run(config: Config, runs_dir: Path, *, argv=None, force=False, skip=("completed",), root=None,
              threads=None, callback=None) -> dict:
    """Train ``config`` into ``runs_dir/<run_id>`` and return its summary.

    ``threads``: the BLAS threads to train with (default: one per available core),
    recorded in meta.json. OpenBLAS rounds differently at different thread counts, so
    runs agree bit for bit only at the same count (a sweep fixes one for all its runs).

    A run whose status is in ``skip`` (default: completed) is not trained again; its
    summary comes back with ``"skipped": True``. Nor is one that another folder of the
    runs folder ``root`` (default ``runs_dir``) holds with such a status: that folder's
    files are linked in, and the summary says ``"reused_from"``. ``force`` trains anyway.

    Raises ``RunBusyError`` if another live process is training the same run, and
    ``DataError`` or ``ConfigError`` for bad data settings or a net that cannot be built
    (too big, or not for this data; then nothing is written). ``KeyboardInterrupt``
    marks the run ``interrupted`` and propagates; any other exception marks it
    ``failed`` (with the reason) and is returned, not raised.
    """
    config = run_config(config)
    threads = available_cores() if threads is None else threads
    runs_dir = Path(runs_dir)
    root = runs_dir if root is None else Path(root)
    run_dir = runs_dir / run_id(config)
    done = () if force else tuple(skip)
    if (summary := _finished(run_dir, done)) is not None:
        return summary
    prepared = None
    if not (done and find_peer(root, run_dir.name, done, exclude=run_dir)):
        prepared = _prepare(config)  # bad data, or a net too big: an error before anything is written
    with claim_run(run_dir, root):
        # Again under the lock: another process may have finished this run meanwhile.
        if (summary := settled(run_dir, root, done)) is not None:
            return summary
        data, net, rngs = prepared or _prepare(config)

        def begin():
            start_run(run_dir, config)
            write_json(run_dir / "meta.json", _meta(config, argv, threads))

        with _blas_threads(threads):
            return _train_into(run_dir, config, data, net, rngs, callback, begin)


def settled(run_dir: Path, root: Path, done) -> dict | None:
    """With the run claimed: its summary if there is nothing to train, because its status
    is in ``done`` (marked skipped) or a peer under ``root`` has one (linked in)."""
    if (summary := _finished(run_dir, done)) is not None:
        return summary
    if done and (peer := find_peer(root, run_dir.name, done, exclude=run_dir)):
        return reuse_run(peer, run_dir, root)
    return None


def start_run(run_dir: Path, config: Config) -> None:
    """With the run claimed: write config.yaml and clear what an earlier attempt left."""
    remove_leftovers(run_dir)
    atomic_write_text(run_dir / "config.yaml", to_yaml(config))
    for name in OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)


# --- runs trained elsewhere ----------------------------------------------------------------
# An executor whose workers share no file system with the runs folder (dask) trains each
# run into a private folder on the worker and ships its files; the sweep's process claims
# the run in the real store and writes them there.

SHIPPED = ("config.yaml", "meta.json", "metrics.jsonl", "params.npz", "expectation.json", "summary.json")


def train_files(config_yaml: str, *, argv=None, threads=None, scratch=None) -> dict[str, bytes]:
    """Train the config (YAML text, as config.yaml holds it) in a temporary folder (in
    ``scratch``, default the system's) and return the run's files by name. Raises
    DataError/ConfigError as ``train_run`` does."""
    from dropcli.config.schema import load_config_text

    config = load_config_text(config_yaml, "config.yaml")
    with tempfile.TemporaryDirectory(prefix="dropcli-run-", dir=scratch) as tmp:
        summary = train_run(config, Path(tmp), argv=argv, force=True, threads=threads)
        run_dir = Path(tmp) / summary["run_id"]
        return {name: (run_dir / name).read_bytes() for name in SHIPPED if (run_dir / name).is_file()}


def store_files(run_dir: Path, files: dict[str, bytes]) -> dict:
    """With the run claimed (and ``start_run`` done): write the files ``train_files``
    returned, each atomically, summary.json last; return the summary."""
    if "summary.json" not in files:
        raise RunStoreError(f"{run_dir}: the worker sent no summary.json")
    for name in SHIPPED:
        if name in files:
            atomic_write_bytes(run_dir / name, files[name])
    return read_json(run_dir / "summary.json")


def mark_interrupted(run_dir: Path) -> None:
    """With the run claimed: record that it was stopped before its result was stored
    (dropping any of its files already written)."""
    for name in OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    write_json(run_dir / "summary.json", {"run_id": run_dir.name, "status": "interrupted",
                                          "reason": "interrupted by the user", "epochs_completed": 0})


def _finished(run_dir: Path, statuses) -> dict | None:
    """The run's summary, marked skipped, if its status is one of ``statuses``."""
    if not statuses or run_status(run_dir) not in statuses:
        return None
    try:
        summary = read_json(run_dir / "summary.json")
    except RunStoreError:
        return None
    return None if summary is None else {**summary, "skipped": True}


def _prepare(config: Config):
    """The run's data, initial net and random streams."""
    rngs = streams(config.seed)
    data = load_run_data(config, rngs["data"])
    return data, make_net(config, data), rngs


def load_run_data(config: Config, rng=None):
    """The run's data (``rng``: its data stream, default a fresh one from its seed);
    DataError naming the data setting if it cannot be loaded."""
    from dropcli.data.load import load_data

    rng = streams(config.seed)["data"] if rng is None else rng
    try:
        return load_data(config.data, rng, dtype=np.dtype(config.train.dtype))
    except (DropcliError, OSError, MemoryError):
        raise
    except Exception as e:  # a loader's surprise is still one line about this setting, not a traceback
        raise DataError(f"{data_setting(config)}: cannot load ({type(e).__name__}: {e})".splitlines()[0]) from None


def make_net(config: Config, data) -> FullyConnectedNet:
    """The run's initial net for ``data``; ConfigError naming the setting if it cannot be built."""
    from decimal import Decimal  # widths are Python ints of any size: no float overflow

    from dropcli.config.messages import show

    dims = (data.input_dim, *config.model.hidden_dims, data.num_classes)
    count = sum((fan_in + 1) * width for fan_in, width in zip(dims, dims[1:]))  # weights and biases
    dtype = np.dtype(config.train.dtype)
    gib = Decimal(count * dtype.itemsize) / 2**30
    size = f"{gib:,.0f}" if gib < 10**6 else f"{gib:.1e}"
    too_big = ConfigError(
        f"model.hidden_dims {show(list(config.model.hidden_dims))}: the network's {Decimal(count):.2g} parameters "
        f"need {size} GiB as {dtype}, more than this machine's memory; give narrower hidden layers")
    if count * dtype.itemsize > np.iinfo(np.intp).max:  # NumPy refuses such an array as a bad shape
        raise too_big
    try:
        return build_net(config, data.input_dim, data.num_classes)
    except MemoryError:
        raise too_big from None
    except ValueError as e:
        raise ConfigError(f"{data_setting(config)}: cannot build the network for this data ({data.input_dim} "
                          f"features, {data.num_classes} classes): {e}".splitlines()[0]) from None


def data_setting(config: Config) -> str:
    """The setting that chose the data, as errors name it: ``data.path FILE`` or ``data.dataset NAME``."""
    d = config.data
    return f"data.path {d.path}" if d.path else f"data.dataset {d.dataset}"


def _train_into(run_dir, config, data, net, rngs, callback, begin):
    """``begin()`` (clear the folder, write config.yaml and meta.json), then train; the
    summary is written however this ends, from what is on disk by then."""
    started = time.perf_counter()
    summary = {"run_id": run_dir.name, "status": "failed", "reason": None}
    log = None
    try:
        begin()
        log = MetricsLog(run_dir / "metrics.jsonl")

        def record(rec):
            log.append(rec)
            if callback:
                callback(rec)

        history = fit(
            net, data, train_settings(config),
            order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"], callback=record,
        )
        summary["status"] = history.status
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
        if log is not None:
            log.close()
        # The summary describes what is on disk (an interrupt may land between a record's
        # write and anything kept in memory about it).
        records, _ = read_metrics(run_dir / "metrics.jsonl")
        epochs = [r for r in records if r.get("kind") == "epoch"]
        diverged = next((r for r in records if r.get("kind") == "diverged"), None)
        if summary["status"] == "diverged" and diverged is not None:
            summary["diverged_epoch"] = diverged.get("epoch")
            summary["reason"] = (f"loss became non-finite in epoch {diverged.get('epoch')} "
                                 f"(iteration {diverged.get('iteration')})")
        summary.update(_metrics_summary(config, epochs, history_best=_best(epochs)))
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
    with naming(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # never a planted file
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **net.params, **net.bn_state)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load_params(run_dir: Path, config: Config, input_dim: int, num_classes: int) -> FullyConnectedNet:
    """Rebuild a run's trained net from params.npz (no pickles); RunStoreError if the file
    is unreadable or does not match the run's config. Each array's shape is read from its
    .npy header and checked before the array is read, so a forged header allocates nothing."""
    import zipfile

    from dropcli.data.npz import npy_header

    path = Path(run_dir) / "params.npz"
    net = build_net(config, input_dim, num_classes)
    if path.is_file() and not zipfile.is_zipfile(path):  # numpy would blame pickles, or hand back one array
        raise RunStoreError(f"{path}: not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            for store in (net.params, net.bn_state):
                for k in store:
                    if k not in z.files:
                        raise RunStoreError(f"{path}: has no {k!r}; it does not belong to this run's config")
                    shape, dtype, _, _ = npy_header(z.zip, k)
                    if shape != store[k].shape or dtype.kind != "f":
                        raise RunStoreError(f"{path}: {k} is {dtype}{list(shape)}, the config needs "
                                            f"{store[k].dtype}{list(store[k].shape)}")
                    store[k] = z[k].astype(store[k].dtype, copy=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RunStoreError(f"{path}: cannot read ({type(e).__name__}: {e})".splitlines()[0]) from None
    return net


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def _blas_threads(threads: int):
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
        # Each stream is Generator(PCG64(SeedSequence(entropy, spawn_key=spawn_key))).
        "random_streams": {name: {"entropy": config.seed, "spawn_key": [i]} for i, name in enumerate(STREAMS)},
        "config_hash": config_hash(config),
        "config": config_to_dict(config),
    }
