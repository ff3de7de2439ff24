"""The figures of one sweep: statistics over the seeds of each setting, drawn from the
runs store.

Everything here reads ``SweepGroups`` (``dropcli.report.groups``) of ``RunRecord``s, never
live training objects, and builds one ``Figure`` per call (``dropcli.report.render``
writes it, or removes the file when the figure does not apply: None):

    val_curves.png   validation accuracy per epoch, mean over seeds with 95% band
    keep_prob.png    final and best validation accuracy vs keep_prob (or, if keep_prob is
                     not swept, vs the axis that is; None if only seeds vary)
    gap.png          train - val accuracy gap at the final epoch, vs the same axis
    grad_flow.png    gradient norm per layer (None if the runs recorded no diagnostics)

Matplotlib is imported only when a figure is drawn (see ``dropcli.report.figures.common``).
"""

from __future__ import annotations

import math

import numpy as np

from dropcli.report.figures.common import (
    diagnostic_series, diagnostics_of, keep_prob_label, layer_order, metric_column, new_figure,
)
from dropcli.report.figures.series import (
    axis_name, caption, legend_below, legend_height, n_range, styles, top_inches,
)
from dropcli.store.runs import RunRecord
from dropcli.evidence.stats import mean_ci
from dropcli.report.groups import KEEP, METRICS, Group, SweepGroups, format_value


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


