"""`dropcli plot`: figures and reports over a runs store, read only from its files.

``plot_all(runs_dir)`` writes, atomically and relative-linked so the folder can be moved
or opened from disk:

    <run>/curves.png, expectation.png, report.md        every run (in sweeps too)
          diagnostics.png                               runs that recorded diagnostics
    <sweep>/val_curves.png, keep_prob.png, gap.png,     every sweep
            grad_flow.png (with diagnostics), report.md
    report.md, report.html                              RUNS_DIR: index over everything

Reports are built once as a small document (headings, paragraphs, tables, images, links
to absolute paths) and rendered twice, to Markdown and to self-contained HTML (inline CSS,
no scripts, no network); links are made relative to the folder of the file written.
Figures come from ``dropcli.plots_run`` and ``dropcli.plots_sweep``; runs are grouped into
replicates by ``dropcli.sweep_groups``, and statistics over seeds (mean, 95% t-interval)
come from ``dropcli.stats``.
"""

from __future__ import annotations

import html
import os
from collections import Counter, namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from . import figures, plots_run, sweep_groups
from .errors import RunStoreError
from .figures import diagnostics_of
from .plots_sweep import plot_gap, plot_grad_flow, plot_keep_prob, plot_val_curves
from .runs import (
    FINAL_STATUSES, RunRecord, atomic_write_bytes, find_runs, find_sweeps, is_run_dir, is_sweep_dir, listed_runs,
    read_json, read_run,
)
from .stats import Stat, mean_ci
from .sweep_groups import METRICS, SweepGroups, format_value, group_sweep, keep_prob_of

SWEEP_FIGURES = (
    ("keep_prob.png", "final and best validation accuracy vs keep_prob"),
    ("val_curves.png", "validation accuracy per epoch, mean over seeds with 95% band"),
    ("gap.png", "train - val accuracy gap at the final epoch vs keep_prob"),
    ("grad_flow.png", "gradient norm per layer at the final epoch, and of the first layer per epoch"),
)
SWEEP_PLOTS = {"keep_prob.png": plot_keep_prob, "val_curves.png": plot_val_curves,
               "gap.png": plot_gap, "grad_flow.png": plot_grad_flow}
STATS_NOTE = (
    "Accuracies in %. mean ± half-width of the 95% t-interval of the mean over seeds; "
    "N = completed runs (others are counted but excluded). drop rate = 1 - keep_prob."
)


@dataclass
class PlotResult:
    """What ``plot_all`` did."""

    files: list[Path] = field(default_factory=list)  # every file written, in order
    warnings: list[str] = field(default_factory=list)  # one line each
    unchanged: list[Path] = field(default_factory=list)  # run figures already up to date, not redrawn


# --- a tiny document model, rendered to Markdown and HTML ------------------------------


# Blocks of a report. Link and Image targets are absolute paths, made relative on rendering;
# a table cell or paragraph part is a str, a Link, or a list of those.
Link = namedtuple("Link", "text target")
Heading = namedtuple("Heading", "level text")
Para = namedtuple("Para", "parts")
Table = namedtuple("Table", "header rows")
Image = namedtuple("Image", "target alt")
Bullets = namedtuple("Bullets", "items")


def _href(target: Path, base: Path) -> str:
    return quote(Path(os.path.relpath(target, base)).as_posix())


def _parts(cell) -> list:
    return list(cell) if isinstance(cell, (list, tuple)) and not isinstance(cell, Link) else [cell]


def _md_inline(cell, base: Path, table=False) -> str:
    out = "".join(f"[{p.text}]({_href(p.target, base)})" if isinstance(p, Link) else str(p) for p in _parts(cell))
    return out.replace("|", "\\|").replace("\n", " ") if table else out


