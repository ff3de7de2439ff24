"""diagnostics.png: what a run recorded per layer and epoch (a ``RunFigure``, see
``figures.template``), from the ``diagnostics`` of its epoch records
(``dropcli.train.diagnostics``): the weight-gradient norm (log scale), the mean and std of
each hidden layer's output, the fraction of dead relu units (relu nets) and the largest
incoming-weight norm (with the max-norm bound, if set).

Layers are coloured by number from the input (dark) to the output (light), h_i like W_i,
in every panel; one legend under the panels names them. Runs drawn from one template
share each panel's limits.
"""

from __future__ import annotations

import math

import numpy as np

from dropcli.report.figures.common import diagnostic_series, diagnostics_of, keep_prob_label, layer_order, new_figure
from dropcli.report.figures.curves import status_note
from dropcli.report.figures.template import RunFigure, Template, set_limits, span, title
from dropcli.report.groups import keep_prob_of
from dropcli.store.runs import RunRecord

PANELS = (  # (diagnostic, title, log scale)
    ("grad_norm", "gradient norm ||dL/dW|| (mean over the epoch's steps)", True),
    ("act_mean", "mean of the layer's output (eval subsample)", False),
    ("act_std", "std of the layer's output (eval subsample)", False),
    ("dead_fraction", "fraction of dead relu units (never active on the eval subsample)", False),
    ("max_col_norm", "largest incoming-weight norm of a unit", False),
)


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def signature(run: RunRecord) -> tuple:
    """((diagnostic, its layer names) per panel drawn, max_norm or None)."""
    records = diagnostics_of(run)
    panels = tuple((key, tuple(diagnostic_series(records, key))) for key, _, _ in PANELS)
    return tuple((key, names) for key, names in panels if names), _number(run.value("model.max_norm"))


def limits(runs: list[RunRecord]) -> tuple:
    """(x limits, per panel (scale, y limits)) over the runs' epochs and values."""
    series = [[diagnostic_series(diagnostics_of(r), key) for r in runs] for key, _, _ in PANELS]
    epochs = [e for panel in series for by_name in panel for e, _ in by_name.values()]
    out = []
    for (key, _, log), panel in zip(PANELS, series):
        values = np.concatenate([v for by_name in panel for _, v in by_name.values()] or [np.array([])])
        if key == "dead_fraction":
            out.append(("linear", (-0.02, 1.02)))
            continue
        if key == "max_col_norm":
            values = np.append(values, [m for r in runs if (m := _number(r.value("model.max_norm"))) is not None])
        log = log and bool(np.any(np.isfinite(values) & (values > 0)))  # values <= 0 are left out then
        out.append(("log" if log else "linear", span(values, log=log)))
    return span(np.concatenate(epochs or [np.array([])])), tuple(out)


def template(sig: tuple, lims: tuple) -> Template:
    """diagnostics.png for runs of signature ``sig``, scaled to ``lims``."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    panels, max_norm = sig
    x, scales = lims
    scale_of = {key: scales[i] for i, (key, _, _) in enumerate(PANELS)}
    cols = 3 if len(panels) > 4 else 2
    rows = math.ceil(len(panels) / cols)
    names = sorted({n for _, ns in panels for n in ns}, key=layer_order)
    spare = len(panels) < rows * cols  # an empty panel's place holds the legend, else it goes below
    legend_in = 0.0 if spare else 0.35 + 0.2 * math.ceil((len({layer_order(n)[0] for n in names}) + 1) / 6)
    height = 3.3 * rows + 0.9 + legend_in
    fig = new_figure(5.0 * cols, height)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=(0.45 + legend_in) / height, top=1 - 0.9 / height,
                        wspace=0.25, hspace=0.4)
    head, setting = title(fig, 1)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    # Layer i's colour is the same in every panel: W_i and h_i = act(h_{i-1} W_i) share it.
    deepest = max([layer_order(n)[0] for n in names] or [1])

    def colour(name):
        return colormaps["viridis"](0.85 * (layer_order(name)[0] - 1) / max(deepest - 1, 1))

    lines = []  # (line, diagnostic, layer name)
    for ax, (key, layer_names) in zip(axes, panels):
        for name in layer_names:
            lines.append((ax.plot([], [], marker=".", ms=3, color=colour(name), label=name)[0], key, name))
        if key == "max_col_norm" and max_norm is not None:
            ax.axhline(max_norm, color="firebrick", ls="--", lw=1)
        scale, y = scale_of[key]
        set_limits(ax, x, y, scale)
        if key == "dead_fraction":
            ax.set_ylabel("fraction of the layer's units (0-1)", fontsize=8)
        ax.set_title(next(t for k, t, _ in PANELS if k == key), fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    by_layer = {}
    for n in names:
        by_layer.setdefault(layer_order(n)[0], []).append(n)
    handles = [Line2D([], [], marker=".", color=colour(ns[0]), label=" / ".join(ns)) for ns in by_layer.values()]
    if max_norm is not None:
        handles.append(Line2D([], [], color="firebrick", ls="--", lw=1, label=f"max_norm {max_norm:g}"))
    where = dict(loc="center", bbox_to_anchor=axes[-1].get_position().bounds, ncol=1) if spare else \
        dict(loc="lower center", ncol=min(len(handles), 6))
    fig.legend(handles=handles, fontsize=9, frameon=False, title="layer (1 = input side)\nW_i: weights into layer i,"
               "\nh_i: its output", title_fontsize=9, **where)

    def update(run: RunRecord) -> None:
        records = diagnostics_of(run)
        bound = run.value("model.max_norm")
        head.set_text(f"{run.run_id}: {status_note(run)}")
        head.set_color("black" if run.status == "completed" else "firebrick")
        setting.set_text(
            f"\ntraining diagnostics: {keep_prob_label(keep_prob_of(run))}, variant {run.value('dropout.variant', '?')}, "
            f"{run.value('model.activation', '?')}, normalization {run.value('model.normalization', '?')}, "
            f"max_norm {bound if bound is not None else 'off'}")
        series = {key: diagnostic_series(records, key) for key, _ in panels}
        for line, key, name in lines:
            line.set_data(*series[key].get(name, ([], [])))

    return Template(fig, [head, *(line for line, _, _ in lines)], update, [setting])


DIAGNOSTICS = RunFigure("diagnostics.png", lambda run: bool(diagnostics_of(run)), signature, limits, template)
