"""What the report of one sweep says: its verdict (``dropcli.report.verdict``), one row per
setting with statistics over seeds, its figures, dropout and variants compared seed by
seed, and its runs, as blocks of ``dropcli.report.doc``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dropcli.report.figures.axis import axis_figures
from dropcli.report.figures.expectation import expectation_layers
from dropcli.report.doc import Bullets, Heading, Image, Link, Para, Table
from dropcli.report.format import (
    counts, drop_rate, epochs_cell, examples_cell, existing, num, patience_text, pct, plural, pm,
)
from dropcli.report.render import run_figures
from dropcli.report.run_page import epochs_completed, run_page
from dropcli.store.early_stop import patience_savings
from dropcli.store.layout import REPORT_MD
from dropcli.store.runs import RunRecord
from dropcli.evidence.stats import mean_ci
from dropcli.report.groups import METRICS, Group, SweepGroups, format_value, keep_prob_of, paired
from dropcli.report.verdict import RULES, verdict

SWEEP_FIGURES = (  # "{x}": the axis the figure is drawn against (SweepGroups.x_key)
    ("keep_prob.png", "final and best validation accuracy vs {x}"),
    ("val_curves.png", "validation accuracy per epoch, mean over seeds with 95% band"),
    ("gap.png", "train - val accuracy gap at the final epoch vs {x}"),
    ("grad_flow.png", "gradient norm per layer at the final epoch, and of the first layer per epoch"),
)
STATS_NOTE = (
    "Accuracies in %. mean ± half-width of the 95% t-interval of the mean over seeds; "
    "N = completed runs (others are counted but excluded). drop rate = 1 - keep_prob."
)
TEST_NOTE = (
    "test acc: accuracy on the test split of the parameters from the epoch with the best validation "
    "accuracy. Best val acc is optimistic, because that epoch was chosen on it; test acc is not."
)
PAIRED_NOTE = (
    "Runs with the same seed share their initial weights and batch order whatever {what} is, so each "
    "run is compared with its own twin: Δ = accuracy of the run minus accuracy of the {base} run with "
    "the same seed and the same other settings, in percentage points; mean ± half-width of the 95% "
    "t-interval over the N pairs. An interval that does not contain 0 is a difference the seeds agree on; "
    "± 0.00 means every pair gave the same Δ, which with few seeds is no proof that it never varies."
)


def test_acc(summary: dict):
    """Test accuracy of the best-val-epoch parameters, from summary.json."""
    return (summary.get("test") or {}).get("acc")


# What the paired comparisons compare: (column, read from summary.json).
PAIRED_METRICS = (("Δ final val acc", METRICS["final_val"][1]), ("Δ test acc", test_acc))


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
              "train n", "val n", "epochs", "final val", "best val", "test acc", "gap", "figures"]
    rows = []
    for r in runs:
        s = r.summary or {}
        figs = [[" ", Link(p.stem, p)] for p in run_figures(r) if p.exists()]
        keep = keep_prob_of(r)
        done, total = epochs_completed(r)
        rows.append([
            Link(r.run_id, r.path / REPORT_MD, run_page(r)) if (r.path / REPORT_MD).exists() else r.run_id,
            r.status, num(keep), drop_rate(keep), *[format_value(r.value(k)) for k in keys], num(r.value("seed")),
            examples_cell(s.get("examples"), "train"), examples_cell(s.get("examples"), "val"),
            epochs_cell(done, num(total), s),
            pct(METRICS["final_val"][1](s)), pct(METRICS["best_val"][1](s)), pct(test_acc(s)),
            pct(METRICS["gap"][1](s)), [p for f in figs for p in f][1:] or "-",
        ])
    return Table(header, rows)


def _test_stat(grp: Group) -> str:
    stat = mean_ci(test_acc(r.summary or {}) for r in grp.included)
    return pm(stat) + ("" if stat.n == len(grp.included) else f" (N={stat.n})")


def _group_table(sweep: Sweep) -> Table:
    g = sweep.groups
    keys = [k for k in g.varying if k != "dropout.keep_prob"]
    header = [k.rsplit(".", 1)[-1] for k in keys] + ["keep_prob", "drop rate", "final val acc", "best val acc",
                                                      "test acc", "train - val gap", "N", "runs"]
    rows = [
        [format_value(grp.values.get(k)) for k in keys]
        + [num(grp.keep_prob), drop_rate(grp.keep_prob), pm(grp.stat("final_val")), pm(grp.stat("best_val")),
           _test_stat(grp), pm(grp.stat("gap")), str(len(grp.included)), counts(grp.runs)]
        for grp in g.groups
    ]
    return Table(header, rows)


# --- paired comparisons ------------------------------------------------------------------


def _paired_cells(grp: Group, base: Group | None, missing: str) -> list[str]:
    if base is None:
        return [missing] * len(PAIRED_METRICS) + ["0"]
    stats = [paired(grp.included, base.included, read) for _, read in PAIRED_METRICS]
    return [pm(s, signed=True) for s in stats] + [str(max(s.n for s in stats))]


def _dropout_blocks(sweep: Sweep, level: int) -> list:
    """Did dropout help? Each setting with keep_prob < 1 against the keep_prob = 1 runs
    with the same seeds and the same other settings."""
    g = sweep.groups
    with_dropout = [grp for grp in g.groups if grp.keep_prob is not None and grp.keep_prob != 1]
    if not with_dropout:  # nothing with dropout to compare
        return []
    if not any(grp.keep_prob == 1 for grp in g.groups):  # the verdict says what cannot be said
        return []
    head = Heading(level, "Did dropout help? Paired by seed against keep_prob = 1")
    keys = [k for k in g.varying if k != "dropout.keep_prob"]
    rows = [[format_value(grp.values.get(k)) for k in keys] + [num(grp.keep_prob), drop_rate(grp.keep_prob)]
            + _paired_cells(grp, g.baseline(grp), "no keep_prob = 1 run with these settings")
            for grp in with_dropout]
    header = [k.rsplit(".", 1)[-1] for k in keys] + ["keep_prob", "drop rate", *[c for c, _ in PAIRED_METRICS],
                                                      "N pairs"]
    return [head, Para((PAIRED_NOTE.format(what="keep_prob", base="keep_prob = 1"),)), Table(header, rows)]


def _variant_blocks(sweep: Sweep, level: int) -> list:
    """Inverted vs vanilla, measured: each variant against the reference variant per
    keep_prob, paired by seed, and how far each variant's test-time output is from its
    expected train-time output (0 is what every variant promises)."""
    g = sweep.groups
    if "dropout.variant" not in g.varying:
        return []
    variants = sorted({grp.values.get("dropout.variant") for grp in g.groups}, key=str)  # a damaged config: None
    ref = "inverted" if "inverted" in variants else variants[0]
    keys = [k for k in g.varying if k not in ("dropout.variant", "dropout.keep_prob")]
    rows = []
    for grp in g.groups:
        variant = grp.values.get("dropout.variant")
        if variant == ref or grp.keep_prob == 1:  # at keep_prob 1 every variant is the same network
            continue
        base = g.twin(grp, "dropout.variant", lambda b: b.values.get("dropout.variant") == ref)
        rows.append([f"{variant} - {ref}", *[format_value(grp.values.get(k)) for k in keys], num(grp.keep_prob),
                     drop_rate(grp.keep_prob), *_paired_cells(grp, base, f"no {ref} run with these settings")])
    title = "Inverted vs vanilla" if set(variants) <= {"inverted", "vanilla"} else "Dropout variants compared"
    blocks = [Heading(level, title)]
    if rows:
        blocks += [Para((PAIRED_NOTE.format(what="the variant", base=ref)
                         + " Runs with keep_prob = 1 are left out: every variant is then the same network.",)),
                   Table(["variants", *[k.rsplit(".", 1)[-1] for k in keys], "keep_prob", "drop rate",
                          *[c for c, _ in PAIRED_METRICS], "N pairs"], rows)]
    checks = []
    for variant in variants:
        runs = [r for r in sweep.runs if r.value("dropout.variant") == variant and r.status == "completed"]
        layers = [x for r in runs for x in expectation_layers(r)]
        gaps = [abs(x["test_mean"]["measured"] - x["train_mean"]["predicted"]) / abs(x["train_mean"]["predicted"])
                for x in layers if x.get("train_mean", {}).get("predicted")]
        zs = [abs(x["train_mean"]["z"]) for x in layers if "z" in (x.get("train_mean") or {})]
        checks.append([str(variant), str(len(runs)), str(len(layers)),
                       "-" if not gaps else f"{max(gaps):.1e}", "-" if not zs else f"{max(zs):.2f}"])
    note = ("Per variant, over every dropout layer of its completed runs: the largest relative distance between "
            "the test-time output mean and the expected train-time output mean, and the largest |z| of the "
            "measured train-time mean.")
    return blocks + [Para((note,)), Table(["variant", "runs", "dropout layers", "max relative distance test vs "
                                           "E[train]", "max abs z, train mean"], checks)]


def sweep_blocks(sweep: Sweep, level: int = 1) -> list:
    """The report of one sweep: its grid, its verdict, one row per setting, figures,
    paired comparisons, its runs."""
    axes = sweep.spec.get("axes") or {}
    grid = "; ".join(f"{k} = {v}" for k, v in axes.items()) or "no axes"
    blocks = [Heading(level, f"Sweep {sweep.title}"),
              Para((f"{plural(len(sweep.runs), 'run')} ({counts(sweep.runs)}). Grid: {grid}. "
                    "Seeds are replicates; rows group runs by every other swept value.",)),
              Heading(level + 1, "Verdict"), Bullets(verdict(sweep.groups))]
    if (saved := patience_savings([r.summary for r in sweep.runs if r.summary])) is not None:
        blocks.insert(2, Para((patience_text(saved) + ".",)))  # under the grid: what the runs cost
    if {g.keep_prob == 1 for g in sweep.groups.groups} == {True, False}:  # something was compared
        blocks.append(Para((RULES,)))
    blocks += [Heading(level + 1, "Settings"), Para((STATS_NOTE,)), _group_table(sweep), Para((TEST_NOTE,))]
    failed = [r for r in sweep.runs if r.status not in ("completed", "pending", "running")]
    if failed:
        blocks.append(Bullets([[f"{r.status}: {r.run_id} ({(r.summary or {}).get('reason') or 'no reason recorded'})"]
                               for r in failed]))
    blocks += [Image(p, f"final validation accuracy and train - val gap vs {key.rsplit('.', 1)[-1]}, one line per "
                        "keep_prob, 95% band over seeds") for key, name in axis_figures(sweep.groups)
               for p in existing([sweep.path / name])]
    x = (sweep.groups.x_key() if sweep.groups else None) or "keep_prob"
    blocks += [Image(p, alt.format(x=x.rsplit(".", 1)[-1])) for name, alt in SWEEP_FIGURES
               for p in existing([sweep.path / name])]
    blocks += _dropout_blocks(sweep, level + 1)
    blocks += _variant_blocks(sweep, level + 1)
    keys = [k for k in sweep.groups.varying if k != "dropout.keep_prob"]
    return blocks + [Heading(level + 1, "Runs"), runs_table(sweep.runs, keys)]