def to_markdown(blocks: list, base: Path) -> str:
    """Markdown (GitHub flavour) of ``blocks``, links relative to ``base``."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(_md_inline(b.parts, base))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({_href(b.target, base)})")
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {_md_inline(i, base)}" for i in b.items))
        elif isinstance(b, Table):
            lines = [b.header, ["---"] * len(b.header)] + [[_md_inline(c, base, True) for c in r] for r in b.rows]
            out.append("\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines))
    return "\n\n".join(out) + "\n"


def _html_inline(cell, base: Path) -> str:
    return "".join(
        f'<a href="{html.escape(_href(p.target, base))}">{html.escape(p.text)}</a>' if isinstance(p, Link)
        else html.escape(str(p)) for p in _parts(cell)
    )


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}td{text-align:right}td:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}figcaption{color:#666;font-size:85%}
h1,h2,h3{border-bottom:1px solid #eee}"""


def to_html(blocks: list, base: Path, title: str) -> str:
    """A self-contained HTML page of ``blocks``: inline CSS, relative links, no scripts."""
    out = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_html_inline(b.parts, base)}</p>")
        elif isinstance(b, Image):
            src = html.escape(_href(b.target, base))
            out.append(f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(b.alt)}" loading="lazy"></a>'
                       f"<figcaption>{html.escape(b.alt)}</figcaption></figure>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(i, base)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c, base)}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "\n".join(out) + "\n</body></html>\n"


# --- formatting ------------------------------------------------------------------------


def _num(v, digits=4) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-" if v is None else str(v)
    return f"{v:.{digits}g}"


def _pct(v) -> str:
    return f"{100 * v:.2f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def _pm(stat: Stat) -> str:
    """Mean ± CI half-width in %, e.g. ``91.20 ± 1.34``."""
    if not stat.n:
        return "-"
    return f"{100 * stat.mean:.2f} ± " + (f"{100 * stat.ci:.2f}" if stat.n > 1 else "n/a")


def _counts(runs: list[RunRecord]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in runs).items(), key=lambda x: -x[1]))


def _drop(keep) -> str:
    return _num(round(1 - keep, 12)) if isinstance(keep, (int, float)) else "-"


def _existing(paths) -> list[Path]:
    return [p for p in paths if p.exists()]


# --- one run ---------------------------------------------------------------------------


def _run_summary_rows(run: RunRecord) -> list[list]:
    s = run.summary or {}
    final, best, test = s.get("final") or {}, s.get("best") or {}, s.get("test") or {}
    keep = keep_prob_of(run)
    return [
        ["status", run.status + (f" ({s['reason']})" if s.get("reason") else "")],
        ["keep_prob / drop rate", f"{_num(keep)} / {_drop(keep)}"],
        ["input keep_prob", _num(run.value("dropout.input_keep_prob"))],
        ["variant / normalization", f"{run.value('dropout.variant', '-')} / {run.value('model.normalization', '-')}"],
        ["seed", _num(run.value("seed"))],
        ["hidden dims / activation", f"{run.value('model.hidden_dims', '-')} / {run.value('model.activation', '-')}"],
        ["max_norm", _num(run.value("model.max_norm")) if run.value("model.max_norm") is not None else "off"],
        ["optimizer / learning rate / batch", f"{run.value('train.optimizer', '-')} / "
         f"{_num(run.value('train.learning_rate'))} / {_num(run.value('train.batch_size'))}"],
        ["epochs completed", f"{run.metrics[-1].get('epoch') if run.metrics else 0} / {_num(run.value('train.epochs'))}"],
        ["final train / val acc (%)", f"{_pct(final.get('train_acc'))} / {_pct(final.get('val_acc'))}"],
        ["best val acc (%) at epoch", f"{_pct(best.get('val_acc'))} at {_num(best.get('epoch'))}"],
        ["final train loss (train mode) / val loss", f"{_num(final.get('train_loss'))} / {_num(final.get('val_loss'))}"],
        ["test acc (%)", _pct(test.get("acc"))],
        ["wall time (s)", _num(s.get("wall_time"), 3)],
    ]


