"""`dropcli plot`: figures and reports over a runs store, read only from its files.

``plot_all(runs_dir)`` writes, atomically and relative-linked so the folder can be moved
or opened from disk:

    <run>/curves.png, expectation.png,                  every run (in sweeps too)
          report.md, report.html
          diagnostics.png                               runs that recorded diagnostics
    <sweep>/val_curves.png, keep_prob.png, gap.png,     every sweep (the figures its data
            grad_flow.png (with diagnostics),           allows)
            vs_<axis>.png                               per numeric swept axis but keep_prob
            report.md, report.html
    report.md, report.html                              RUNS_DIR: index over everything

Each report is written twice: the Markdown links Markdown reports, the HTML links HTML
pages, so a browser opened on RUNS_DIR/report.html can follow every link rendered.

Reports are built once as a small document (``dropcli.report.doc``: headings, paragraphs,
tables, images, links to absolute paths) and rendered twice, to Markdown and to
self-contained HTML (inline CSS, no scripts, no network); links are made relative to the
folder of the file written. What a run's report says is in ``dropcli.report.run_page``, a
sweep's in ``dropcli.report.sweep_page``; this module decides what to redraw, writes the files
and builds the index. Figures come from ``dropcli.report.figures.run`` and ``dropcli.report.figures.sweep``;
runs are grouped into replicates by ``dropcli.report.groups``, and statistics over seeds
(mean, 95% t-interval) come from ``dropcli.evidence.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dropcli.report.figures import common as figures, run as plots_run
from dropcli.report import groups as sweep_groups
from dropcli.errors import RunStoreError
from dropcli.report.figures.axis import axis_figures, plot_axis
from dropcli.report.figures.sweep import plot_gap, plot_grad_flow, plot_keep_prob, plot_val_curves
from dropcli.report.doc import Bullets, Heading, Image, Link, Para, to_html, to_markdown
from dropcli.report.format import counts, existing, plural
from dropcli.report.run_page import run_blocks, run_figures, run_page
from dropcli.report.sweep_page import SWEEP_FIGURES, Sweep, runs_table, sweep_blocks
from dropcli.store.files import atomic_write_bytes
from dropcli.store.layout import (
    CONFIG_FILE, EXPECTATION_FILE, FINAL_STATUSES, METRICS_FILE, REPORT_HTML, REPORT_MD, SUMMARY_FILE, is_run_dir,
    is_sweep_dir,
)
from dropcli.store.runs import RunRecord, find_runs, read_run
from dropcli.store.sweeps import find_sweeps, read_sweep
from dropcli.report.groups import group_sweep

SWEEP_PLOTS = {"keep_prob.png": plot_keep_prob, "val_curves.png": plot_val_curves,
               "gap.png": plot_gap, "grad_flow.png": plot_grad_flow}


@dataclass
class PlotResult:
    """What ``plot_all`` did."""

    files: list[Path] = field(default_factory=list)  # every file written, in order
    warnings: list[str] = field(default_factory=list)  # one line each
    unchanged: list[Path] = field(default_factory=list)  # run figures already up to date, not redrawn


# --- one run ---------------------------------------------------------------------------


RUN_INPUTS = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, EXPECTATION_FILE)  # what run figures are drawn from
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


def _plot_run(run: RunRecord, result: PlotResult, force: bool) -> None:
    """Draw the run's figures that are not up to date and write its report (.md and
    .html); a figure that fails is a warning."""
    for path, draw in run_figures(run):
        try:
            if not force and _up_to_date(path, run):
                result.unchanged.append(path)
            else:
                result.files.append(draw(run, path))
        except Exception as e:  # one bad figure must not cost the run its report
            result.warnings.append(_failure(path, e))
    _write_report(run_blocks(run), run.path / REPORT_MD, run_page(run), f"dropcli: run {run.run_id}", result)


def _failure(path: Path, e: Exception) -> str:
    return f"{path}: could not plot ({type(e).__name__}: {e})".splitlines()[0]


# --- one sweep -------------------------------------------------------------------------


def _read_sweep(sweep_dir: Path, warnings: list[str]) -> Sweep:
    """The sweep as ``store.sweeps.read_sweep`` reads it, its warnings added to ``warnings``."""
    record = read_sweep(sweep_dir)
    warnings.extend(record.warnings)
    return Sweep(record.path, record.spec, record.runs)


def _read_run(run_dir: Path, warnings: list[str]) -> RunRecord | None:
    try:
        run = read_run(run_dir)
    except RunStoreError as e:
        warnings.append(str(e).splitlines()[0])
        return None
    warnings.extend(run.warnings)
    return run


def _plot_sweep(sweep: Sweep, result: PlotResult) -> None:
    """The sweep's figures and report (.md and .html); a figure that fails is a warning."""
    sweep.groups = group_sweep(sweep.spec, sweep.runs)
    draws = {name: SWEEP_PLOTS[name] for name, _ in SWEEP_FIGURES}
    draws.update({name: lambda groups, title, path, key=key: plot_axis(groups, key, title, path)
                  for key, name in axis_figures(sweep.groups)})
    for old in set(sweep.path.glob("vs_*.png")) - {sweep.path / name for name in draws}:
        old.unlink(missing_ok=True)  # an axis this sweep no longer has (or an older dropcli's name)
    for name, draw in draws.items() if sweep.runs else ():
        try:
            if (drawn := draw(sweep.groups, sweep.title, sweep.path / name)) is not None:
                result.files.append(drawn)
            else:  # the figure does not apply (keep_prob.png when keep_prob is not swept): none, not an old one
                (sweep.path / name).unlink(missing_ok=True)
        except Exception as e:  # the table and the other figures are still worth having
            result.warnings.append(_failure(sweep.path / name, e))
    _write_report(sweep_blocks(sweep), sweep.path / REPORT_MD, sweep.path / REPORT_HTML,
                  f"dropcli: sweep {sweep.title}", result)


