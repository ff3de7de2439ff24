"""The figures of one sweep: statistics over the seeds of each setting, drawn from the
runs store.

Everything here reads ``SweepGroups`` (``dropcli.sweep_groups``) of ``RunRecord``s, never
live training objects, and writes one PNG per call, atomically (``figures.save_figure``):

    val_curves.png   validation accuracy per epoch, mean over seeds with 95% band
    keep_prob.png    final and best validation accuracy vs keep_prob
    gap.png          train - val accuracy gap at the final epoch vs keep_prob
    grad_flow.png    gradient norm per layer (if the runs recorded diagnostics)

Matplotlib is imported only when a figure is drawn (see ``dropcli.figures``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .figures import (
    diagnostic_series, diagnostics_of, keep_prob_label, layer_order, metric_column, new_figure, save_figure,
)
from .runs import RunRecord
from .stats import mean_ci
from .sweep_groups import METRICS, Group, SweepGroups

EXCLUDED_NOTE = "runs not completed are excluded from means and CIs"


def _colors(groups: list[Group]) -> dict[float | None, tuple]:
    """One colour per keep_prob, the same in every panel."""
    from matplotlib import colormaps

    keeps = sorted({g.keep_prob for g in groups}, key=lambda k: (k is None, k or 0))
    cmap = colormaps["viridis"]
    return {k: cmap(0.85 * i / max(len(keeps) - 1, 1)) for i, k in enumerate(keeps)}


def _epoch_matrix(runs: list[RunRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) with values[i, j] the val accuracy of run i at epochs[j] (or nan)."""
    epochs = sorted({int(r["epoch"]) for run in runs for r in run.metrics if isinstance(r.get("epoch"), int)})
    index = {e: j for j, e in enumerate(epochs)}
    values = np.full((len(runs), len(epochs)), np.nan)
    for i, run in enumerate(runs):
        for rec in run.metrics:
            if rec.get("epoch") in index and isinstance(rec.get("val_acc"), (int, float)):
                values[i, index[rec["epoch"]]] = rec["val_acc"]
    return np.array(epochs), values


def plot_val_curves(sweep: SweepGroups, title: str, path: Path) -> Path:
    """val_curves.png: validation accuracy per epoch, one line per keep_prob (and any other
    swept value): the mean over completed seeds with a 95% t-band, N in the legend. One
    panel per variant x normalization when those vary. Runs that did not complete are
    drawn dotted and left out of the mean."""
    panels = sweep.by(sweep.panel_keys())
    colors = _colors(sweep.groups)
    cols = len(panels) if len(panels) <= 3 else math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    height = 3.8 * rows + 0.8
    fig = new_figure(max(5.2 * cols, 7), height)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.5 / height, top=1 - 1.0 / height, wspace=0.2, hspace=0.35)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    fig.suptitle(f"{title}: validation accuracy per epoch\nmean over completed seeds, 95% CI band", fontsize=10)
    other = [k for k in sweep.series_keys() if k not in sweep.panel_keys()]
    for ax, (panel, groups) in zip(axes, panels.items()):
        for g in groups:
            _val_curve(ax, g, colors[g.keep_prob], g.label(other))
        ax.set(title=panel or "all runs", xlabel="epoch", ylabel="validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.yaxis.set_tick_params(labelleft=True)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return save_figure(fig, path)


def _val_curve(ax, group: Group, color, extra: str) -> None:
    included = group.included
    label = f"{keep_prob_label(group.keep_prob)}{', ' + extra if extra else ''}; N={len(included)}"
    excluded = [r for r in group.runs if r.status != "completed"]
    if excluded:
        label += f" (+{len(excluded)} not completed, dotted)"
    if included:
        epochs, values = _epoch_matrix(included)
        stats = [mean_ci(column) for column in values.T]  # per epoch, over the seeds that reached it
        mean = 100 * np.array([s.mean for s in stats])
        half = 100 * np.nan_to_num([s.ci for s in stats])
        ax.plot(epochs, mean, color=color, label=label)
        ax.fill_between(epochs, mean - half, mean + half, color=color, alpha=0.2, lw=0)
        label = None
    for run in excluded:
        ax.plot(metric_column(run.metrics, "epoch"), 100 * metric_column(run.metrics, "val_acc"), ls=":",
                color=color, label=label)
        label = None


def plot_keep_prob(sweep: SweepGroups, title: str, path: Path) -> Path:
    """keep_prob.png: final (left) and best (right) validation accuracy vs keep_prob, the
    mean over completed seeds with 95% CI error bars, one line per variant x
    normalization (and any other swept value); N in the legend, drop rate on the top axis."""
    fig = new_figure(10, 4.2 + _legend_height(sweep))
    fig.suptitle(f"{title}: validation accuracy vs keep_prob (mean over seeds, 95% CI)\n{EXCLUDED_NOTE}",
                 fontsize=10)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, metric in zip(axes, ("final_val", "best_val")):
        _metric_vs_keep(ax, sweep, metric, scale=100)
        ax.set(title=METRICS[metric][0], ylabel="validation accuracy (%)")
        ax.yaxis.set_tick_params(labelleft=True)
    _legend_below(fig, axes[0], sweep, left=0.07, right=0.98, top_in=1.0, bottom_in=0.55, wspace=0.22)
    return save_figure(fig, path)


def plot_gap(sweep: SweepGroups, title: str, path: Path) -> Path:
    """gap.png: train - val accuracy at the final epoch vs keep_prob (percentage points),
    mean over completed seeds with 95% CI error bars, one line per variant x
    normalization (and any other swept value)."""
    fig = new_figure(6.5, 4.2 + _legend_height(sweep))
    fig.suptitle(f"{title}: generalization gap vs keep_prob\n{EXCLUDED_NOTE}", fontsize=10)
    ax = fig.subplots()
    _metric_vs_keep(ax, sweep, "gap", scale=100)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set(title="train - val accuracy at the final epoch", ylabel="gap (percentage points)")
    _legend_below(fig, ax, sweep, left=0.12, right=0.97, top_in=1.1, bottom_in=0.55)
    return save_figure(fig, path)


def plot_grad_flow(sweep: SweepGroups, title: str, path: Path) -> Path | None:
    """grad_flow.png, if the sweep's runs recorded diagnostics: left, the weight-gradient
    norm of each layer at the final epoch (W1 = the input layer; log scale); right, the
    first layer's gradient norm per epoch. One line per setting (every swept value but
    seed): the mean over completed seeds, with 95% CI bars (left) or band (right)."""
    groups = [(g, [diagnostics_of(r) for r in g.included]) for g in sweep.groups]
    groups = [(g, [d for d in ds if d]) for g, ds in groups]
    groups = [(g, ds) for g, ds in groups if ds]
    if not groups:
        return None
    fig = new_figure(11, 4.2 + 0.2 * math.ceil(len(groups) / 2) + 0.1)
    fig.suptitle(f"{title}: gradient flow (mean over completed seeds, 95% CI)", fontsize=10)
    ax_layers, ax_first = fig.subplots(1, 2)
    for g, runs in groups:
        label = f"{g.label(sweep.varying) or 'all runs'} (N={len(runs)})"
        finals = [(r[-1]["diagnostics"].get("grad_norm") or {}) for r in runs]
        names = sorted({n for f in finals for n in f}, key=layer_order)
        stats = [mean_ci(f.get(n) for f in finals) for n in names]
        x = [layer_order(n)[0] for n in names]
        line = ax_layers.errorbar(x, [s.mean for s in stats], yerr=[np.nan_to_num(s.ci) for s in stats], marker="o",
                                  capsize=3, label=label)
        series = [diagnostic_series(r, "grad_norm").get("W1") for r in runs]
        series = [s for s in series if s is not None]
        epochs = sorted({int(e) for s in series for e in s[0]})
        per_epoch = [mean_ci(float(v[list(e_).index(e)]) for e_, v in series if e in e_) for e in epochs]
        mean = np.array([s.mean for s in per_epoch])
        half = np.nan_to_num([s.ci for s in per_epoch])
        color = line.lines[0].get_color()
        ax_first.plot(epochs, mean, color=color, marker=".", label=label)
        ax_first.fill_between(epochs, np.maximum(mean - half, mean * 1e-3), mean + half, color=color, alpha=0.2, lw=0)
    ax_layers.set(title="gradient norm per layer, final epoch", xlabel="layer (1 = input side)",
                  ylabel="||dL/dW|| (mean over the epoch's steps)")
    ax_first.set(title="first layer (W1) per epoch", xlabel="epoch", ylabel="||dL/dW1||")
    for ax in (ax_layers, ax_first):
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_layers, ax_first):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.7 / height,
                        bottom=(0.55 + 0.2 * math.ceil(len(groups) / 2) + 0.1) / height, wspace=0.25)
    handles, labels = ax_layers.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    return save_figure(fig, path)


