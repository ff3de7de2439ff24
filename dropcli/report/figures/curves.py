"""curves.png: a run's accuracy and loss per epoch (a ``RunFigure``, see ``figures.template``).

Left, train and val accuracy (eval mode) per epoch; right, train loss (train-mode
minibatch mean over the epoch, with dropout on), train loss in eval mode and val loss.
The title gives status, keep_prob, drop rate, variant and normalization; a run that did
not complete is labelled with its status in red, a diverged one marked where it diverged.
The legends sit under the axes, so no run's curve hides under one. Runs drawn from one
template (the seeds of one setting) share their axes' limits.
"""

from __future__ import annotations

import numpy as np

from dropcli.report.figures.common import keep_prob_label, metric_column, new_figure
from dropcli.report.figures.template import RunFigure, Template, columns, set_limits, span, title
from dropcli.report.groups import keep_prob_of
from dropcli.store.runs import RunRecord

ACCURACY = (("train_acc", "train (eval mode)", {"marker": "."}), ("val_acc", "val", {"marker": "."}))
LOSS = (("train_loss", "train (train-mode minibatch mean)", {"marker": "."}),
        ("train_eval_loss", "train (eval mode)", {"ls": "--"}), ("val_loss", "val", {"marker": "."}))


def status_note(run: RunRecord) -> str:
    """``completed``, ``completed (stopped early, epoch 17 of 50)`` or e.g. ``DIVERGED (4/8 epochs)``."""
    epochs = run.metrics[-1].get("epoch") if run.metrics else 0
    if run.status == "completed":
        early = (run.summary or {}).get("stopped_early") is True
        return "completed" + (f" (stopped early, epoch {epochs} of {run.value('train.epochs', '?')})" if early else "")
    return f"{run.status.upper()} ({epochs}/{run.value('train.epochs', '?')} epochs)"


def signature(run: RunRecord) -> tuple:
    """(marks divergence, has epochs, epochs configured when it has none)."""
    if not run.metrics:
        return (False, False, run.value("train.epochs"))
    return (run.status == "diverged", True, None)


def limits(runs: list[RunRecord]) -> tuple:
    """(x, accuracy, loss scale, loss) limits over ``runs``; the loss axis is linear from 0,
    or logarithmic when the losses span more than a factor of 100 (a diverging run's, or
    an overfitting run's train loss against another's)."""
    losses = columns(runs, [k for k, _, _ in LOSS])
    losses = losses[np.isfinite(losses) & (losses > 0)]
    if len(losses) and losses.max() > 100 * losses.min():
        loss_scale, loss = "log", span(losses, log=True)
    else:
        loss_scale, loss = "linear", (0.0, 1.05 * float(losses.max()) if len(losses) else 1.0)
    return (span(columns(runs, ["epoch"])), span(columns(runs, [k for k, _, _ in ACCURACY], 100.0)), loss_scale, loss)


def template(sig: tuple, lims: tuple) -> Template:
    """curves.png for runs of signature ``sig``, scaled to ``lims``."""
    from matplotlib.ticker import MaxNLocator

    diverged, has_epochs, configured = sig
    x, acc, loss_scale, loss = lims
    fig = new_figure(9, 3.9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.23, top=0.79, wspace=0.22)
    ax_acc, ax_loss = fig.subplots(1, 2)
    head, setting = title(fig, 1)
    lines = {key: ax_acc.plot([], [], label=label, **style)[0] for key, label, style in ACCURACY}
    lines.update({key: ax_loss.plot([], [], label=label, **style)[0] for key, label, style in LOSS})
    marks = [ax.axvline(0, color="firebrick", ls=":", label=label)  # in one legend: the other has no room
             for ax, label in ((ax_acc, "diverged after this epoch"), (ax_loss, None))] if diverged else []
    if not has_epochs:
        x, acc = (0, max(configured if isinstance(configured, int) else 1, 1)), (0, 100)
    set_limits(ax_acc, x, acc)
    set_limits(ax_loss, x, loss, loss_scale)
    for ax, name, ylabel in ((ax_acc, "accuracy", "accuracy (%)"), (ax_loss, "loss", "cross-entropy loss")):
        ax.set(title=name, xlabel="epoch", ylabel=ylabel)
        if not has_epochs:
            ax.text(0.5, 0.5, "no epochs recorded yet", ha="center", va="center", transform=ax.transAxes)
        handles = ax.get_legend_handles_labels()[0]
        handles = handles[::2] + handles[1::2]  # the legend fills by columns: entries 1 and 2 on its first row
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    def update(run: RunRecord) -> None:
        m = run.metrics
        epochs = metric_column(m, "epoch")
        head.set_text(f"{run.run_id}: {status_note(run)}")
        head.set_color("black" if run.status == "completed" else "firebrick")
        setting.set_text(f"\n{keep_prob_label(keep_prob_of(run))}, variant {run.value('dropout.variant', '?')}, "
                         f"normalization {run.value('model.normalization', '?')}")
        for key, line in lines.items():
            line.set_data(epochs, metric_column(m, key) * (100 if key.endswith("_acc") else 1))
        for mark in marks:
            mark.set_xdata([epochs[-1]] * 2 if len(epochs) else [np.nan] * 2)

    return Template(fig, [head, *lines.values(), *marks], update, [setting])


CURVES = RunFigure("curves.png", lambda run: True, signature, limits, template)
