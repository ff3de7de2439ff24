"""expectation.png: the expectation check of a run's dropout layers (a ``RunFigure``, see
``figures.template``), from its expectation.json.

Top, per layer: bars of a, the mean entering the layer (for DropConnect, the mean of its
output with the mean weights, x W + b), the measured train-time output mean over mask
draws and the test-time output mean, each labelled with its ratio to a; black ticks mark
the variant's predictions (inverted: train = test = a; vanilla: train = test = keep_prob
a) and a dotted line keep_prob a, what the mask alone leaves. The title states each
variant's rule from the file's train_scale / test_scale. Bottom: z = (measured -
predicted) / se of every quantity the variant predicts, inside +-z_tol to pass. Runs drawn
from one template (the same layers, variants and keep_probs) share both panels' limits.
"""

from __future__ import annotations

import math

import numpy as np

from dropcli.report.figures.common import new_figure
from dropcli.report.figures.template import RunFigure, Template, set_limits, title
from dropcli.store.runs import RunRecord

BAR_SERIES = (  # (what, colour) of the top panel's bars: a, the train-time and the test-time mean
    ("a: mean entering the layer", "silver"),
    ("train-time output mean (measured, over mask draws)", "tab:blue"),
    ("test-time output mean (measured)", "tab:orange"),
)
RESIDUALS = (  # (quantity, legend, marker) of the bottom panel
    ("train_mean", "train-time mean", "o"), ("test_mean", "test-time mean", "s"),
    ("dropped_fraction", "dropped fraction", "^"), ("train_var", "train-time variance", "D"),
)
WIDTH = 0.26  # of a bar; three per layer


def expectation_layers(run: RunRecord) -> list[dict]:
    """The dropout layers of the run's expectation.json ([] if none or no file)."""
    layers = (run.expectation or {}).get("layers")
    return [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []


def _applies(q) -> bool:
    """Whether an expectation quantity was predicted by the layer's variant (and measured)."""
    return isinstance(q, dict) and q.get("applicable", True) is not False


def _num(q, key) -> float:
    v = q.get(key) if isinstance(q, dict) else None
    return float(v) if isinstance(v, (int, float)) else math.nan


def _z_tol(run: RunRecord) -> float:
    """The |z| a check passes within (4 if the file does not say)."""
    z = _num(run.expectation, "z_tol")
    return z if math.isfinite(z) and z > 0 else 4.0


def _bars(layer: dict) -> tuple[float, float, float]:
    """a (the mean entering a unit-dropout layer, or a DropConnect layer's output with its
    mean weights), the measured train-time and test-time output means."""
    a = _num(layer.get("test_mean"), "predicted") if layer.get("variant") == "dropconnect" else _num(layer, "input_mean")
    return a, _num(layer.get("train_mean"), "measured"), _num(layer.get("test_mean"), "measured")


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


def signature(run: RunRecord) -> tuple:
    """Per layer (its name, DropConnect or not, which residuals it has, whether a mask
    drops units), and z_tol: what is drawn but the numbers and the texts naming variants
    and keep_probs."""
    layers = expectation_layers(run)
    return (tuple((str(x.get("layer", "?")), x.get("variant") == "dropconnect",
                   tuple(_applies(x.get(q)) for q, _, _ in RESIDUALS), _applies(x.get("dropped_fraction")))
                  for x in layers), _z_tol(run))


def limits(runs: list[RunRecord]) -> tuple:
    """(bars panel y limits, z panel half-height) over the runs: room for the ratio labels
    on either side of 0; z to 1.5 z_tol, or past the largest |z|."""
    values = np.array([v for r in runs for x in expectation_layers(r) for v in _bars(x)], dtype=float)
    values = values[np.isfinite(values)]
    low, high = float(np.min(values, initial=0.0)), float(np.max(values, initial=0.0))
    pad = 0.15 * (high - low or 1.0)
    zs = [abs(_num(x.get(q), "z")) for r in runs for x in expectation_layers(r) for q, _, _ in RESIDUALS
          if _applies(x.get(q))]
    z_tol = max(_z_tol(r) for r in runs)
    return (low - pad * (low < 0), high + pad * (high > 0)), max([1.5 * z_tol] + [1.15 * z for z in zs if math.isfinite(z)])


def template(sig: tuple, lims: tuple) -> Template:
    """expectation.png for runs of signature ``sig``, scaled to ``lims``."""
    layers, z_tol = sig
    (low, high), top = lims
    fig = new_figure(max(8.0, 2.3 * len(layers) + 3.0), 8.2)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.8, bottom=0.06, hspace=0.62)
    ax, ax_z = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2.3, 1]})
    head, rules = title(fig, 2)
    x = np.arange(len(layers))
    update_bars = _mean_bars(ax, x, layers)
    set_limits(ax, (-0.6, len(layers) - 0.4), (low, high))
    ax.set_xticks(x, [""] * len(x))
    ticks = [ax.text(p, -0.03, "", transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8) for p in x]
    update_z = _z_panel(ax_z, x, layers, z_tol, top)
    set_limits(ax_z, (-0.6, len(layers) - 0.4), (-top, top))
    ax_z.set_xticks(x, [name for name, *_ in layers], fontsize=8)

    def update(run: RunRecord) -> None:
        exp, run_layers = run.expectation or {}, expectation_layers(run)
        head.set_text(f"{run.run_id}: expectation check {'PASS' if exp.get('pass') else 'FAIL'}")
        head.set_color("black" if exp.get("pass") else "firebrick")
        rules.set_text("\n" + "\n".join(dict.fromkeys(_rule(x) for x in run_layers))
                       + "\neach rule makes the test-time output equal the expected train-time output "
                       f"({exp.get('split', '?')} split, {exp.get('draws', '?')} mask draws)")
        for text, layer in zip(ticks, run_layers):
            text.set_text(_layer_tick(layer))
        update_bars(run_layers)
        update_z(run_layers, top)

    return Template(fig, [head, *update_bars.artists, *update_z.artists], update, [rules, *ticks])


