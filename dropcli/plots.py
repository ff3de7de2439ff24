"""Figures of the runs store, and the statistics over seeds that the sweep figures show.

Everything here reads ``RunRecord``s (``dropcli.runs``), never live training objects, and
writes one PNG per call, atomically (temporary file in the same folder, then rename).

Per run:    curves.png       accuracy and loss per epoch
            expectation.png  measured vs predicted dropout statistics per layer
            diagnostics.png  gradient norm, activation mean / std, dead relu units per layer
Per sweep:  val_curves.png   validation accuracy per epoch, mean over seeds with 95% band
            keep_prob.png    final and best validation accuracy vs keep_prob
            gap.png          train - val accuracy gap at the final epoch vs keep_prob
            grad_flow.png    gradient norm per layer (if the runs recorded diagnostics)

Matplotlib is imported only when a figure is drawn, and only its object API with the Agg
canvas is used (``Figure`` + ``savefig``): no pyplot, so no window, no global figure
registry and nothing to close; a figure is freed when its last reference goes.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .runs import RunRecord
from .stats import Stat, mean_ci, t_critical  # noqa: F401  (report.py uses them through plots)

DPI = 90
EXCLUDED_NOTE = "runs not completed are excluded from means and CIs"

def _get(summary: dict, section: str, key: str):
    return (summary.get(section) or {}).get(key)


def _gap(summary: dict):
    tr, va = _get(summary, "final", "train_acc"), _get(summary, "final", "val_acc")
    return None if tr is None or va is None else tr - va


# metric -> (what it is, how to read it from summary.json)
METRICS = {
    "final_val": ("final val acc", lambda s: _get(s, "final", "val_acc")),
    "best_val": ("best val acc", lambda s: _get(s, "best", "val_acc")),
    "gap": ("train - val gap (final epoch)", _gap),
}


def keep_prob_of(run: RunRecord) -> float | None:
    k = run.value("dropout.keep_prob", (run.summary or {}).get("keep_prob"))
    return float(k) if isinstance(k, (int, float)) else None


@dataclass
class Group:
    """The runs of a sweep that differ only in ``seed``: replicates of one setting."""

    values: dict  # varying swept parameter (dotted key) -> value; never seed
    keep_prob: float | None
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def included(self) -> list[RunRecord]:
        """The runs that count in the statistics: completed ones."""
        return [r for r in self.runs if r.status == "completed"]

    def stat(self, metric: str) -> Stat:
        read = METRICS[metric][1]
        return mean_ci(read(r.summary or {}) for r in self.included)

    def label(self, keys) -> str:
        """``key=value`` for the given dotted keys, by their last part."""
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={format_value(self.values.get(k))}" for k in keys)


@dataclass
class SweepGroups:
    varying: list[str]  # swept keys except seed whose values differ between runs
    groups: list[Group]

    def panel_keys(self) -> list[str]:
        return [k for k in ("dropout.variant", "model.normalization") if k in self.varying]

    def series_keys(self) -> list[str]:
        return [k for k in self.varying if k != "dropout.keep_prob"]

    def by(self, keys) -> dict[str, list[Group]]:
        """Groups split by the values of ``keys`` (label -> groups sorted by keep_prob)."""
        out: dict[str, list[Group]] = {}
        for g in self.groups:
            out.setdefault(g.label(keys), []).append(g)
        return {k: sorted(v, key=lambda g: (g.keep_prob is None, g.keep_prob or 0)) for k, v in out.items()}


def _key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def group_sweep(spec: dict, runs: list[RunRecord]) -> SweepGroups:
    """Group a sweep's runs by every swept value except ``seed`` (the replicates).

    Values are read from each run's resolved config, falling back to sweep.yaml's
    ``runs[].values``; groups keep the order in which the grid first reaches them."""
    spec_values = {str(e.get("run_id")): e.get("values") or {} for e in spec.get("runs") or [] if isinstance(e, dict)}
    axes = [k for k in (spec.get("axes") or {}) if k != "seed"]

    def values_of(run):
        fallback = spec_values.get(run.run_id, {})
        return {k: run.value(k, fallback.get(k)) for k in axes}

    all_values = [values_of(r) for r in runs]
    varying = [k for k in axes if len({_key(v[k]) for v in all_values}) > 1]
    groups: dict[str, Group] = {}
    for run, values in zip(runs, all_values):
        picked = {k: values[k] for k in varying}
        g = groups.setdefault(_key(picked), Group(picked, keep_prob_of(run)))
        g.runs.append(run)
    return SweepGroups(varying, list(groups.values()))


# --- writing figures -----------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def save_figure(fig, path: Path) -> Path:
    """Render ``fig`` as PNG and replace ``path`` with it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})  # ~20% faster, ~20% larger
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _column(records: list[dict], key: str) -> np.ndarray:
    """One metric per epoch record as floats; missing or non-finite values are nan."""
    out = [r.get(key) for r in records]
    arr = np.array([v if isinstance(v, (int, float)) else np.nan for v in out], dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def _knob(keep_prob) -> str:
    if keep_prob is None:
        return "keep_prob ?"
    return f"keep_prob {keep_prob:g} (drop rate {1 - keep_prob:g})"


def _drop_rate_axis(ax, keeps) -> None:
    """A top x axis in drop rate = 1 - keep_prob over a keep_prob bottom axis."""
    top = ax.secondary_xaxis("top", functions=(lambda k: 1 - k, lambda d: 1 - d))
    top.set_xticks([1 - k for k in keeps], [f"{1 - k:g}" for k in keeps])
    top.set_xlabel("drop rate = 1 - keep_prob", fontsize=8)
    top.tick_params(labelsize=8)


def _status_note(run: RunRecord) -> str:
    if run.status == "completed":
        return "completed"
    epochs = run.metrics[-1].get("epoch") if run.metrics else 0
    return f"{run.status.upper()} ({epochs}/{run.value('train.epochs', '?')} epochs)"


# --- per run -------------------------------------------------------------------------


def plot_run_curves(run: RunRecord, path: Path) -> Path:
    """curves.png: left, train and val accuracy (eval mode) per epoch; right, train loss
    (train-mode minibatch mean over the epoch, with dropout on), train loss in eval mode
    and val loss per epoch. The title gives status, keep_prob, drop rate, variant and
    normalization; a run that did not complete is labelled with its status (and a
    diverged one marked where it diverged)."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(9, 3.6)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.80, wspace=0.22)
    ax_acc, ax_loss = fig.subplots(1, 2)
    m = run.metrics
    epochs = _column(m, "epoch")
    fig.suptitle(
        f"{run.run_id}: {_status_note(run)}\n{_knob(keep_prob_of(run))}, variant "
        f"{run.value('dropout.variant', '?')}, normalization {run.value('model.normalization', '?')}",
        fontsize=10, color="black" if run.status == "completed" else "firebrick",
    )
    ax_acc.plot(epochs, 100 * _column(m, "train_acc"), marker=".", label="train (eval mode)")
    ax_acc.plot(epochs, 100 * _column(m, "val_acc"), marker=".", label="val")
    ax_loss.plot(epochs, _column(m, "train_loss"), marker=".", label="train (train-mode minibatch mean)")
    ax_loss.plot(epochs, _column(m, "train_eval_loss"), ls="--", label="train (eval mode)")
    ax_loss.plot(epochs, _column(m, "val_loss"), marker=".", label="val")
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
    values = np.concatenate([_column(records, k) for k in ("train_loss", "train_eval_loss", "val_loss")])
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
    fig = _figure(4.75 * max(len(panels), 2), 4.0)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.14, top=0.76, wspace=0.3)
    verdict = "PASS" if exp.get("pass") else "FAIL"
    fig.suptitle(
        f"{run.run_id}: expectation check ({exp.get('split', '?')}, {exp.get('draws', '?')} draws): {verdict}\n"
        f"variant {run.value('dropout.variant', layers[0].get('variant'))}, {_knob(keep_prob_of(run))}, "
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


DIAGNOSTIC_PANELS = (
    ("grad_norm", "gradient norm ||dL/dW|| (mean over the epoch's steps)", True),
    ("act_mean", "mean of the layer's output (eval subsample)", False),
    ("act_std", "std of the layer's output (eval subsample)", False),
    ("dead_fraction", "dead relu units (never active on the eval subsample)", False),
    ("max_col_norm", "largest incoming-weight norm of a unit", False),
)


def diagnostics_of(run: RunRecord) -> list[dict]:
    """The epoch records of a run that carry a ``diagnostics`` dict."""
    return [r for r in run.metrics if isinstance(r.get("diagnostics"), dict)]


def _layer_order(name: str):
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def _diagnostic_series(records: list[dict], key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """layer name -> (epochs, values) of one diagnostic, in layer order."""
    names = sorted({n for r in records for n in (r["diagnostics"].get(key) or {})}, key=_layer_order)
    out = {}
    for name in names:
        pts = [(r.get("epoch"), (r["diagnostics"].get(key) or {}).get(name)) for r in records]
        pts = [(e, v) for e, v in pts if isinstance(e, (int, float)) and isinstance(v, (int, float))]
        if pts:
            out[name] = tuple(np.array(c, dtype=float) for c in zip(*pts))
    return out


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
    panels = [(k, t, log) for k, t, log in DIAGNOSTIC_PANELS if _diagnostic_series(records, k)]
    cols = 3 if len(panels) > 4 else 2
    rows = math.ceil(len(panels) / cols)
    fig = _figure(5.0 * cols, 3.3 * rows + 0.9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.45 / (3.3 * rows + 0.9), top=1 - 0.9 / (3.3 * rows + 0.9),
                        wspace=0.25, hspace=0.4)
    max_norm = run.value("model.max_norm")
    fig.suptitle(
        f"{run.run_id}: training diagnostics ({_status_note(run)})\n{_knob(keep_prob_of(run))}, variant "
        f"{run.value('dropout.variant', '?')}, {run.value('model.activation', '?')}, normalization "
        f"{run.value('model.normalization', '?')}, max_norm {max_norm if max_norm is not None else 'off'}",
        fontsize=10, color="black" if run.status == "completed" else "firebrick",
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for ax, (key, title, log) in zip(axes, panels):
        series = _diagnostic_series(records, key)
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


# --- per sweep -----------------------------------------------------------------------


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
    fig = _figure(max(5.2 * cols, 7), height)
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
    label = f"{_knob(group.keep_prob)}{', ' + extra if extra else ''}; N={len(included)}"
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
        ax.plot(_column(run.metrics, "epoch"), 100 * _column(run.metrics, "val_acc"), ls=":", color=color,
                label=label)
        label = None


def plot_keep_prob(sweep: SweepGroups, title: str, path: Path) -> Path:
    """keep_prob.png: final (left) and best (right) validation accuracy vs keep_prob, the
    mean over completed seeds with 95% CI error bars, one line per variant x
    normalization (and any other swept value); N in the legend, drop rate on the top axis."""
    fig = _figure(10, 4.2 + _legend_height(sweep))
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
    fig = _figure(6.5, 4.2 + _legend_height(sweep))
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
    fig = _figure(11, 4.2 + 0.2 * math.ceil(len(groups) / 2) + 0.1)
    fig.suptitle(f"{title}: gradient flow (mean over completed seeds, 95% CI)", fontsize=10)
    ax_layers, ax_first = fig.subplots(1, 2)
    for g, runs in groups:
        label = f"{g.label(sweep.varying) or 'all runs'} (N={len(runs)})"
        finals = [(r[-1]["diagnostics"].get("grad_norm") or {}) for r in runs]
        names = sorted({n for f in finals for n in f}, key=_layer_order)
        stats = [mean_ci(f.get(n) for f in finals) for n in names]
        x = [_layer_order(n)[0] for n in names]
        line = ax_layers.errorbar(x, [s.mean for s in stats], yerr=[np.nan_to_num(s.ci) for s in stats], marker="o",
                                  capsize=3, label=label)
        series = [_diagnostic_series(r, "grad_norm").get("W1") for r in runs]
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