def _legend_height(sweep: SweepGroups) -> float:
    """Inches below the axes for a two-column legend of the series."""
    return 0.2 * math.ceil(len(sweep.by(sweep.series_keys())) / 2) + 0.1


def _legend_below(fig, ax, sweep: SweepGroups, *, left, right, top_in, bottom_in, **adjust) -> None:
    """One legend for the whole figure, under the axes, so it never hides a point."""
    height = fig.get_figheight()
    legend_in = _legend_height(sweep)
    fig.subplots_adjust(left=left, right=right, top=1 - top_in / height, bottom=(bottom_in + legend_in) / height,
                        **adjust)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)


def _metric_vs_keep(ax, sweep: SweepGroups, metric: str, scale: float) -> None:
    for label, groups in sweep.by(sweep.series_keys()).items():
        pts = [(g.keep_prob, g.stat(metric)) for g in groups if g.keep_prob is not None]
        pts = [(k, s) for k, s in pts if s.n]
        if not pts:
            continue
        ks = [k for k, _ in pts]
        ns = sorted({s.n for _, s in pts})
        n_text = f"N={ns[0]}" if len(ns) == 1 else f"N={ns[0]}-{ns[-1]}"
        ax.errorbar(ks, [scale * s.mean for _, s in pts], yerr=[scale * np.nan_to_num(s.ci) for _, s in pts],
                    marker="o", capsize=4, label=f"{label or 'all runs'} ({n_text})")
        if len(ns) > 1:
            for k, s in pts:
                ax.annotate(f"N={s.n}", (k, scale * s.mean), xytext=(6, -12), textcoords="offset points", fontsize=7)
    ax.set_xlabel("keep_prob (drop rate = 1 - keep_prob on top)")
    keeps = sorted({g.keep_prob for g in sweep.groups if g.keep_prob is not None})
    if keeps:
        ax.set_xticks(keeps)
        ax.set_xlim(min(keeps) - 0.05, max(keeps) + 0.05)
        _drop_rate_axis(ax, keeps)
    ax.grid(alpha=0.3)
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no completed runs yet", ha="center", va="center", transform=ax.transAxes)


def _drop_rate_axis(ax, keeps) -> None:
    """A top x axis in drop rate = 1 - keep_prob over a keep_prob bottom axis."""
    top = ax.secondary_xaxis("top", functions=(lambda k: 1 - k, lambda d: 1 - d))
    top.set_xticks([1 - k for k in keeps], [f"{1 - k:g}" for k in keeps])
    top.set_xlabel("drop rate = 1 - keep_prob", fontsize=8)
    top.tick_params(labelsize=8)
