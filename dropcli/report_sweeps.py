"""What the report of one sweep says: one row per setting with statistics over seeds,
its figures, variants compared and its runs, as blocks of ``dropcli.report_doc``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import plots_run
from .report_doc import Bullets, Heading, Image, Link, Para, Table
from .report_format import counts, drop_rate, existing, num, pct, pm
from .report_runs import run_figures
from .runs import RunRecord
from .stats import mean_ci
from .sweep_groups import METRICS, SweepGroups, format_value, keep_prob_of

SWEEP_FIGURES = (
    ("keep_prob.png", "final and best validation accuracy vs keep_prob"),
    ("val_curves.png", "validation accuracy per epoch, mean over seeds with 95% band"),
    ("gap.png", "train - val accuracy gap at the final epoch vs keep_prob"),
    ("grad_flow.png", "gradient norm per layer at the final epoch, and of the first layer per epoch"),
)
STATS_NOTE = (
    "Accuracies in %. mean ± half-width of the 95% t-interval of the mean over seeds; "
    "N = completed runs (others are counted but excluded). drop rate = 1 - keep_prob."
)


@dataclass
class Sweep:
    """A sweep folder as read: its spec, its runs and, once plotted, their groups."""

    path: Path
    spec: dict
    runs: list[RunRecord]
    groups: SweepGroups | None = None

    @property
    def title(self) -> str:
        return str(self.spec.get("sweep_id") or self.path.name)


def runs_table(runs: list[RunRecord], keys: list[str]) -> Table:
    header = ["run", "status", "keep_prob", "drop rate", *[k.rsplit(".", 1)[-1] for k in keys], "seed",
              "epochs", "final val", "best val", "gap", "figures"]
    rows = []
    for r in runs:
        s = r.summary or {}
        figs = [[" ", Link(p.name, p)] for p, _ in run_figures(r) if p.exists()]
        keep = keep_prob_of(r)
        rows.append([
            Link(r.run_id, r.path / "report.md") if (r.path / "report.md").exists() else r.run_id,
            r.status, num(keep), drop_rate(keep), *[format_value(r.value(k)) for k in keys], num(r.value("seed")),
            f"{r.metrics[-1].get('epoch') if r.metrics else 0}/{num(r.value('train.epochs'))}",
            pct(METRICS["final_val"][1](s)), pct(METRICS["best_val"][1](s)),
            pct(METRICS["gap"][1](s)), [p for f in figs for p in f][1:] or "-",
        ])
    return Table(header, rows)


def _group_table(sweep: Sweep) -> Table:
    g = sweep.groups
    keys = [k for k in g.varying if k != "dropout.keep_prob"]
    header = [k.rsplit(".", 1)[-1] for k in keys] + ["keep_prob", "drop rate", "final val acc", "best val acc",
                                                      "train - val gap", "N", "runs"]
    rows = [
        [format_value(grp.values.get(k)) for k in keys]
        + [num(grp.keep_prob), drop_rate(grp.keep_prob), pm(grp.stat("final_val")), pm(grp.stat("best_val")),
           pm(grp.stat("gap")), str(len(grp.included)), counts(grp.runs)]
        for grp in g.groups
    ]
    return Table(header, rows)


def _variant_blocks(sweep: Sweep, level: int) -> list:
    """Inverted vs vanilla, measured: accuracy per variant, and how far each variant's
    test-time output is from its expected train-time output (0 is what both promise)."""
    if "dropout.variant" not in sweep.groups.varying:
        return []
    rows = []
    for variant in sorted({r.value("dropout.variant") for r in sweep.runs}, key=str):  # a damaged config: None
        runs = [r for r in sweep.runs if r.value("dropout.variant") == variant and r.status == "completed"]
        layers = [x for r in runs for x in plots_run.expectation_layers(r)]
        gaps = [abs(x["test_mean"]["measured"] - x["train_mean"]["predicted"]) / abs(x["train_mean"]["predicted"])
                for x in layers if x.get("train_mean", {}).get("predicted")]
        zs = [abs(x["train_mean"]["z"]) for x in layers if "z" in (x.get("train_mean") or {})]
        final = mean_ci([(r.summary or {}).get("final", {}).get("val_acc") for r in runs if keep_prob_of(r) != 1])
        rows.append([variant, pm(final), str(final.n), str(len(layers)),
                     "-" if not gaps else f"{max(gaps):.1e}", "-" if not zs else f"{max(zs):.2f}"])
    note = ("Runs with dropout (keep_prob < 1) per variant: final validation accuracy (mean ± 95% CI over all "
            "their keep_probs and seeds; see the table above per keep_prob), and over every dropout layer of "
            "those runs the largest relative distance between the test-time output mean and the expected "
            "train-time output mean, and the largest |z| of the measured train-time mean.")
    variants = {r.value("dropout.variant") for r in sweep.runs}
    title = "Inverted vs vanilla" if variants <= {"inverted", "vanilla"} else "Dropout variants compared"
    return [Heading(level, title), Para((note,)),
            Table(["variant", "final val acc (%)", "N", "dropout layers", "max relative distance test vs E[train]",
                   "max abs z, train mean"], rows)]


def sweep_blocks(sweep: Sweep, level: int = 1) -> list:
    """The report of one sweep: its grid, one row per setting, figures, its runs."""
    axes = sweep.spec.get("axes") or {}
    grid = "; ".join(f"{k} = {v}" for k, v in axes.items()) or "no axes"
    blocks = [Heading(level, f"Sweep {sweep.title}"),
              Para((f"{len(sweep.runs)} runs ({counts(sweep.runs)}). Grid: {grid}. "
                    "Seeds are replicates; rows group runs by every other swept value.",)),
              Para((STATS_NOTE,)), _group_table(sweep)]
    failed = [r for r in sweep.runs if r.status not in ("completed", "pending", "running")]
    if failed:
        blocks.append(Bullets([[f"{r.status}: {r.run_id} ({(r.summary or {}).get('reason') or 'no reason recorded'})"]
                               for r in failed]))
    blocks += [Image(p, alt) for name, alt in SWEEP_FIGURES for p in existing([sweep.path / name])]
    blocks += _variant_blocks(sweep, level + 1)
    keys = [k for k in sweep.groups.varying if k != "dropout.keep_prob"]
    return blocks + [Heading(level + 1, "Runs"), runs_table(sweep.runs, keys)]
