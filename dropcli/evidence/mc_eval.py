"""`dropcli eval`: weight scaling vs Monte-Carlo dropout averaging on a trained run.

Weight scaling is the deterministic test-time pass (inverted, gaussian: identity;
vanilla: x keep_prob; dropconnect: the mean weights W), the approximation of averaging the
exponentially many thinned networks. Monte-Carlo averaging runs T stochastic passes with
fresh dropout masks (DropConnect: fresh weight masks, one per batch of rows; batchnorm in
test mode) and averages their softmax probabilities (Srivastava et al. 2014, section
7.5, Fig. 11). Repeating the T passes with independent masks gives error bars. The
predictive entropy of the averaged probabilities (Gal & Ghahramani 2016) is compared
between correctly and wrongly classified examples.

Both are measured with the run's best-val checkpoint (``params.npz``). Results go to
``RUN/mc_eval.json`` and ``RUN/mc_eval.png``. A run without dropout (keep_prob =
input_keep_prob = 1) has nothing to compare: every pass is the deterministic one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dropcli.errors import RunStoreError
from dropcli.store.runs import read_json, write_json


def _softmax(scores):
    shifted = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    return p / p.sum(axis=1, keepdims=True)


def mc_curve(net, X, y, ts, repeats, seed=0, batch_size=1000):
    """Accuracy of T-pass MC averaging for each T in ``ts``, ``repeats`` times.

    One sequence of max(ts) passes per repeat; the accuracy at T uses its first T passes.
    Returns (acc[repeat, t_index], probabilities averaged over max(ts) passes per repeat).
    """
    from dropcli.nn.model import predict_scores

    ts = sorted(ts)
    acc = np.zeros((repeats, len(ts)))
    final_probs = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        total = np.zeros((len(X), net.arch.num_classes))
        k = 0
        for t in range(1, ts[-1] + 1):
            scores = predict_scores(net.arch, net.params, net.bn_state, X, batch_size=batch_size, rng=rng)
            total += _softmax(scores.astype(np.float64))
            if t == ts[k]:
                acc[r, k] = np.mean(total.argmax(axis=1) == y)
                k += 1
        final_probs.append(total / ts[-1])
    return acc, final_probs


def entropy_summary(probs, y):
    """Predictive entropy (nats) of averaged probabilities, for right vs wrong predictions,
    and the AUROC of entropy as a detector of errors (0.5 = no better than chance)."""
    h = -np.sum(probs * np.log(np.clip(probs, 1e-12, None)), axis=1)
    wrong = probs.argmax(axis=1) != y
    out = {"mean_entropy_correct": float(h[~wrong].mean()) if (~wrong).any() else None,
           "mean_entropy_wrong": float(h[wrong].mean()) if wrong.any() else None,
           "errors": int(wrong.sum()), "examples": int(len(y)), "auroc_entropy_vs_error": None}
    if wrong.any() and (~wrong).any():  # Mann-Whitney: P(entropy of a wrong one > a right one)
        ranks = np.argsort(np.argsort(h, kind="stable"), kind="stable") + 1
        n_w, n_c = wrong.sum(), (~wrong).sum()
        out["auroc_entropy_vs_error"] = float((ranks[wrong].sum() - n_w * (n_w + 1) / 2) / (n_w * n_c))
    return out


def has_dropout(config) -> bool:
    """True if the net drops anything: hidden units (or weights) or inputs."""
    return config.dropout.keep_prob < 1 or config.dropout.input_keep_prob < 1


def evaluate_run(run_dir: Path, ts=(1, 5, 10, 50, 100), repeats=5, seed=0) -> dict | None:
    """Weight scaling and MC averaging for a completed run; writes mc_eval.json/.png.

    None, and nothing written, for a run without dropout (MC averaging would equal weight
    scaling exactly)."""
    from dropcli.config.schema import load_config
    from dropcli.data.load import load_data
    from dropcli.nn import streams
    from dropcli.experiment import load_params
    from dropcli.train.loop import evaluate

    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json")
    if not (run_dir / "params.npz").is_file() or not summary:
        raise RunStoreError(f"{run_dir}: not a finished run (no params.npz or summary.json); train it first")
    config = load_config(run_dir / "config.yaml")
    if not has_dropout(config):
        return None
    data = load_data(config.data, streams(config.seed)["data"], dtype=np.dtype(config.train.dtype))
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
    write_json(run_dir / "mc_eval.json", result)
    _figure(result, run_dir / "mc_eval.png")
    return result


def _stat(t, accs):
    from dropcli.evidence.stats import mean_ci

    stat = mean_ci(accs.tolist())
    return {"T": t, "mean": stat.mean, "ci95": None if np.isnan(stat.ci) else stat.ci, "n": stat.n}


def _figure(result, path: Path):
    from dropcli.report.figures.common import new_figure, save_figure

    splits = result["splits"]
    fig = new_figure(5.5 * len(splits), 4)
    axes = fig.subplots(1, len(splits), squeeze=False)
    for ax, (name, s) in zip(axes[0], splits.items()):
        ts = [m["T"] for m in s["mc"]]
        means = np.array([m["mean"] for m in s["mc"]]) * 100
        half = np.array([m["ci95"] or 0 for m in s["mc"]]) * 100
        ax.errorbar(ts, means, yerr=half, fmt="o-", capsize=3, label=f"MC averaging (mean, 95% CI, N={result['repeats']})")
        ax.axhline(s["weight_scaling_acc"] * 100, color="k", ls="--", label="weight scaling (deterministic)")
        ax.set_xscale("log")
        ax.set_xlabel("T, stochastic forward passes averaged")
        ax.set_ylabel(f"{name} accuracy (%)")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result['run_id']}: {result['variant']} dropout, keep_prob {result['keep_prob']:g} "
                 f"(drop rate {result['drop_rate']:g})")
    fig.tight_layout()
    save_figure(fig, path)