def _expectation_blocks(run: RunRecord, level: int) -> list:
    exp = run.expectation
    if exp is None:
        return []
    head = [Heading(level, "Expectation check")]
    layers = plots_run.expectation_layers(run)
    if not layers:
        return head + [Para(("no dropout layers (keep_prob = input_keep_prob = 1)",))]
    def q(layer, name, key):  # "n/a" where the layer's variant predicts nothing
        value = layer.get(name)
        return "n/a" if isinstance(value, dict) and value.get("applicable") is False else _num((value or {}).get(key), 6)

    rows = [[
        str(x.get("layer")), str(x.get("variant", "-")), _num(x.get("keep_prob")), _drop(x.get("keep_prob")),
        _num(x.get("input_mean")),
        q(x, "train_mean", "measured"), q(x, "train_mean", "predicted"), _num((x.get("train_mean") or {}).get("z"), 3),
        q(x, "train_var", "measured"), q(x, "train_var", "predicted"),
        q(x, "test_mean", "measured"), q(x, "test_mean", "predicted"),
        q(x, "dropped_fraction", "measured"), q(x, "dropped_fraction", "predicted"),
        "pass" if x.get("pass") else "FAIL",
    ] for x in layers]
    header = ["layer", "variant", "keep_prob", "drop rate", "input mean", "train mean measured", "train mean predicted",
              "z", "train var measured", "train var predicted", "test mean measured", "test mean predicted",
              "dropped fraction", "1 - keep_prob", "pass"]
    note = (f"{exp.get('split', '?')} split, {exp.get('examples', '?')} examples, {exp.get('draws', '?')} mask draws; "
            f"a quantity passes within {_num(exp.get('z_tol'))} standard errors: "
            f"{'PASS' if exp.get('pass') else 'FAIL'}")
    return head + [Para((note,)), Table(header, rows)] + [Image(p, "expectation check") for p in
                                                          _existing([run.path / "expectation.png"])]


def _variance_shift_blocks(run: RunRecord, level: int) -> list:
    rows = (run.expectation or {}).get("variance_shift") or []
    if not rows:
        return []
    table = [[str(r.get("layer")), "yes" if r.get("dropout_before") else "no", _num(r.get("running_var_mean")),
              _num(r.get("actual_var_mean")), _num(r.get("shift"), 3), _num(r.get("shift_max"), 3)] for r in rows]
    note = ("Per batchnorm layer: the running variance it uses at test time vs the variance its input has at "
            "test time on validation data; shift = mean over units of max(ratio, 1/ratio), 1 = none "
            "(Li et al. 2019). Dropout before a batchnorm layer inflates its training variance.")
    return [Heading(level, "Variance shift"), Para((note,)),
            Table(["layer", "dropout before it", "running var (mean)", "test-time var (mean)", "shift", "max shift"],
                  table)]


def _mc_eval_blocks(run: RunRecord, level: int) -> list:
    try:
        mc = read_json(run.path / "mc_eval.json")
    except RunStoreError:
        return []
    if not mc:
        return []
    rows = []
    for split, s in (mc.get("splits") or {}).items():
        for m in s.get("mc") or []:
            ci = "n/a" if m.get("ci95") is None else f"{100 * m['ci95']:.2f}"
            rows.append([split, _num(m.get("T")), f"{_pct(m.get('mean'))} ± {ci}", _pct(s.get("weight_scaling_acc"))])
    note = (f"Monte-Carlo dropout: softmax averaged over T stochastic passes, {mc.get('repeats')} repeats "
            f"(mean ± 95% CI), against deterministic weight scaling (`dropcli eval`).")
    return [Heading(level, "Weight scaling vs Monte-Carlo averaging"), Para((note,)),
            Table(["split", "T", "MC accuracy (%)", "weight scaling (%)"], rows)] + [
        Image(p, "accuracy vs T") for p in _existing([run.path / "mc_eval.png"])]


