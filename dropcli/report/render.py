"""The figures of `dropcli plot`: which are out of date, and drawing those on every core.

Run figures (``RUN_FIGURES``) are drawn from templates (``figures.template``): the runs of
a sweep whose figure of a kind has the same signature share one template, so one set of
axes limits, and a finished run and a live one never share (a live run's numbers move).
A run outside a sweep has its own. Each PNG carries the stamp of what it was drawn from
(``stamps``); one whose stamp matches is left as it is. Live runs (and sweeps holding one)
are always drawn: their status can change with no file changing. Figures that no longer
apply (a run's expectation.png once its expectation.json has no dropout layers) are
removed, so no report links a stale one.

The work is cut into tasks (a template and its runs, or one sweep figure) run in forked
worker processes, one per core, biggest first; with one core, or where fork is not safe
(not Linux, or threads running), in this process.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dropcli.evidence.stats import t_critical
from dropcli.report import stamps
from dropcli.report.figures.axis import axis_figure, axis_figures
from dropcli.report.figures.common import png_stamp, save_or_remove
from dropcli.report.figures.curves import CURVES
from dropcli.report.figures.diagnostics import DIAGNOSTICS
from dropcli.report.figures.expectation import EXPECTATION
from dropcli.report.figures.sweep import gap_figure, grad_flow_figure, keep_prob_figure, val_curves_figure
from dropcli.report.figures.template import render
from dropcli.report.format import failure
from dropcli.report.groups import SweepGroups
from dropcli.store.layout import FINAL_STATUSES
from dropcli.store.runs import RunRecord

RUN_FIGURES = {kind.name: kind for kind in (CURVES, EXPECTATION, DIAGNOSTICS)}
SWEEP_FIGURES = {"keep_prob.png": keep_prob_figure, "val_curves.png": val_curves_figure, "gap.png": gap_figure,
                 "grad_flow.png": grad_flow_figure}  # name -> (groups, title) -> Figure, or None if it does not apply


def run_figures(run: RunRecord) -> list[Path]:
    """The figures the run should have."""
    return [run.path / name for name, kind in RUN_FIGURES.items() if kind.applies(run)]


@dataclass
class RunTask:
    """Runs drawn from one template: (run, PNG, stamp) each."""

    kind: str
    signature: tuple
    limits: tuple
    jobs: list = field(default_factory=list)

    def cost(self) -> float:
        return 12 + len(self.jobs)  # building and drawing a template costs about what 12 runs do

    def __call__(self) -> tuple[list[Path], list[str]]:
        kind = RUN_FIGURES[self.kind]
        return render(kind.template(self.signature, self.limits), self.jobs)


@dataclass
class SweepTask:
    """One figure of a sweep; ``axis``: the swept key of a vs_<axis>.png."""

    name: str
    groups: SweepGroups
    title: str
    path: Path
    stamp: str
    axis: str | None = None

    def cost(self) -> float:
        return 10 + len(self.groups.groups) / 2

    def __call__(self) -> tuple[list[Path], list[str]]:
        fig = (axis_figure(self.groups, self.axis, self.title) if self.axis
               else SWEEP_FIGURES[self.name](self.groups, self.title))
        drawn = save_or_remove(fig, self.path, self.stamp)
        return ([drawn] if drawn else []), []


@dataclass
class Plan:
    tasks: list = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)  # figures already up to date


def _live(run: RunRecord) -> bool:
    return run.summary is None or run.status not in FINAL_STATUSES


def _setting(run: RunRecord) -> str:
    """The run's config but its seed: runs with the same one are drawn one after another."""
    return json.dumps({k: v for k, v in run.config.items() if k != "seed"}, sort_keys=True, default=str)


