"""`dropcli eval` of a stored run: weight scaling vs Monte-Carlo dropout averaging
(``dropcli.evidence.mc_eval``) with the run's best-val checkpoint (params.npz), on its
val and test splits, into ``RUN/mc_eval.json``. Its figure is drawn from that result
by ``dropcli.report.figures.mc_eval``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dropcli.config import Config, load_config
from dropcli.errors import RunStoreError
from dropcli.evidence.mc_eval import entropy_summary, mc_curve
from dropcli.evidence.stats import mean_ci
from dropcli.experiment.build import load_run_data
from dropcli.experiment.params import load_params
from dropcli.store.files import read_json, write_json
from dropcli.store.layout import CONFIG_FILE, MC_EVAL_FILE, PARAMS_FILE, SUMMARY_FILE
from dropcli.train.loop import evaluate


def has_dropout(config: Config) -> bool:
    """True if the net drops anything: hidden units (or weights) or inputs."""
    return config.dropout.keep_prob < 1 or config.dropout.input_keep_prob < 1


def evaluate_run(run_dir: Path, ts=(1, 5, 10, 50, 100), repeats=5, seed=0) -> dict | None:
    """Weight scaling and MC averaging (``ts``: the numbers T of passes averaged, each
    ``repeats`` times, masks from ``seed``) for a finished run; writes and returns
    mc_eval.json's object. RunStoreError for a run that is not finished.

    None, and nothing written, for a run without dropout (MC averaging would equal weight
    scaling exactly)."""
    run_dir = Path(run_dir)
    summary = read_json(run_dir / SUMMARY_FILE)
    if not (run_dir / PARAMS_FILE).is_file() or not summary:
        raise RunStoreError(f"{run_dir}: not a finished run (no params.npz or summary.json); train it first")
    config = load_config(run_dir / CONFIG_FILE)
    if not has_dropout(config):
        return None
    data = load_run_data(config)
    net = load_params(run_dir, config, data.input_dim, data.num_classes)
    result = {"run_id": run_dir.name, "keep_prob": config.dropout.keep_prob,
              "drop_rate": 1 - config.dropout.keep_prob, "input_keep_prob": config.dropout.input_keep_prob,
              "variant": config.dropout.variant, "checkpoint_epoch": (summary.get("best") or {}).get("epoch"),
              "ts": sorted(ts), "repeats": repeats, "seed": seed, "splits": {}}
    splits = {"val": (data.X_val, data.y_val)}
    if data.X_test is not None and len(data.X_test):
        splits["test"] = (data.X_test, data.y_test)
    for name, (X, y) in splits.items():
        weight_scaling, _ = evaluate(net, X, y)
        acc, probs = mc_curve(net, X, y, ts, repeats, seed)
        result["splits"][name] = {
            "weight_scaling_acc": weight_scaling,
            "mc": [_stat(t, acc[:, i]) for i, t in enumerate(sorted(ts))],
            "mc_acc_runs": acc.tolist(),
            "entropy": entropy_summary(probs[0], y),
        }
    write_json(run_dir / MC_EVAL_FILE, result)
    return result


def _stat(t, accs):
    stat = mean_ci(accs.tolist())
    return {"T": t, "mean": stat.mean, "ci95": None if np.isnan(stat.ci) else stat.ci, "n": stat.n}