def _mean_bars(ax, x, layers):
    """The top panel: a, train and test means per layer, the predictions and keep_prob a.
    Returns the function that sets them to a run's layers (its ``artists`` attribute: what
    it changes)."""
    from matplotlib.container import BarContainer

    series, labels = [], []
    for j, (label, color) in enumerate(BAR_SERIES):
        if j == 0 and any(dropconnect for _, dropconnect, *_ in layers):
            label += " (DropConnect: of x W + b, the output with the mean weights)"
        series.append(ax.bar(x + (j - 1) * WIDTH, np.zeros(len(x)), WIDTH * 0.95, color=color, label=label))
        if j:  # each output mean as a multiple of a, and the variant's prediction on it
            labels.append([ax.annotate("", (p, 0), xytext=(0, 4), textcoords="offset points", ha="center",
                                       va="bottom", fontsize=7) for p in x + (j - 1) * WIDTH])
    predicted = [ax.hlines([0] * len(x), x + (j - 1.5) * WIDTH, x + (j - 0.5) * WIDTH, color="black", lw=2,
                           label="predicted by the variant" if j == 1 else None, zorder=3, gid="predicted")
                 for j in (1, 2)]
    masked = [i for i, (*_, drops) in enumerate(layers) if drops]  # Bernoulli unit masks: what dropping alone leaves
    mask_line = ax.hlines([0] * len(masked), x[masked] - 1.6 * WIDTH, x[masked] + 1.6 * WIDTH, color="black",
                          ls=(0, (2, 2)), lw=1.2, label="keep_prob x a: the mask alone, before any scaling",
                          zorder=3) if masked else None
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_ylabel("mean activation")
    ax.grid(axis="y", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: not isinstance(handles[i], BarContainer))  # bars first
    ax.legend([handles[i] for i in order], [names[i] for i in order], fontsize=7, ncol=2, loc="lower left",
              bbox_to_anchor=(0, 1.01), frameon=False)

    def update(run_layers: list[dict]) -> None:
        values = np.array([_bars(layer) for layer in run_layers], dtype=float).reshape(len(x), 3)
        a = values[:, 0]
        for j, bars in enumerate(series):
            for rect, v in zip(bars, values[:, j]):
                rect.set_height(v)
        for j, texts in enumerate(labels, 1):
            for text, v, r, p in zip(texts, values[:, j], a, x + (j - 1) * WIDTH):
                ratio = v / r if r and np.isfinite(v / r) else math.nan
                text.set_text(f"= {ratio:.2f} a" if math.isfinite(ratio) else "")
                text.xy = (p, v if math.isfinite(v) else 0.0)
                below = math.isfinite(v) and v < 0
                text.set_position((0, -4 if below else 4))
                text.set_va("top" if below else "bottom")
        for j, lines in enumerate(predicted, 1):
            pred = [_num(layer.get(("train_mean", "test_mean")[j - 1]), "predicted") for layer in run_layers]
            lines.set_segments([[(p - WIDTH / 2, y), (p + WIDTH / 2, y)] for p, y in zip(x + (j - 1) * WIDTH, pred)])
        if mask_line is not None:
            k = np.array([_num(run_layers[i], "keep_prob") for i in masked])
            mask_line.set_segments([[(x[i] - 1.6 * WIDTH, y), (x[i] + 1.6 * WIDTH, y)] for i, y in zip(masked, k * a[masked])])

    update.artists = [*(rect for bars in series for rect in bars), *(t for texts in labels for t in texts), *predicted,
                      *([mask_line] if mask_line is not None else [])]
    return update


