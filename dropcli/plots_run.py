"""The figures of one run, drawn from its files in the runs store.

Everything here reads a ``RunRecord`` (``dropcli.runs``), never live training objects, and
writes one PNG per call, atomically (``figures.save_figure``):

    curves.png       accuracy and loss per epoch
    expectation.png  measured vs predicted dropout statistics per layer
    diagnostics.png  gradient norm, activation mean / std, dead relu units per layer

Matplotlib is imported only when a figure is drawn (see ``dropcli.figures``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .figures import (
    diagnostic_series, diagnostics_of, keep_prob_label, metric_column, new_figure, save_figure,
)
from .runs import RunRecord
from .sweep_groups import keep_prob_of


def _status_note(run: RunRecord) -> str:
    if run.status == "completed":
        return "completed"
    epochs = run.metrics[-1].get("epoch") if run.metrics else 0
    return f"{run.status.upper()} ({epochs}/{run.value('train.epochs', '?')} epochs)"


def plot_run_curves(run: RunRecord, path: Path) -> Path:
    """curves.png: left, train and val accuracy (eval mode) per epoch; right, train loss
    (train-mode minibatch mean over the epoch, with dropout on), train loss in eval mode
    and val loss per epoch. The title gives status, keep_prob, drop rate, variant and
    normalization; a run that did not complete is labelled with its status (and a
    diverged one marked where it diverged)."""
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(9, 3.6)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.80, wspace=0.22)
    ax_acc, ax_loss = fig.subplots(1, 2)
    m = run.metrics
    epochs = metric_column(m, "epoch")
    fig.suptitle(
        f"{run.run_id}: {_status_note(run)}\n{keep_prob_label(keep_prob_of(run))}, variant "
        f"{run.value('dropout.variant', '?')}, normalization {run.value('model.normalization', '?')}",
        fontsize=10, color="black" if run.status == "completed" else "firebrick",
    )
    ax_acc.plot(epochs, 100 * metric_column(m, "train_acc"), marker=".", label="train (eval mode)")
    ax_acc.plot(epochs, 100 * metric_column(m, "val_acc"), marker=".", label="val")
    ax_loss.plot(epochs, metric_column(m, "train_loss"), marker=".", label="train (train-mode minibatch mean)")
    ax_loss.plot(epochs, metric_column(m, "train_eval_loss"), ls="--", label="train (eval mode)")
    ax_loss.plot(epochs, metric_column(m, "val_loss"), marker=".", label="val")
    _loss_scale(ax_loss, m)
    if not m:
        ax_acc.set_ylim(0, 100)
    for ax, title, ylabel in ((ax_acc, "accuracy", "accuracy (%)"), (ax_loss, "loss", "cross-entropy loss")):
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        if not m:
            ax.text(0.5, 0.5, "no epochs recorded yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlim(0, max(run.value("train.epochs") or 1, 1))
        if run.status == "diverged" and m:
            ax.axvline(epochs[-1], color="firebrick", ls=":", label="diverged after this epoch")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return save_figure(fig, path)


def _loss_scale(ax, records) -> None:
    """Linear from 0, or logarithmic when a diverging loss spans orders of magnitude."""
    values = np.concatenate([metric_column(records, k) for k in ("train_loss", "train_eval_loss", "val_loss")])
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) and values.max() > 100 * values.min():
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, 1.05 * values.max() if len(values) else 1.0)


def plot_expectation(run: RunRecord, path: Path) -> Path | None:
    """expectation.png, if the run's expectation.json has dropout layers: for the
    train-time mean, and the dropped fraction and / or train-time variance (whichever the
    layers' variants predict; n/a where a layer's does not), measured - predicted with
    error bars of +-z_tol standard errors around the prediction (0); a point inside its
    bar passes. Tick labels give each layer's keep_prob and drop rate; annotations give
    measured, predicted and z. The title shows variant, keep_prob and drop rate."""
    exp = run.expectation or {}
    layers = expectation_layers(run)
    if not layers:
        return None
    z_tol = float(exp.get("z_tol", 4.0))
    titles = {"train_mean": "train-time mean", "train_var": "train-time variance around the mean",
              "dropped_fraction": "dropped fraction (predicted: 1 - keep_prob)"}
    panels = [q for q in titles if any(_applies(layer.get(q)) for layer in layers)]
    fig = new_figure(4.75 * max(len(panels), 2), 4.0)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.14, top=0.76, wspace=0.3)
    verdict = "PASS" if exp.get("pass") else "FAIL"
    fig.suptitle(
        f"{run.run_id}: expectation check ({exp.get('split', '?')}, {exp.get('draws', '?')} draws): {verdict}\n"
        f"variant {run.value('dropout.variant', layers[0].get('variant'))}, {keep_prob_label(keep_prob_of(run))}, "
        f"input keep_prob {run.value('dropout.input_keep_prob', '?')}",
        fontsize=10, color="black" if exp.get("pass") else "firebrick",
    )
    x = np.arange(len(layers))
    ticks = [
        f"{layer.get('layer', '?')}\nkeep {layer.get('keep_prob', math.nan):g} / drop {layer.get('drop_rate', math.nan):g}"
        for layer in layers
    ]
    for ax, quantity in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        _expectation_panel(ax, x, [layer.get(quantity) or {} for layer in layers], z_tol)
        ax.set_title(f"{titles[quantity]}\nmeasured - predicted; bars: ±{z_tol:g} se", fontsize=9)
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_xlim(-0.6, len(layers) - 0.4)
    return save_figure(fig, path)


def _applies(q) -> bool:
    """Whether an expectation quantity was predicted by the layer's variant (and measured)."""
    return isinstance(q, dict) and q.get("applicable", True) is not False


