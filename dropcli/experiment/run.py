"""Training one run into the runs store: ``train_run`` is what both ``dropcli train`` and
every sweep worker call. Data is loaded before anything is written, so a bad dataset
setting leaves the runs folder untouched. What it writes, in which order, and what a
run's status means: the contract in ``dropcli.store.layout``.
"""

from __future__ import annotations

import time
from pathlib import Path

from dropcli.config import Config, run_config, to_yaml
from dropcli.errors import RunStoreError
from dropcli.evidence.expectation import expectation_report
from dropcli.experiment.build import load_run_data, make_net, run_id, train_settings
from dropcli.experiment.meta import now, run_meta
from dropcli.experiment.params import save_params
from dropcli.experiment.threads import available_cores, blas_threads
from dropcli.nn import streams
from dropcli.store.files import MetricsLog, atomic_write_text, read_json, read_metrics, write_json
from dropcli.store.layout import (
    CONFIG_FILE, EXPECTATION_FILE, META_FILE, METRICS_FILE, RESULT_FILES, SUMMARY_FILE, SUMMARY_NUMBERS,
)
from dropcli.store.locks import claim_run
from dropcli.store.reuse import find_peer, remove_leftovers, reuse_run
from dropcli.store.runs import run_status
from dropcli.train.loop import evaluate, fit


def train_run(config: Config, runs_dir: Path, *, folder=None, argv=None, force=False, skip=("completed",),
              root=None, threads=None, callback=None) -> dict:
    """Train ``config`` into ``runs_dir/<folder>`` (default ``<name>-<hash8>``, its run id)
    and return its summary.

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
    run_dir = runs_dir / (folder or run_id(config))
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
            write_json(run_dir / META_FILE, run_meta(config, argv, threads))

        with blas_threads(threads):
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
    atomic_write_text(run_dir / CONFIG_FILE, to_yaml(config))
    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)


def mark_interrupted(run_dir: Path) -> None:
    """With the run claimed: record that it was stopped before its result was stored
    (dropping any of its files already written)."""
    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)
    write_json(run_dir / SUMMARY_FILE, {"run_id": run_dir.name, "status": "interrupted",
                                        "reason": "interrupted by the user", "epochs_completed": 0})


def _finished(run_dir: Path, statuses) -> dict | None:
    """The run's summary, marked skipped, if its status is one of ``statuses``."""
    if not statuses or run_status(run_dir) not in statuses:
        return None
    try:
        summary = read_json(run_dir / SUMMARY_FILE)
    except RunStoreError:
        return None
    return None if summary is None else {**summary, "skipped": True}


def _prepare(config: Config):
    """The run's data, initial net and random streams."""
    rngs = streams(config.seed)
    data = load_run_data(config, rngs["data"])
    return data, make_net(config, data), rngs


def _train_into(run_dir, config, data, net, rngs, callback, begin):
    """``begin()`` (clear the folder, write config.yaml and meta.json), then train; the
    summary is written however this ends, from what is on disk by then."""
    started = time.perf_counter()
    summary = {"run_id": run_dir.name, "status": "failed", "reason": None, "examples": data.examples()}
    log = None
    try:
        begin()
        if callback:  # what the run trains on, before its first epoch (not a metric: not logged)
            callback({"kind": "examples", "dataset": config.data.dataset, **summary["examples"]})
        log = MetricsLog(run_dir / METRICS_FILE)

        def record(rec):
            log.append(rec)
            if callback:
                callback(rec)

        history = fit(
            net, data, train_settings(config),
            order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"], callback=record,
        )
        summary["status"] = history.status
        save_params(run_dir, net)
        test = None
        if data.X_test is not None and len(data.X_test):
            acc, loss = evaluate(net, data.X_test, data.y_test)
            test = {"acc": acc, "loss": loss}
        summary["test"] = test
        write_json(run_dir / EXPECTATION_FILE, {"split": "val", **expectation_report(net, data.X_val, rngs["eval"])})
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
        records, _ = read_metrics(run_dir / METRICS_FILE)
        epochs = [r for r in records if r.get("kind") == "epoch"]
        diverged = next((r for r in records if r.get("kind") == "diverged"), None)
        if summary["status"] == "diverged" and diverged is not None:
            summary["diverged_epoch"] = diverged.get("epoch")
            summary["reason"] = (f"loss became non-finite in epoch {diverged.get('epoch')} "
                                 f"(iteration {diverged.get('iteration')})")
        summary.update(_metrics_summary(config, epochs, history_best=_best(epochs)))
        summary.update(_early_stop(config, next((r for r in records if r.get("kind") == "early_stop"), None)))
        summary["wall_time"] = time.perf_counter() - started
        summary["finished_at"] = now()
        write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def _early_stop(config, record) -> dict:
    """summary.json's ``patience``, ``stopped_early`` and ``stop_reason``, from the
    "early_stop" record (None: the run trained every epoch, or diverged)."""
    reason = None
    if record is not None:
        reason = (f"val accuracy did not improve for {record.get('patience')} epochs after epoch "
                  f"{record.get('best_epoch')}")
    return {"patience": config.train.patience, "stopped_early": record is not None, "stop_reason": reason}


def _best(records):
    trained = [r for r in records if r["epoch"] > 0] or records
    return max(trained, key=lambda r: r["val_acc"], default=None)


def _metrics_summary(config, records, history_best):
    final = records[-1] if records else None
    pick = lambda r, keys: None if r is None else {k: r.get(k) for k in keys}  # noqa: E731
    return {
        "epochs": config.train.epochs,
        "epochs_completed": final["epoch"] if final else 0,
        "best": pick(history_best, SUMMARY_NUMBERS["best"]),
        "final": pick(final, SUMMARY_NUMBERS["final"]),
        "keep_prob": config.dropout.keep_prob,
        "drop_rate": 1 - config.dropout.keep_prob,
        "input_keep_prob": config.dropout.input_keep_prob,
        "variant": config.dropout.variant,
        "normalization": config.model.normalization,
    }