def val_curves_figure(sweep: SweepGroups, title: str):
    """val_curves.png: validation accuracy per epoch, one line per keep_prob (and any other
    swept value): the mean over completed seeds with a 95% t-band, N in the legend. One
    panel per variant x normalization when those vary. Runs that did not complete are
    drawn dotted and left out of the mean. The y axis is zoomed to the curves from epoch 1
    on (epoch 0, the untrained net, sits at chance); colours and line styles are those of
    grad_flow.png."""
    from matplotlib.ticker import MaxNLocator

    panels = sweep.by(sweep.panel_keys())
    style = styles(sweep)
    cols = len(panels) if len(panels) <= 3 else math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    legend_in = 0.5 + 0.17 * max(len(g) for g in panels.values())  # x label and legend below each panel
    height = (3.2 + legend_in + 0.4) * rows + 0.9
    fig = new_figure(max(5.2 * cols, 7), height)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=legend_in / height, top=1 - 1.2 / height, wspace=0.2,
                        hspace=(legend_in + 0.4) / 3.2)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    other = [k for k in sweep.series_keys() if k not in sweep.panel_keys()]
    drawn = []  # (epochs, values in %, is a mean) of every line, for the y range
    for ax, (panel, groups) in zip(axes, panels.items()):
        for g in groups:
            drawn += _val_curve(ax, g, style[g.label(sweep.varying)], g.label(other))
        ax.set(title=panel or "all runs", xlabel="epoch", ylabel="validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.yaxis.set_tick_params(labelleft=True)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    note = _zoom_to_curves(axes[0], drawn)
    fig.suptitle(f"{title}: validation accuracy per epoch\nmean over completed seeds, 95% CI band\n{note}", fontsize=10)
    return fig


def _zoom_to_curves(ax, drawn) -> str:
    """Fit the (shared) y axis to the curves ``drawn`` = [(epochs, values, is_mean)] from
    epoch 1 on, with a small margin inside [0, 100] %: to the mean curves if there are any
    (a diverged run at chance does not squash them); returns a note for the title if
    something lies outside ("" if not)."""
    fitted = [(e, v) for e, v, is_mean in drawn if is_mean] or [(e, v) for e, v, _ in drawn]
    later = np.concatenate([v[e >= 1] for e, v in fitted] or [np.array([])])
    later = later[np.isfinite(later)]
    if not len(later):
        return ""
    margin = max(0.06 * (later.max() - later.min()), 0.5)
    low, high = max(later.min() - margin, 0), min(later.max() + margin, 100)
    ax.set_ylim(low, high)
    every = np.concatenate([v for _, v, _ in drawn])
    if np.nanmin(every) >= low:
        return ""
    return "y axis fitted to the mean curves from epoch 1 on (epoch 0 is the untrained net)"


def _val_curve(ax, group: Group, style, extra: str) -> list:
    """Draws one setting's mean curve, band and unfinished runs; returns their (epochs, %,
    is the mean)."""
    color, ls = style
    included = group.included
    label = f"{keep_prob_label(group.keep_prob)}{', ' + extra if extra else ''}; N={len(included)}"
    excluded = [r for r in group.runs if r.status != "completed"]
    if excluded:
        label += f" (+{len(excluded)} not completed, dotted)"
    drawn = []
    if included:
        epochs, values = _epoch_matrix(included)
        stats = [mean_ci(column) for column in values.T]  # per epoch, over the seeds that reached it
        mean = 100 * np.array([s.mean for s in stats])
        half = 100 * np.nan_to_num([s.ci for s in stats])
        ax.plot(epochs, mean, color=color, ls=ls, label=label)
        ax.fill_between(epochs, np.maximum(mean - half, 0), np.minimum(mean + half, 100), color=color, alpha=0.2, lw=0)
        drawn.append((epochs, mean, True))
        label = None
    for run in excluded:
        epochs, values = metric_column(run.metrics, "epoch"), 100 * metric_column(run.metrics, "val_acc")
        ax.plot(epochs, values, ls=":", color=color, label=label)
        drawn.append((epochs, values, False))
        label = None
    return drawn


def keep_prob_figure(sweep: SweepGroups, title: str):
    """keep_prob.png: final (left) and best (right) validation accuracy vs the swept axis
    (keep_prob if it varies, else ``SweepGroups.x_key``; None, and no file, if only seeds
    vary): the mean over completed seeds with 95% CI error bars, clipped to [0, 100] %,
    and each seed as a dot; one series per other varying value, dodged along x so that
    none hides another. N in the legend; drop rate on the top axis for keep_prob."""
    x_key = sweep.x_key()
    if x_key is None:
        return None
    fig = new_figure(10, 4.2 + legend_height(sweep, x_key))
    axes = fig.subplots(1, 2, sharey=True)
    clipped = False
    for ax, metric in zip(axes, ("final_val", "best_val")):
        clipped |= _metric_vs_axis(ax, sweep, x_key, metric, limits=(0, 100))
        ax.set(title=METRICS[metric][0], ylabel="validation accuracy (%)")
        ax.yaxis.set_tick_params(labelleft=True)
    text = caption(f"{title}: validation accuracy vs {axis_name(x_key)} (mean over seeds, 95% CI; dots: seeds)",
                    sweep, x_key, clipped, "[0, 100] %", width=110)
    fig.suptitle(text, fontsize=10)
    legend_below(fig, axes[0], sweep, x_key, left=0.07, right=0.98, top_in=top_inches(text, x_key),
                  bottom_in=0.55, wspace=0.22)
    return fig


def gap_figure(sweep: SweepGroups, title: str):
    """gap.png: train - val accuracy at the final epoch (percentage points) vs the swept
    axis, like keep_prob.png: mean over completed seeds with 95% CI error bars (clipped
    to [-100, 100]), seeds as dots, series dodged; None if only seeds vary."""
    x_key = sweep.x_key()
    if x_key is None:
        return None
    fig = new_figure(6.5, 4.2 + legend_height(sweep, x_key))
    ax = fig.subplots()
    clipped = _metric_vs_axis(ax, sweep, x_key, "gap", limits=(-100, 100))
    ax.axhline(0, color="gray", lw=0.5)
    ax.set(title="train - val accuracy at the final epoch", ylabel="gap (percentage points)")
    text = caption(f"{title}: generalization gap vs {axis_name(x_key)}", sweep, x_key, clipped,
                    "[-100, 100] points", width=70)
    fig.suptitle(text, fontsize=10)
    legend_below(fig, ax, sweep, x_key, left=0.12, right=0.97, top_in=top_inches(text, x_key), bottom_in=0.55)
    return fig


def grad_flow_figure(sweep: SweepGroups, title: str):
    """grad_flow.png, if the sweep's runs recorded diagnostics: left, the weight-gradient
    norm of each layer at the final epoch (W1 = the input layer; log scale); right, the
    first layer's gradient norm per epoch. One line per setting (every swept value but
    seed), coloured as in val_curves.png: the mean over completed seeds, with 95% CI bars
    (left) or band (right)."""
    groups = [(g, [diagnostics_of(r) for r in g.included]) for g in sweep.groups]
    groups = [(g, [d for d in ds if d]) for g, ds in groups]
    groups = [(g, ds) for g, ds in groups if ds]
    if not groups:
        return None
    fig = new_figure(11, 4.2 + 0.2 * math.ceil(len(groups) / 2) + 0.1)
    fig.suptitle(f"{title}: gradient flow (mean over completed seeds, 95% CI)", fontsize=10)
    ax_layers, ax_first = fig.subplots(1, 2)
    style = styles(sweep)
    for g, runs in groups:
        color, ls = style[g.label(sweep.varying)]
        label = f"{g.label(sweep.varying) or 'all runs'} (N={len(runs)})"
        finals = [(r[-1]["diagnostics"].get("grad_norm") or {}) for r in runs]
        names = sorted({n for f in finals for n in f}, key=layer_order)
        stats = [mean_ci(f.get(n) for f in finals) for n in names]
        x = [layer_order(n)[0] for n in names]
        ax_layers.errorbar(x, [s.mean for s in stats], yerr=[np.nan_to_num(s.ci) for s in stats], marker="o",
                           capsize=3, color=color, ls=ls, label=label)
        series = [diagnostic_series(r, "grad_norm").get("W1") for r in runs]
        series = [s for s in series if s is not None]
        epochs = sorted({int(e) for s in series for e in s[0]})
        per_epoch = [mean_ci(float(v[list(e_).index(e)]) for e_, v in series if e in e_) for e in epochs]
        mean = np.array([s.mean for s in per_epoch])
        half = np.nan_to_num([s.ci for s in per_epoch])
        ax_first.plot(epochs, mean, color=color, ls=ls, marker=".", label=label)
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
    return fig


def _x_positions(sweep: SweepGroups, x_key: str) -> dict[str, float]:
    """Where each value of the x axis goes, by its label: keep_prob at its value, any
    other axis at 0, 1, 2, ... in sorted (numbers) or grid order."""
    values = list({format_value(g.value(x_key)): g.value(x_key) for g in sweep.groups if g.value(x_key) is not None}
                  .items())
    if x_key == KEEP:
        return {label: float(v) for label, v in values}
    if all(isinstance(v, (int, float)) for _, v in values):
        values.sort(key=lambda item: item[1])
    return {label: float(i) for i, (label, _) in enumerate(values)}


def _dodge(n_series: int, spacing: float) -> list[float]:
    """x offsets of n series sharing x values: spread over 40% of the gap between values."""
    if n_series < 2:
        return [0.0]
    step = 0.4 * spacing / (n_series - 1)
    return [(i - (n_series - 1) / 2) * step for i in range(n_series)]


def _metric_vs_axis(ax, sweep: SweepGroups, x_key: str, metric: str, limits: tuple[float, float]) -> bool:
    """One series per label of the other varying keys, dodged along x (see ``_series``).
    Returns whether an error bar was clipped to ``limits``."""
    from matplotlib import colormaps

    positions = _x_positions(sweep, x_key)
    ordered = sorted(positions.values())
    spacing = float(min(np.diff(ordered))) if len(ordered) > 1 else 1.0
    series = sweep.by(sweep.series_keys(x_key))
    seed_dx = 0.12 * spacing / max(len(series), 2)  # seeds just right of their mean, clear of the next series
    joined = all(isinstance(g.value(x_key), (int, float)) for g in sweep.groups)  # an ordered axis
    clipped = False
    for i, ((label, groups), offset) in enumerate(zip(series.items(), _dodge(len(series), spacing))):
        pts = [(positions[format_value(g.value(x_key))] + offset, g) for g in groups if g.value(x_key) is not None]
        clipped |= _series(ax, pts, metric, limits, colormaps["tab10"](i % 10), label or "all runs", seed_dx, joined)
    ax.grid(alpha=0.3)
    if positions:
        ax.set_xlim(ordered[0] - 0.35 * spacing, ordered[-1] + 0.35 * spacing)
        ax.set_xticks(list(positions.values()), list(positions))
    if x_key == KEEP:
        ax.set_xlabel("keep_prob (drop rate = 1 - keep_prob on top)")
        _drop_rate_axis(ax, ordered)
    else:
        ax.set_xlabel(axis_name(x_key))
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no completed runs yet", ha="center", va="center", transform=ax.transAxes)
    return clipped


def _series(ax, pts, metric, limits, color, label, seed_dx, joined) -> bool:
    """One series at its (dodged) x positions ``pts`` = [(x, group)]: the mean in % with its
    95% CI clipped to ``limits``, and each seed as a small dot. Returns whether it clipped."""
    pts = sorted(((x, g.stat(metric), g.samples(metric)) for x, g in pts if g.stat(metric).n), key=lambda p: p[0])
    if not pts:
        return False
    xs = np.array([x for x, _, _ in pts])
    mean = np.array([100 * s.mean for _, s, _ in pts])
    half = np.array([100 * s.ci for _, s, _ in pts])  # nan with one seed: no bar
    low, high = np.clip(mean - half, *limits), np.clip(mean + half, *limits)
    ns = sorted({s.n for _, s, _ in pts})
    n_text = n_range(ns)
    ax.errorbar(xs, mean, yerr=np.nan_to_num([mean - low, high - mean]), marker="o", capsize=4, color=color,
                ls="-" if joined else "none", zorder=3, label=f"{label} ({n_text})")
    for x, _, seeds in pts:
        ax.scatter(np.full(len(seeds), x + seed_dx), 100 * np.array(seeds), s=14, color=color, alpha=0.5, lw=0,
                   zorder=2)
    if len(ns) > 1:
        for x, m, (_, s, _) in zip(xs, mean, pts):
            ax.annotate(f"N={s.n}", (x, m), xytext=(6, -12), textcoords="offset points", fontsize=7)
    return bool(np.any((mean - half < limits[0]) | (mean + half > limits[1])))


def _drop_rate_axis(ax, keeps) -> None:
    """A top x axis in drop rate = 1 - keep_prob over a keep_prob bottom axis."""
    top = ax.secondary_xaxis("top", functions=(lambda k: 1 - k, lambda d: 1 - d))
    top.set_xticks([1 - k for k in keeps], [f"{1 - k:g}" for k in keeps])
    top.set_xlabel("drop rate = 1 - keep_prob", fontsize=8)
    top.tick_params(labelsize=8)
