"""mc_eval.png: accuracy of Monte-Carlo dropout averaging against T, with weight scaling
as a line, one panel per split; drawn from the result `dropcli eval` writes to
mc_eval.json (``dropcli.experiment.evaluate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dropcli.report.figures.common import new_figure, save_figure

MC_EVAL_PNG = "mc_eval.png"


def plot_mc_eval(result: dict, path: Path) -> Path:
    """Draw ``result`` (mc_eval.json's object) into ``path``, atomically; return ``path``."""
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
    return save_figure(fig, path)