# --- the index -------------------------------------------------------------------------


def index_blocks(root: Path, sweeps: list[Sweep], singles: list[RunRecord], warnings: list[str]) -> list:
    """The index over RUNS_DIR: every sweep (table and figures), every run, checks, warnings."""
    all_runs = [r for s in sweeps for r in s.runs] + singles
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    blocks = [Heading(1, f"dropcli report: {root.resolve().name}"),
              Para((f"{plural(len(all_runs), 'run')} ({counts(all_runs)}) in {plural(len(sweeps), 'sweep')} and "
                    f"{plural(len(singles), 'single run')}; written {stamp} by dropcli plot.",))]
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
        blocks += [head, *[Para((Link("sweep report", p, sweep.path / REPORT_HTML),))
                           for p in existing([sweep.path / REPORT_MD])], *rest]
    if singles:
        blocks += [Heading(2, "Single runs"), runs_table(singles, [])]
        blocks += [Image(p, f"{r.run_id}: {r.status}") for r in singles for p in existing([r.path / "curves.png"])]
    checks = sorted(root.glob(f"checks/*/{REPORT_MD}"), reverse=True)  # `dropcli check`, newest first
    if checks:
        blocks += [Heading(2, "Checks"), Bullets([[Link(p.parent.name, p), f": {_first_line(p)}"] for p in checks])]
    return blocks


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").lstrip("# ").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return "(unreadable)"


def _write_report(blocks: list, md: Path, html: Path, title: str, result: PlotResult) -> None:
    """``blocks`` as Markdown into ``md`` and as HTML into ``html``, each written atomically."""
    atomic_write_bytes(md, to_markdown(blocks, md.parent).encode("utf-8"))
    result.files.append(md)
    html.parent.mkdir(exist_ok=True)
    atomic_write_bytes(html, to_html(blocks, html.parent, title).encode("utf-8"))
    result.files.append(html)


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
    _write_report(blocks, root / REPORT_MD, root / REPORT_HTML, f"dropcli: {root.resolve().name}", result)
    progress(len(units) + 1, len(units) + 1, "report")
    return result
