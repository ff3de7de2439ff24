"""The figures of one run, drawn from its files in the runs store.

Everything here reads a ``RunRecord`` (``dropcli.store.runs``), never live training objects, and
writes one PNG per call, atomically (``figures.save_figure``):

    curves.png       accuracy and loss per epoch
    expectation.png  per dropout layer: the mean entering it, train- and test-time output
                     means against the variant's predictions, and the z of every check
    diagnostics.png  gradient norm, activation mean / std, dead relu units per layer

``plot_expectation`` and ``plot_diagnostics`` have ``*_figure`` twins that build the
``Figure`` without writing it (None when there is nothing to draw; ``plot_*`` then
removes a stale file).

Matplotlib is imported only when a figure is drawn (see ``dropcli.report.figures.common``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dropcli.report.figures.common import (
    diagnostic_series, diagnostics_of, keep_prob_label, layer_order, metric_column, new_figure, save_figure,
    save_or_remove,
)
from dropcli.store.runs import RunRecord
from dropcli.report.groups import keep_prob_of


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
    """expectation.png, if the run's expectation.json has dropout layers (see
    ``expectation_figure``)."""
    return save_or_remove(expectation_figure(run), path)


BAR_SERIES = (  # (what, how each layer reads it, colour) of the top panel's bars
    ("a: mean entering the layer", lambda x: _reference(x), "silver"),
    ("train-time output mean (measured, over mask draws)", lambda x: _num(x.get("train_mean"), "measured"),
     "tab:blue"),
    ("test-time output mean (measured)", lambda x: _num(x.get("test_mean"), "measured"), "tab:orange"),
)
RESIDUALS = (  # (quantity, legend, marker) of the bottom panel
    ("train_mean", "train-time mean", "o"), ("test_mean", "test-time mean", "s"),
    ("dropped_fraction", "dropped fraction", "^"), ("train_var", "train-time variance", "D"),
)


def expectation_figure(run: RunRecord):
    """The expectation check of a run's dropout layers as a ``Figure`` (None without layers).

    Top, per layer: bars of a, the mean entering the layer (for DropConnect, the mean of
    its output with the mean weights, x W + b), the measured train-time output mean over
    mask draws and the test-time output mean, each labelled with its ratio to a; black
    ticks mark the variant's predictions (inverted: train = test = a; vanilla: train =
    test = keep_prob a) and a dotted line keep_prob a, what the mask alone leaves. The
    title states each variant's rule from the file's train_scale / test_scale. Bottom:
    z = (measured - predicted) / se of every quantity the variant predicts, inside
    +-z_tol to pass."""
    exp = run.expectation or {}
    layers = expectation_layers(run)
    if not layers:
        return None
    z_tol = float(exp.get("z_tol", 4.0))
    fig = new_figure(max(8.0, 2.3 * len(layers) + 3.0), 8.2)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.8, bottom=0.06, hspace=0.62)
    ax, ax_z = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2.3, 1]})
    verdict = "PASS" if exp.get("pass") else "FAIL"
    rules = list(dict.fromkeys(_rule(x) for x in layers))
    fig.suptitle(
        f"{run.run_id}: expectation check ({exp.get('split', '?')}, {exp.get('draws', '?')} mask draws): {verdict}\n"
        + "\n".join(rules) + "\neach rule makes the test-time output equal the expected train-time output",
        fontsize=10, color="black" if exp.get("pass") else "firebrick",
    )
    x = np.arange(len(layers))
    _mean_bars(ax, x, layers)
    ax.set_xticks(x, [_layer_tick(layer) for layer in layers], fontsize=8)
    _z_panel(ax_z, x, layers, z_tol)
    ax_z.set_xticks(x, [str(layer.get("layer", "?")) for layer in layers], fontsize=8)
    for a in (ax, ax_z):
        a.set_xlim(-0.6, len(layers) - 0.4)
    return fig


def _applies(q) -> bool:
    """Whether an expectation quantity was predicted by the layer's variant (and measured)."""
    return isinstance(q, dict) and q.get("applicable", True) is not False