def run_blocks(run: RunRecord, level: int = 1) -> list:
    """The report of one run: summary table, curves, expectation table and figure,
    variance shift (batchnorm runs) and MC evaluation (after `dropcli eval`)."""
    blocks = [Heading(level, f"Run {run.run_id}"), Table(["", "value"], _run_summary_rows(run))]
    blocks += [Image(p, "accuracy and loss per epoch") for p in _existing([run.path / "curves.png"])]
    blocks += [Image(p, "training diagnostics: gradient norm, activations, dead units per layer")
               for p in _existing([run.path / "diagnostics.png"])]
    blocks += _expectation_blocks(run, level + 1)
    blocks += _variance_shift_blocks(run, level + 1)
    blocks += _mc_eval_blocks(run, level + 1)
    if run.warnings:
        blocks += [Heading(level + 1, "Warnings"), Bullets(run.warnings)]
    return blocks


RUN_INPUTS = ("config.yaml", "metrics.jsonl", "summary.json", "expectation.json")
# The code that draws run figures (keep_prob_of titles them): when it changes, they are redrawn.
RUN_FIGURE_CODE = [Path(m.__file__) for m in (plots_run, figures, sweep_groups)]


def _up_to_date(out: Path, run: RunRecord) -> bool:
    """True if ``out`` was drawn after the run's files and the plotting code last changed.

    Only finished runs qualify: a live run's status can change with no file changing."""
    if run.summary is None or run.status not in FINAL_STATUSES or not out.exists():
        return False
    drawn = out.stat().st_mtime_ns
    inputs = [run.path / name for name in RUN_INPUTS] + RUN_FIGURE_CODE
    return all(drawn > p.stat().st_mtime_ns for p in inputs if p.exists())


def _run_figures(run: RunRecord) -> list[tuple[Path, object]]:
    """(path, draw function) of every figure the run should have."""
    wanted = [("curves.png", plots_run.plot_run_curves)]
    if plots_run.expectation_layers(run):
        wanted.append(("expectation.png", plots_run.plot_expectation))
    if diagnostics_of(run):
        wanted.append(("diagnostics.png", plots_run.plot_diagnostics))
    return [(run.path / name, draw) for name, draw in wanted]


def _plot_run(run: RunRecord, result: PlotResult, force: bool) -> None:
    """Draw the run's figures that are not up to date and write its report.md; a figure
    that fails is a warning."""
    for path, draw in _run_figures(run):
        try:
            if not force and _up_to_date(path, run):
                result.unchanged.append(path)
            else:
                result.files.append(draw(run, path))
        except Exception as e:  # one bad figure must not cost the run its report
            result.warnings.append(_failure(path, e))
    _write_md(run.path / "report.md", run_blocks(run), result)


def _failure(path: Path, e: Exception) -> str:
    return f"{path}: could not plot ({type(e).__name__}: {e})".splitlines()[0]


# --- one sweep -------------------------------------------------------------------------


@dataclass
class Sweep:
    path: Path
    spec: dict
    runs: list[RunRecord]
    groups: SweepGroups | None = None

    @property
    def title(self) -> str:
        return str(self.spec.get("sweep_id") or self.path.name)