def plan_runs(runs: list[RunRecord], shared: bool, force: bool, plan: Plan, digests: dict, warnings: list[str]) -> None:
    """Add to ``plan`` the run figures of ``runs`` (the runs of one sweep if ``shared``,
    else unrelated runs) that are out of date; remove those that no longer apply. A run
    (or group) whose numbers cannot be read for a figure is a warning, not drawn."""
    for name, kind in RUN_FIGURES.items():
        groups = {}
        for run in runs:
            try:
                if not kind.applies(run):
                    (run.path / name).unlink(missing_ok=True)
                    continue
                key = (kind.signature(run), _live(run), run.path if not shared or _live(run) else None)
            except Exception as e:  # one run's damaged file must not cost the others their figures
                warnings.append(failure(run.path / name, e))
                continue
            groups.setdefault(key, []).append(run)
        for (signature, *_), members in groups.items():
            try:
                limits = kind.limits(members)
            except Exception as e:
                warnings += [failure(run.path / name, e) for run in members]
                continue
            task = RunTask(name, signature, limits)
            for run in sorted(members, key=_setting):
                path = run.path / name
                stamp = stamps.stamp(name, digests[run.path], signature, limits)
                if not force and not _live(run) and png_stamp(path) == stamp:
                    plan.unchanged.append(path)
                else:
                    task.jobs.append((run, path, stamp))
            if task.jobs:
                plan.tasks.append(task)


def plan_sweep(path: Path, spec_text: bytes, title: str, groups: SweepGroups, force: bool, plan: Plan,
               digests: dict) -> None:
    """Add to ``plan`` the figures of one sweep that are out of date; remove vs_*.png of
    axes the sweep no longer has."""
    axes = dict((name, key) for key, name in axis_figures(groups))
    for old in set(path.glob("vs_*.png")) - {path / name for name in axes}:
        old.unlink(missing_ok=True)  # an axis this sweep no longer has (or an older dropcli's name)
    runs = [r for g in groups.groups for r in g.runs]
    live = any(_live(r) for r in runs)
    inputs = sorted(digests[r.path] for r in runs)
    for name, key in [(name, None) for name in SWEEP_FIGURES] + list(axes.items()):
        stamp = stamps.stamp(name, title, spec_text, inputs)
        if not force and not live and png_stamp(path / name) == stamp:
            plan.unchanged.append(path / name)
        else:
            plan.tasks.append(SweepTask(name, groups, title, path / name, stamp, key))


def workers() -> int:
    """Processes to draw in: one per core this process may use, where fork is safe."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return 1  # fork with other threads running can deadlock; spawn costs a second per worker
    return len(os.sched_getaffinity(0))


def draw(tasks: list, processes: int | None = None) -> tuple[list[Path], list[str]]:
    """Run ``tasks``, biggest first, in ``processes`` forked workers (default: ``workers()``);
    the files written and the warnings."""
    n = min(workers() if processes is None else processes, len(tasks))
    share = sum(t.cost() for t in tasks) / max(n, 1)
    split = []
    for task in tasks:  # a template with more than a worker's share of runs is drawn by several
        if isinstance(task, RunTask) and n > 1 and task.cost() > 1.2 * share:
            step = -(-len(task.jobs) // n)
            split += [RunTask(task.kind, task.signature, task.limits, task.jobs[i:i + step])
                      for i in range(0, len(task.jobs), step)]
        else:
            split.append(task)
    split.sort(key=lambda t: -t.cost())
    if n <= 1:
        results = [_guarded(t) for t in split]
    else:
        global _TASKS
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool
        from multiprocessing import get_context

        import matplotlib.backends.backend_agg  # noqa: F401  imported once, before the workers fork

        if any(isinstance(t, SweepTask) for t in split):
            t_critical(2)  # the same: scipy (a quarter second), which sweep figures and the reports need
        _TASKS = split
        pool = ProcessPoolExecutor(n, mp_context=get_context("fork"))
        try:
            results = list(pool.map(_run_task, range(len(split))))
        except BrokenProcessPool:  # a worker died (out of memory, killed): draw everything here instead
            results = [_guarded(t) for t in split]
        finally:  # on Ctrl-C (which the workers get too, ending their task), no task is started again
            pool.shutdown(wait=True, cancel_futures=True)
            _TASKS = []
    return [p for files, _ in results for p in files], [w for _, ws in results for w in ws]


_TASKS: list = []  # the tasks of ``draw``, inherited by its forked workers (nothing to pickle)


def _run_task(i: int):
    return _guarded(_TASKS[i])


def _guarded(task) -> tuple[list[Path], list[str]]:
    """The task's result; if it fails as a whole, one warning per file it should have drawn."""
    try:
        return task()
    except Exception as e:  # one bad figure must not cost the others theirs
        paths = [path for _, path, _ in task.jobs] if isinstance(task, RunTask) else [task.path]
        return [], [failure(p, e) for p in paths]
