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
sweep's in ``dropcli.report.sweep_page``; which figures are out of date and drawing them on
every core, in ``dropcli.report.render`` (a figure whose inputs did not change is not drawn
again); this module reads the store, writes the reports and builds the index. Run figures
come from ``dropcli.report.figures`` (``curves``, ``expectation``, ``diagnostics``, drawn
many at a time by ``figures.template``), sweep figures from ``figures.sweep`` and
``figures.axis``; runs are grouped into replicates by ``dropcli.report.groups``, and
statistics over seeds (mean, 95% t-interval) come from ``dropcli.evidence.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.report.doc import Bullets, Heading, Image, Link, Para, to_html, to_markdown
from dropcli.report.format import counts, existing, failure, plural
from dropcli.report.groups import group_sweep
from dropcli.report.render import Plan, draw, plan_runs, plan_sweep
from dropcli.report.run_page import run_blocks, run_page
from dropcli.report.stamps import run_digest
from dropcli.report.sweep_page import Sweep, runs_table, sweep_blocks
from dropcli.store.files import atomic_write_bytes
from dropcli.store.layout import REPORT_HTML, REPORT_MD, SWEEP_FILE, is_run_dir, is_sweep_dir
from dropcli.store.runs import RunRecord, find_runs, read_run
from dropcli.store.sweeps import find_sweeps, read_sweep


@dataclass
class PlotResult:
    """What ``plot_all`` did."""

    files: list[Path] = field(default_factory=list)  # every file written, in order
    warnings: list[str] = field(default_factory=list)  # one line each
    unchanged: list[Path] = field(default_factory=list)  # figures already up to date, not drawn again


# --- figures ---------------------------------------------------------------------------


def _read_sweep(sweep_dir: Path, warnings: list[str]) -> Sweep:
    """The sweep as ``store.sweeps.read_sweep`` reads it (its warnings added to ``warnings``),
    its runs grouped into replicates."""
    record = read_sweep(sweep_dir)
    warnings.extend(record.warnings)
    sweep = Sweep(record.path, record.spec, record.runs)
    try:
        sweep.groups = group_sweep(sweep.spec, sweep.runs)
    except Exception as e:  # the index says it was not plotted
        warnings.append(failure(sweep.path, e))
    return sweep


def _read_run(run_dir: Path, warnings: list[str]) -> RunRecord | None:
    try:
        run = read_run(run_dir)
    except RunStoreError as e:
        warnings.append(str(e).splitlines()[0])
        return None
    warnings.extend(run.warnings)
    return run


def _plan(sweeps: list[Sweep], singles: list[RunRecord], force: bool, warnings: list[str]) -> Plan:
    """The figures to draw (see ``render``); a sweep that cannot be planned is a warning."""
    plan = Plan()
    digests = {r.path: run_digest(r) for r in [r for s in sweeps for r in s.runs] + singles}
    for sweep in sweeps:
        try:
            plan_runs(sweep.runs, True, force, plan, digests, warnings)
            if sweep.groups is not None and sweep.runs:
                spec = (sweep.path / SWEEP_FILE).read_bytes()
                plan_sweep(sweep.path, spec, sweep.title, sweep.groups, force, plan, digests)
        except Exception as e:
            warnings.append(failure(sweep.path, e))
    plan_runs(singles, False, force, plan, digests, warnings)
    return plan


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
    """``blocks`` as Markdown into ``md`` and as HTML into ``html``, each written atomically
    unless it already holds exactly that."""
    html.parent.mkdir(exist_ok=True)
    for path, text in ((md, to_markdown(blocks, md.parent)), (html, to_html(blocks, html.parent, title))):
        # A folder name's bytes that are not UTF-8 (lone surrogates in Python) read as \xff.
        data = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").encode("utf-8")
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            pass
        atomic_write_bytes(path, data)
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


def plot_all(runs_dir: Path, on_progress=None, *, force: bool = False, processes: int | None = None) -> PlotResult:
    """Write every figure and report of the runs store ``runs_dir`` (see module docstring).

    A figure is drawn only if what it shows changed since it was drawn (its run's files,
    the other runs it shares its axes with, dropcli's plotting code; see
    ``dropcli.report.stamps``), or with ``force``; figures are drawn in ``processes``
    worker processes (default: one per core, see ``render.workers``); reports are always
    written. ``on_progress(done, total, label)`` is called after each run's, each sweep's
    and the index's report. A run or sweep that cannot be read or plotted becomes a
    warning in the result (and in the index); the rest is still written. Raises
    RunStoreError if ``runs_dir`` is missing, not a folder, or holds no runs.
    """
    root = Path(runs_dir)
    paths = _check_root(root)
    result = PlotResult()
    sweeps = [_read_sweep(p, result.warnings) for p in find_sweeps(root)]
    singles = [r for r in (_read_run(p, result.warnings) for p in paths if p.parent == root) if r]
    plan = _plan(sweeps, singles, force, result.warnings)
    files, warnings = draw(plan.tasks, processes)
    result.files += files
    result.warnings += warnings
    result.unchanged = plan.unchanged
    # Reports after figures, runs before sweeps: each links what exists.
    units = [r for s in sweeps for r in s.runs] + singles + sweeps
    progress = on_progress or (lambda done, total, label: None)
    for done, unit in enumerate(units, 1):
        try:
            if isinstance(unit, Sweep):
                if unit.groups is not None:
                    _write_report(sweep_blocks(unit), unit.path / REPORT_MD, unit.path / REPORT_HTML,
                                  f"dropcli: sweep {unit.title}", result)
            else:
                _write_report(run_blocks(unit), unit.path / REPORT_MD, run_page(unit), f"dropcli: run {unit.run_id}",
                              result)
        except Exception as e:  # one bad run or sweep must not cost the others their reports
            result.warnings.append(failure(unit.path, e))
        progress(done, len(units) + 1, str(unit.path.relative_to(root)))
    blocks = index_blocks(root, sweeps, singles, result.warnings)
    _write_report(blocks, root / REPORT_MD, root / REPORT_HTML, f"dropcli: {root.resolve().name}", result)
    progress(len(units) + 1, len(units) + 1, "report")
    return result