def _read_sweep(sweep_dir: Path, warnings: list[str]) -> Sweep:
    """Like ``runs.read_sweep``, but a run that cannot be read is a warning, not an error,
    and run folders missing from sweep.yaml's list are included."""
    import yaml

    try:
        spec = yaml.safe_load((sweep_dir / "sweep.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, RecursionError, yaml.YAMLError) as e:
        warnings.append(f"{sweep_dir / 'sweep.yaml'}: cannot read ({type(e).__name__})")
        spec = {}
    spec = spec if isinstance(spec, dict) else {}
    listed = listed_runs(spec)
    extra = sorted(p.name for p in sweep_dir.iterdir() if is_run_dir(p) and p.name not in listed)
    return Sweep(sweep_dir, spec, [r for r in (_read_run(sweep_dir / rid, warnings) for rid in listed + extra) if r])


def _read_run(run_dir: Path, warnings: list[str]) -> RunRecord | None:
    if not is_run_dir(run_dir):
        return None
    try:
        run = read_run(run_dir)
    except RunStoreError as e:
        warnings.append(str(e).splitlines()[0])
        return None
    warnings.extend(run.warnings)
    return run


def _runs_table(runs: list[RunRecord], keys: list[str]) -> Table:
    header = ["run", "status", "keep_prob", "drop rate", *[k.rsplit(".", 1)[-1] for k in keys], "seed",
              "epochs", "final val", "best val", "gap", "figures"]
    rows = []
    for r in runs:
        s = r.summary or {}
        figs = [[" ", Link(p.name, p)] for p, _ in _run_figures(r) if p.exists()]
        keep = keep_prob_of(r)
        rows.append([
            Link(r.run_id, r.path / "report.md") if (r.path / "report.md").exists() else r.run_id,
            r.status, _num(keep), _drop(keep), *[format_value(r.value(k)) for k in keys], _num(r.value("seed")),
            f"{r.metrics[-1].get('epoch') if r.metrics else 0}/{_num(r.value('train.epochs'))}",
            _pct(METRICS["final_val"][1](s)), _pct(METRICS["best_val"][1](s)),
            _pct(METRICS["gap"][1](s)), [p for f in figs for p in f][1:] or "-",
        ])
    return Table(header, rows)


def _group_table(sweep: Sweep) -> Table:
    g = sweep.groups
    keys = [k for k in g.varying if k != "dropout.keep_prob"]
    header = [k.rsplit(".", 1)[-1] for k in keys] + ["keep_prob", "drop rate", "final val acc", "best val acc",
                                                      "train - val gap", "N", "runs"]
    rows = [
        [format_value(grp.values.get(k)) for k in keys]
        + [_num(grp.keep_prob), _drop(grp.keep_prob), _pm(grp.stat("final_val")), _pm(grp.stat("best_val")),
           _pm(grp.stat("gap")), str(len(grp.included)), _counts(grp.runs)]
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
        rows.append([variant, _pm(final), str(final.n), str(len(layers)),
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
              Para((f"{len(sweep.runs)} runs ({_counts(sweep.runs)}). Grid: {grid}. "
                    "Seeds are replicates; rows group runs by every other swept value.",)),
              Para((STATS_NOTE,)), _group_table(sweep)]
    failed = [r for r in sweep.runs if r.status not in ("completed", "pending", "running")]
    if failed:
        blocks.append(Bullets([[f"{r.status}: {r.run_id} ({(r.summary or {}).get('reason') or 'no reason recorded'})"]
                               for r in failed]))
    blocks += [Image(p, alt) for name, alt in SWEEP_FIGURES for p in _existing([sweep.path / name])]
    blocks += _variant_blocks(sweep, level + 1)
    keys = [k for k in sweep.groups.varying if k != "dropout.keep_prob"]
    return blocks + [Heading(level + 1, "Runs"), _runs_table(sweep.runs, keys)]


def _plot_sweep(sweep: Sweep, result: PlotResult) -> None:
    """The sweep's figures and report.md; a figure that fails is a warning."""
    sweep.groups = group_sweep(sweep.spec, sweep.runs)
    for name, _ in SWEEP_FIGURES if sweep.runs else ():
        try:
            if (drawn := SWEEP_PLOTS[name](sweep.groups, sweep.title, sweep.path / name)) is not None:
                result.files.append(drawn)
        except Exception as e:  # the table and the other figures are still worth having
            result.warnings.append(_failure(sweep.path / name, e))
    _write_md(sweep.path / "report.md", sweep_blocks(sweep), result)


# --- the index -------------------------------------------------------------------------


def index_blocks(root: Path, sweeps: list[Sweep], singles: list[RunRecord], warnings: list[str]) -> list:
    """The index over RUNS_DIR: every sweep (table and figures), every run, checks, warnings."""
    all_runs = [r for s in sweeps for r in s.runs] + singles
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    blocks = [Heading(1, f"dropcli report: {root.resolve().name}"),
              Para((f"{len(all_runs)} runs ({_counts(all_runs)}) in {len(sweeps)} sweeps and {len(singles)} "
                    f"single runs; written {stamp} by dropcli plot.",))]
    if warnings:
        blocks += [Heading(2, "Warnings"), Bullets(warnings)]
    for sweep in sweeps:
        try:
            if sweep.groups is None:  # plotting it failed; the warning says why
                raise ValueError("not plotted")
            head, *rest = sweep_blocks(sweep, 2)
        except Exception:  # its damaged files are in the warnings already (from _plot_sweep)
            blocks += [Heading(2, f"Sweep {sweep.title}"), Para(("not plotted; see the warnings",))]
            continue
        blocks += [head, *[Para((Link("sweep report (Markdown)", p),)) for p in _existing([sweep.path / "report.md"])],
                   *rest]
    if singles:
        blocks += [Heading(2, "Single runs"), _runs_table(singles, [])]
        blocks += [Image(p, f"{r.run_id}: {r.status}") for r in singles for p in _existing([r.path / "curves.png"])]
    checks = sorted(root.glob("checks/*/report.md"), reverse=True)  # `dropcli check`, newest first
    if checks:
        blocks += [Heading(2, "Checks"), Bullets([[Link(p.parent.name, p), f": {_first_line(p)}"] for p in checks])]
    return blocks


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").lstrip("# ").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return "(unreadable)"


def _write_md(path: Path, blocks: list, result: PlotResult) -> None:
    atomic_write_bytes(path, to_markdown(blocks, path.parent).encode("utf-8"))
    result.files.append(path)


def _check_root(root: Path) -> list[Path]:
    """The run folders of ``root``; RunStoreError (one line) if there are none."""
    if not root.exists():
        raise RunStoreError(f"{root}: no such folder")
    if not root.is_dir():
        raise RunStoreError(f"{root}: not a folder")
    for kind, test in (("sweep", is_sweep_dir), ("run", is_run_dir)):
        if test(root):
            raise RunStoreError(f"{root}: this is a {kind} folder; plot the runs folder that holds it "
                                f"(dropcli plot {root.resolve().parent})")
    paths = find_runs(root)
    if not paths:
        raise RunStoreError(f"{root}: no runs found (expected folders with config.yaml; "
                            "run `dropcli train` or `dropcli sweep` first)")
    return paths


def plot_all(runs_dir: Path, on_progress=None, *, force: bool = False) -> PlotResult:
    """Write every figure and report of the runs store ``runs_dir`` (see module docstring).

    A finished run's figures are redrawn only if its files (or dropcli's plotting code)
    changed since they were drawn, or with ``force``; reports and sweep figures always
    are. ``on_progress(done, total, label)`` is called after each run, each sweep and the
    index. A run or sweep that cannot be read or plotted becomes a warning in the result
    (and in the index); the rest is still written. Raises RunStoreError if ``runs_dir``
    is missing, not a folder, or holds no runs.
    """
    root = Path(runs_dir)
    paths = _check_root(root)
    result = PlotResult()
    sweeps = [_read_sweep(p, result.warnings) for p in find_sweeps(root)]
    singles = [r for r in (_read_run(p, result.warnings) for p in paths if p.parent == root) if r]
    # Runs first: sweep reports link the runs' figures and reports.
    units = [r for s in sweeps for r in s.runs] + singles + sweeps
    progress = on_progress or (lambda done, total, label: None)
    for done, unit in enumerate(units, 1):
        try:
            _plot_sweep(unit, result) if isinstance(unit, Sweep) else _plot_run(unit, result, force)
        except Exception as e:  # one bad run or sweep must not cost the others their reports
            result.warnings.append(_failure(unit.path, e))
        progress(done, len(units) + 1, str(unit.path.relative_to(root)))
    blocks = index_blocks(root, sweeps, singles, result.warnings)
    _write_md(root / "report.md", blocks, result)
    atomic_write_bytes(root / "report.html", to_html(blocks, root, f"dropcli: {root.resolve().name}").encode())
    result.files.append(root / "report.html")
    progress(len(units) + 1, len(units) + 1, "report")
    return result