def expectation_layers(run: RunRecord) -> list[dict]:
    """The dropout layers of the run's expectation.json ([] if none or no file)."""
    layers = (run.expectation or {}).get("layers")
    return [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []


def _expectation_panel(ax, x, quantities, z_tol) -> None:
    from matplotlib.ticker import FormatStrFormatter

    num = lambda q, k: float(q[k]) if isinstance(q.get(k), (int, float)) else math.nan  # noqa: E731
    meas, pred, se = (np.array([num(q, k) for q in quantities]) for k in ("measured", "predicted", "se"))
    ok = [bool(q.get("pass")) for q in quantities]
    ax.errorbar(x, np.zeros_like(x, dtype=float), yerr=z_tol * se, fmt="_", color="gray", capsize=8,
                ms=16, label=f"predicted ± {z_tol:g} se")
    colors = ["gray" if not (q and _applies(q)) else "seagreen" if p else "firebrick" for q, p in zip(quantities, ok)]
    order = sorted(range(len(x)), key=lambda j: colors[j] == "gray")  # the legend shows the first point's colour
    ax.scatter(x[order], (meas - pred)[order], c=[colors[j] for j in order], zorder=3, label="measured")
    for xi, m, p, s, q in zip(x, meas, pred, se, quantities):
        text = f"meas {m:.4g}\npred {p:.4g}\nz {num(q, 'z'):.2f}" if q and _applies(q) else "n/a for\nthis variant"
        ax.annotate(text, (xi, 0), xytext=(10, 0), textcoords="offset points", fontsize=7, va="center")
    ax.axhline(0, color="gray", lw=0.5)
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))  # no offset text to collide with titles
    ax.legend(fontsize=7, loc="lower left")


DIAGNOSTIC_PANELS = (
    ("grad_norm", "gradient norm ||dL/dW|| (mean over the epoch's steps)", True),
    ("act_mean", "mean of the layer's output (eval subsample)", False),
    ("act_std", "std of the layer's output (eval subsample)", False),
    ("dead_fraction", "dead relu units (never active on the eval subsample)", False),
    ("max_col_norm", "largest incoming-weight norm of a unit", False),
)


def plot_diagnostics(run: RunRecord, path: Path) -> Path | None:
    """diagnostics.png, if the run's epoch records carry diagnostics (see
    ``dropcli.diagnostics``): per layer and epoch, the weight-gradient norm (log scale), the
    mean and std of each hidden layer's output, the fraction of dead relu units (relu nets)
    and the largest incoming-weight norm (with the max-norm bound, if set). Layers are
    coloured from the input (dark) to the output (light)."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    records = diagnostics_of(run)
    if not records:
        return None
    panels = [(k, t, log) for k, t, log in DIAGNOSTIC_PANELS if diagnostic_series(records, k)]
    cols = 3 if len(panels) > 4 else 2
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(5.0 * cols, 3.3 * rows + 0.9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.45 / (3.3 * rows + 0.9), top=1 - 0.9 / (3.3 * rows + 0.9),
                        wspace=0.25, hspace=0.4)
    max_norm = run.value("model.max_norm")
    fig.suptitle(
        f"{run.run_id}: training diagnostics ({_status_note(run)})\n{keep_prob_label(keep_prob_of(run))}, variant "
        f"{run.value('dropout.variant', '?')}, {run.value('model.activation', '?')}, normalization "
        f"{run.value('model.normalization', '?')}, max_norm {max_norm if max_norm is not None else 'off'}",
        fontsize=10, color="black" if run.status == "completed" else "firebrick",
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for ax, (key, title, log) in zip(axes, panels):
        series = diagnostic_series(records, key)
        for j, (name, (epochs, values)) in enumerate(series.items()):
            ax.plot(epochs, values, marker=".", ms=3, color=cmap(0.85 * j / max(len(series) - 1, 1)), label=name)
        if log and any(np.nanmin(v) > 0 for _, v in series.values()):
            ax.set_yscale("log")
        if key == "max_col_norm" and isinstance(max_norm, (int, float)):
            ax.axhline(max_norm, color="firebrick", ls="--", lw=1, label=f"max_norm {max_norm:g}")
        if key == "dead_fraction":
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, ncol=2 if len(series) > 4 else 1)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return save_figure(fig, path)
