"""vs_<axis>.png: what a swept number other than keep_prob does (data.num_train,
model.reg, train.learning_rate, ...), for each keep_prob.

The data-size figure of Srivastava et al. 2014 (figure 10), for any numeric axis: final
validation accuracy (left) and the train - val gap (right) against the axis's values, one
line per keep_prob (and per value of the other varying keys), the mean over completed
seeds with a 95% t-band and each seed as a dot; a log x axis when the values span a factor
of 10 or more. Drawn from ``SweepGroups`` (``dropcli.report.groups``) only, like every
sweep figure; colours and line styles are those of ``figures.series``.
"""

from __future__ import annotations


import numpy as np

from dropcli.report.figures.common import keep_prob_label, new_figure
from dropcli.report.figures.series import (
    LINESTYLES, axis_name, caption, keep_colours, legend_below, legend_height, n_range, top_inches,
)
from dropcli.report.groups import KEEP, Group, SweepGroups, format_value

# (metric of groups.METRICS, panel title, y label, the range its band is clipped to)
PANELS = (("final_val", "final validation accuracy", "validation accuracy (%)", (0, 100)),
          ("gap", "train - val accuracy at the final epoch", "gap (percentage points)", (-100, 100)))


def axis_figure_name(key: str) -> str:
    """``vs_num_train.png`` for ``data.num_train``."""
    return f"vs_{axis_name(key)}.png"


def axis_figures(sweep: SweepGroups) -> list[tuple[str, str]]:
    """(swept key, file name) of every figure ``axis_figure`` draws for this sweep."""
    return [(key, axis_figure_name(key)) for key in sweep.numeric_axes()]


def log_scale(values) -> bool:
    """A log axis when the (positive) values span a factor of 10 or more."""
    values = [v for v in values if v is not None]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def axis_figure(sweep: SweepGroups, key: str, title: str):
    """The figure of the module docstring against the numeric swept ``key``; None if no
    setting has a completed run."""
    if not any(g.included for g in sweep.groups):
        return None
    series = sweep.by(sweep.series_keys(key))
    fig = new_figure(11, 4.4 + legend_height(sweep, key))
    axes = fig.subplots(1, 2)
    colours = keep_colours(sweep)
    others = [k for k in sweep.series_keys(key) if k != KEEP]
    dashes = {label: LINESTYLES[i % len(LINESTYLES)]
              for i, label in enumerate(dict.fromkeys(g.label(others) for g in sweep.groups))}
    clipped = False
    for i, (label, groups) in enumerate(series.items()):
        first = groups[0]
        colour = colours.get(first.keep_prob, "gray") if KEEP in sweep.varying else f"C{i % 10}"
        name = ", ".join(p for p in (keep_prob_label(first.keep_prob), first.label(others)) if p)
        for ax, (metric, _, _, limits) in zip(axes, PANELS):
            clipped |= _line(ax, groups, key, metric, limits, colour, dashes[first.label(others)], name)
    values = sorted({g.value(key) for g in sweep.groups if g.value(key) is not None})
    for ax, (_, head, ylabel, _) in zip(axes, PANELS):
        if log_scale(values):
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(values, [format_value(v) for v in values])
        ax.set(title=head, xlabel=axis_name(key) + (" (log scale)" if log_scale(values) else ""), ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[1].axhline(0, color="gray", lw=0.5)
    text = caption(f"{title}: final validation accuracy and train - val gap vs {axis_name(key)}, per keep_prob "
                   "(mean over seeds, 95% band; dots: seeds)", sweep, key, clipped, "of each panel", width=120,
                   what="bands")
    fig.suptitle(text, fontsize=10)
    legend_below(fig, axes[0], sweep, key, left=0.07, right=0.98, top_in=top_inches(text, key), bottom_in=0.6,
                 wspace=0.22)
    return fig


def _line(ax, groups: list[Group], key: str, metric: str, limits, colour, dash, name: str) -> bool:
    """One series: the mean of ``metric`` in % at each value of ``key``, its 95% band clipped
    to ``limits`` (none with one seed), the seeds as dots. Returns whether it clipped."""
    pts = sorted(((g.value(key), g.stat(metric), g.samples(metric)) for g in groups
                  if g.value(key) is not None and g.stat(metric).n), key=lambda p: p[0])
    if not pts:
        return False
    xs = np.array([x for x, _, _ in pts], dtype=float)
    mean = np.array([100 * s.mean for _, s, _ in pts])
    half = np.nan_to_num([100 * s.ci for _, s, _ in pts])
    ns = sorted({s.n for _, s, _ in pts})
    n_text = n_range(ns)
    ax.plot(xs, mean, color=colour, ls=dash, marker="o", label=f"{name} ({n_text})", zorder=3)
    ax.fill_between(xs, np.clip(mean - half, *limits), np.clip(mean + half, *limits), color=colour, alpha=0.2, lw=0)
    for x, _, seeds in pts:
        ax.scatter(np.full(len(seeds), x), 100 * np.array(seeds), s=12, color=colour, alpha=0.5, lw=0, zorder=2)
    return bool(np.any((mean - half < limits[0]) | (mean + half > limits[1])))