def expectation_layers(run: RunRecord) -> list[dict]:
    """The dropout layers of the run's expectation.json ([] if none or no file)."""
    layers = (run.expectation or {}).get("layers")
    return [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []


def _num(q, key) -> float:
    v = q.get(key) if isinstance(q, dict) else None
    return float(v) if isinstance(v, (int, float)) else math.nan


def _reference(layer: dict) -> float:
    """a: the mean entering a unit-dropout layer, or the mean of a DropConnect layer's
    output with its mean weights (its prediction)."""
    if layer.get("variant") == "dropconnect":
        return _num(layer.get("test_mean"), "predicted")
    return _num(layer, "input_mean")


def _rule(layer: dict) -> str:
    """``inverted: train mask x 1/keep (x2), test x 1``, from the layer's scales."""
    variant, k = layer.get("variant", "?"), _num(layer, "keep_prob")
    s, t = _num(layer, "train_scale"), _num(layer, "test_scale")
    train = f"x 1/keep (x{s:.3g})" if s != 1 else "x 1"
    test = f"x keep (x{t:.3g})" if t != 1 else "x 1"
    if variant == "gaussian":
        return f"gaussian, keep_prob {k:g}: train x N(1, (1 - keep)/keep) noise (mean 1), test x 1"
    if variant == "dropconnect":
        return f"dropconnect, keep_prob {k:g}: train weights W x mask {train}, test weights W {test}"
    return f"{variant}, keep_prob {k:g}: train x mask {train}, test {test}"


def _layer_tick(layer: dict) -> str:
    k = _num(layer, "keep_prob")
    return (f"{layer.get('layer', '?')} ({layer.get('variant', '?')})\nkeep_prob {k:g} / drop rate {1 - k:g}\n"
            f"train x{_num(layer, 'train_scale'):.3g}, test x{_num(layer, 'test_scale'):.3g}")


def _mean_bars(ax, x, layers) -> None:
    """The top panel: a, train and test means per layer, predictions and keep_prob a."""
    from matplotlib.container import BarContainer

    width = 0.26
    a = np.array([_reference(layer) for layer in layers])
    everything = []
    for j, (label, read, color) in enumerate(BAR_SERIES):
        values = np.array([read(layer) for layer in layers])
        everything.append(values)
        if j == 0 and any(layer.get("variant") == "dropconnect" for layer in layers):
            label += " (DropConnect: of x W + b, the output with the mean weights)"
        pos = x + (j - 1) * width
        bars = ax.bar(pos, values, width * 0.95, color=color, label=label)
        if j:  # each output mean as a multiple of a
            ratios = [f"= {v / r:.2f} a" if r and np.isfinite(v / r) else "" for v, r in zip(values, a)]
            ax.bar_label(bars, ratios, fontsize=7, padding=4)
            pred = np.array([_num(layer.get(("train_mean", "test_mean")[j - 1]), "predicted") for layer in layers])
            ax.hlines(pred, pos - width / 2, pos + width / 2, color="black", lw=2,
                      label="predicted by the variant" if j == 1 else None, zorder=3, gid="predicted")
    masked = [i for i, layer in enumerate(layers) if _applies(layer.get("dropped_fraction"))]
    if masked:  # Bernoulli unit masks: what dropping alone leaves, before any rescaling
        k = np.array([_num(layers[i], "keep_prob") for i in masked])
        ax.hlines(k * a[masked], x[masked] - 1.6 * width, x[masked] + 1.6 * width, color="black", ls=(0, (2, 2)),
                  lw=1.2, label="keep_prob x a: the mask alone, before any scaling", zorder=3)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_ylabel("mean activation")
    everything = np.concatenate(everything)
    everything = everything[np.isfinite(everything)]
    low, high = np.min(everything, initial=0.0), np.max(everything, initial=0.0)
    pad = 0.15 * (high - low or 1.0)  # room for the ratio labels on either side of 0
    ax.set_ylim(low - pad * (low < 0), high + pad * (high > 0))
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not isinstance(handles[i], BarContainer))  # bars first
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, ncol=2, loc="lower left",
              bbox_to_anchor=(0, 1.01), frameon=False)


