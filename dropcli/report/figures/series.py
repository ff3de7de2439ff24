"""How the series of a sweep look in every sweep figure (``figures.sweep``, ``figures.axis``):
one colour per keep_prob, one line style per value of the other varying keys, one legend
under the axes, and a title that says what is left out, fixed or clipped.

Matplotlib is imported only when a figure is drawn (see ``dropcli.report.figures.common``).
"""

from __future__ import annotations

import math

from dropcli.report.figures.common import keep_prob_label
from dropcli.report.groups import KEEP, SweepGroups

EXCLUDED_NOTE = "runs not completed are excluded from means and CIs"

LINESTYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))  # ":" marks runs that did not complete


def keep_colours(sweep: SweepGroups) -> dict[float, tuple]:
    """keep_prob -> its colour (viridis, lowest keep_prob darkest), the same in every figure."""
    from matplotlib import colormaps

    keeps = sorted({g.keep_prob for g in sweep.groups if g.keep_prob is not None})
    return {k: colormaps["viridis"](0.85 * i / max(len(keeps) - 1, 1)) for i, k in enumerate(keeps)}


def styles(sweep: SweepGroups) -> dict[str, tuple]:
    """(colour, line style) per setting, by ``g.label(sweep.varying)``, the same in every
    figure of the sweep: one colour per keep_prob when keep_prob varies and one line style
    per value of the other varying keys; else one colour per setting."""
    from matplotlib import colormaps

    others = sweep.series_keys()
    labels = list(dict.fromkeys(g.label(others) for g in sweep.groups))
    colour = keep_colours(sweep)
    out = {}
    for g in sweep.groups:
        j = labels.index(g.label(others))
        if KEEP in sweep.varying:
            out[g.label(sweep.varying)] = (colour.get(g.keep_prob, "gray"), LINESTYLES[j % len(LINESTYLES)])
        else:
            out[g.label(sweep.varying)] = (colormaps["tab10"](j % 10), "-")
    return out


def n_range(ns: list[int]) -> str:
    """``N=3``, or ``N=2-3`` when the points of a series have different numbers of seeds."""
    return f"N={ns[0]}" if len(ns) == 1 else f"N={ns[0]}-{ns[-1]}"


def axis_name(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def top_inches(title: str, x_key: str) -> float:
    """Inches above the axes: the title's lines, the axes' title, the drop-rate axis."""
    return 0.45 + 0.2 * (title.count("\n") + 1) + (0.35 if x_key == KEEP else 0.0)


def caption(head: str, sweep: SweepGroups, x_key: str, clipped: bool, limits: str, width: int,
            what: str = "CI bars") -> str:
    """The figure's title: ``head``, then what is excluded, what is fixed and whether
    ``what`` was clipped to ``limits``, wrapped to ``width`` characters."""
    import textwrap

    parts = [EXCLUDED_NOTE]
    keeps = {g.keep_prob for g in sweep.groups}
    if x_key != KEEP and len(keeps) == 1:
        parts.append(f"{keep_prob_label(keeps.pop())} in every run")
    if clipped:
        parts.append(f"{what} clipped to the possible range {limits}")
    return head + "\n" + textwrap.fill("; ".join(parts), width)


def legend_height(sweep: SweepGroups, x_key: str | None = KEEP) -> float:
    """Inches below the axes for a two-column legend of the series."""
    return 0.2 * math.ceil(len(sweep.by(sweep.series_keys(x_key))) / 2) + 0.1


def legend_below(fig, ax, sweep: SweepGroups, x_key, *, left, right, top_in, bottom_in, **adjust) -> None:
    """One legend for the whole figure, under the axes, so it never hides a point."""
    height = fig.get_figheight()
    fig.subplots_adjust(left=left, right=right, top=1 - top_in / height,
                        bottom=(bottom_in + legend_height(sweep, x_key)) / height, **adjust)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