def _z_panel(ax, x, layers, z_tol, top):
    """The bottom panel: z of each predicted quantity, dodged per layer; green passes.
    Returns the function that sets it to a run's layers (``artists``: what it changes)."""
    from matplotlib.lines import Line2D

    ax.axhspan(-z_tol, z_tol, color="seagreen", alpha=0.1, lw=0)
    ax.axhline(0, color="gray", lw=0.5)
    handles = [Line2D([], [], color="seagreen", alpha=0.3, lw=6, label=f"pass: |z| <= {z_tol:g}")]
    points = []  # (collection, quantity, the layers it has a point for)
    for j, (q, label, marker) in enumerate(RESIDUALS):
        shown = [i for i, (_, _, applies, _) in enumerate(layers) if applies[j]]
        if not shown:
            continue
        pos = np.array([x[i] + (j - 1.5) * 0.14 for i in shown])
        points.append((ax.scatter(pos, np.zeros(len(shown)), marker=marker, c=["seagreen"] * len(shown), s=30,
                                  zorder=3), q, shown, pos))
        handles.append(Line2D([], [], marker=marker, color="gray", ls="none", label=label))
    ax.set_ylabel("z = (measured -\npredicted) / se", fontsize=8)
    ax.set_title("residual check: every quantity the variant predicts (red: outside the band, fails)", fontsize=9,
                 pad=18)
    ax.legend(handles=handles, fontsize=7, ncol=len(handles), loc="lower left", bbox_to_anchor=(0, 1.0),
              frameon=False)
    ax.grid(axis="y", alpha=0.3)

    def update(run_layers: list[dict], top: float) -> None:
        for collection, q, shown, pos in points:
            checks = [run_layers[i].get(q) for i in shown]
            z = np.array([_num(c, "z") for c in checks])
            collection.set_offsets(np.column_stack([pos, np.clip(np.nan_to_num(z, nan=0.0), -top, top)]))
            collection.set_facecolor(["seagreen" if isinstance(c, dict) and c.get("pass") else "firebrick"
                                      for c in checks])

    update.artists = [c for c, *_ in points]
    return update


EXPECTATION = RunFigure("expectation.png", lambda run: bool(expectation_layers(run)), signature, limits, template)