def _z_panel(ax, x, layers, z_tol) -> None:
    """The bottom panel: z of each predicted quantity, dodged per layer; green passes."""
    from matplotlib.lines import Line2D

    ax.axhspan(-z_tol, z_tol, color="seagreen", alpha=0.1, lw=0)
    ax.axhline(0, color="gray", lw=0.5)
    zs = [_num(layer.get(q), "z") for layer in layers for q, _, _ in RESIDUALS if _applies(layer.get(q))]
    finite = [abs(z) for z in zs if math.isfinite(z)]
    top = max([1.5 * z_tol] + [1.15 * z for z in finite])
    handles = [Line2D([], [], color="seagreen", alpha=0.3, lw=6, label=f"pass: |z| <= {z_tol:g}")]
    for j, (q, label, marker) in enumerate(RESIDUALS):
        shown = [(i, layer.get(q)) for i, layer in enumerate(layers) if _applies(layer.get(q))]
        if not shown:
            continue
        pos = np.array([x[i] + (j - 1.5) * 0.14 for i, _ in shown])
        z = np.array([_num(r, "z") for _, r in shown])
        colors = ["seagreen" if r.get("pass") else "firebrick" for _, r in shown]
        ax.scatter(pos, np.clip(np.nan_to_num(z, nan=0.0), -top, top), marker=marker, c=colors, s=30, zorder=3)
        handles.append(Line2D([], [], marker=marker, color="gray", ls="none", label=label))
    ax.set_ylim(-top, top)
    ax.set_ylabel("z = (measured -\npredicted) / se", fontsize=8)
    ax.set_title("residual check: every quantity the variant predicts (red: outside the band, fails)", fontsize=9,
                 pad=18)
    ax.legend(handles=handles, fontsize=7, ncol=len(handles), loc="lower left", bbox_to_anchor=(0, 1.0),
              frameon=False)
    ax.grid(axis="y", alpha=0.3)


DIAGNOSTIC_PANELS = (
    ("grad_norm", "gradient norm ||dL/dW|| (mean over the epoch's steps)", True),
    ("act_mean", "mean of the layer's output (eval subsample)", False),
    ("act_std", "std of the layer's output (eval subsample)", False),
    ("dead_fraction", "fraction of dead relu units (never active on the eval subsample)", False),
    ("max_col_norm", "largest incoming-weight norm of a unit", False),
)


def plot_diagnostics(run: RunRecord, path: Path) -> Path | None:
    """diagnostics.png, if the run recorded diagnostics (see ``diagnostics_figure``)."""
    return save_or_remove(diagnostics_figure(run), path)


def diagnostics_figure(run: RunRecord):
    """diagnostics.png, if the run's epoch records carry diagnostics (see
    ``dropcli.train.diagnostics``): per layer and epoch, the weight-gradient norm (log scale), the
    mean and std of each hidden layer's output, the fraction of dead relu units (relu nets)
    and the largest incoming-weight norm (with the max-norm bound, if set). Layers are
    coloured by number from the input (dark) to the output (light), h_i like W_i."""
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
    # Layer i's colour is the same in every panel: W_i and h_i = act(h_{i-1} W_i) share it.
    deepest = max(layer_order(n)[0] for key, _, _ in panels for n in diagnostic_series(records, key))

    def color(name):
        return colormaps["viridis"](0.85 * (layer_order(name)[0] - 1) / max(deepest - 1, 1))

    for ax, (key, title, log) in zip(axes, panels):
        series = diagnostic_series(records, key)
        for name, (epochs, values) in series.items():
            ax.plot(epochs, values, marker=".", ms=3, color=color(name), label=name)
        if log and any(np.nanmin(v) > 0 for _, v in series.values()):
            ax.set_yscale("log")
        if key == "max_col_norm" and isinstance(max_norm, (int, float)):
            ax.axhline(max_norm, color="firebrick", ls="--", lw=1, label=f"max_norm {max_norm:g}")
        if key == "dead_fraction":
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("fraction of the layer's units (0-1)", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, ncol=2 if len(series) > 4 else 1)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig
