"""``dropcli sweep``: run a grid of configs, show its progress, print its table."""

from __future__ import annotations

import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from dropcli.cli.app import (
    EXIT_RUN_FAILED, RunsDir, app, config_located, err, handle_errors, out, pct, printable, say_interrupted,
    stopping,
)
from dropcli.cli.tables import print_table, status_text
from dropcli.config.vocabulary import NORMALIZATIONS, VARIANTS
from dropcli.report.format import epochs_cell, examples_cell, patience_text, plural
from dropcli.store.early_stop import patience_savings
from dropcli.store.listing import check_runs_dir


def _jobs(value: str) -> int | None:
    """``-j``: ``auto`` (None: one per core) or a whole number >= 1."""
    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise typer.BadParameter(f"{value!r}: expected auto or a whole number >= 1, e.g. -j 2")
    return jobs


@app.command()
@handle_errors
def sweep(
    config_path: Annotated[
        Optional[Path], typer.Argument(metavar="[CONFIG]", help="A YAML config; default: the built-in mnist1d config.")
    ] = None,
    keep: Annotated[Optional[str], typer.Option("--keep", help="keep_prob values: --keep 0.25,0.5,1")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help=f"Dropout variants: --variant {','.join(VARIANTS)}")] = None,
    norm: Annotated[Optional[str], typer.Option("--norm", help=f"Normalizations: --norm {','.join(NORMALIZATIONS)}")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Seeds (replicates): --seeds 0,1,2")] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Any axis: --set model.hidden_dims=[100],[200,200] (repeatable).")
    ] = None,
    jobs: Annotated[Optional[int], typer.Option(
        "-j", "--jobs", parser=_jobs, metavar="auto|N",
        help="Runs trained at once: auto (the default: one worker process per core, as many as there are runs to "
             "train) or N; with --executor dask and no --scheduler, the local cluster's workers. Every run gets the "
             "same BLAS threads whatever -j, so results do not depend on it.")] = "auto",
    executor_name: Annotated[str, typer.Option(
        "--executor", help="Where runs train: auto (serial for -j 1, else processes), serial, processes, or dask "
        "(pip install 'dropcli\\[dask]'; a LocalCluster of -j workers, one per core by default).")] = "auto",
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", help="With --executor dask: a running scheduler's address, e.g. tcp://HOST:8786.")] = None,
    runs_dir: RunsDir = Path("runs"),
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Also run again the runs that failed or diverged (by default they are kept).")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Run every run again, completed ones too (no reuse from other sweeps).")] = False,
):
    """Run a grid of configs: the config's sweep section, extended by the flags.

    Re-running the same sweep resumes it: interrupted, crashed, corrupt and
    pending runs run again; completed runs are kept, and so are runs that
    failed or diverged (the same config and seed end the same way): use
    --retry-failed to run those again, --force to run everything again.
    A run another sweep in RUNS_DIR already finished is linked in, not
    trained again; one another process is training is waited for.
    Ctrl-C stops the runs in progress (marked interrupted) and exits 130;
    a second Ctrl-C stops at once. With --executor dask, workers need no
    shared file system: results come back to this process, which writes RUNS_DIR.

    Example:  dropcli sweep --keep 0.25,0.5,1 --seeds 0,1,2 -j 2
    """
    from dropcli.sweep.executors import make_executor
    from dropcli.sweep.flags import sweep_config
    from dropcli.sweep.grid import plan_sweep
    from dropcli.sweep.run import run_sweep
    from dropcli.sweep.summary import summary_rows
    from dropcli.report.verdict import sweep_verdict

    flags = {"--keep": keep, "--variant": variant, "--norm": norm, "--seeds": seeds}
    config, given = sweep_config(config_path, flags, set_)
    check_runs_dir(runs_dir)
    plan = plan_sweep(config, runs_dir)
    executor = make_executor(executor_name, jobs=jobs, scheduler=scheduler)
    progress = _Progress(plan, executor)
    try:
        with stopping(progress.bar), config_located(config_path, given):
            summaries = run_sweep(plan, executor=executor, force=force, retry_failed=retry_failed, argv=sys.argv,
                                  on_event=progress.on_event)
    except KeyboardInterrupt:
        counts = Counter(row["status"] for row in summary_rows(plan))
        done = ", ".join(f"{n} {status}" for status, n in counts.items())
        raise typer.Exit(say_interrupted(
            f"interrupted: {done}; the same command resumes the sweep (completed runs are kept)")) from None
    _print_sweep_table(plan, summaries, summary_rows(plan))
    _print_verdict(sweep_verdict(plan.path))
    _print_next(plan, progress.kept)
    if any(s.get("status") != "completed" for s in summaries):
        raise typer.Exit(EXIT_RUN_FAILED)


class _Progress:
    """The sweep's progress bar on stderr, fed ``run_sweep``'s events; it remembers the
    statuses of the runs kept from before (failed or diverged, not run again)."""

    def __init__(self, plan, executor):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.plan, self.executor, self.kept = plan, executor, []
        self.bar = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=err)
        self.task = self.bar.add_task("runs", total=len(plan.runs), last="")

    def on_event(self, kind, run, summary):
        if kind == "start":  # the data is checked: from here on the sweep writes
            where = f" on {self.executor.description}" if self.executor.description else ""
            err.print(f"sweep {self.plan.sweep_id}: {plural(len(self.plan.runs), 'run')} -> "
                      f"{printable(self.plan.path)}{where}", markup=False, soft_wrap=True)
            self.bar.start()
            return
        status = summary.get("status")
        if kind == "wait":
            self.bar.update(self.task, last=f"{run.run_id}: another process is training it; waiting")
            return
        if kind == "skip" and status != "completed":
            self.kept.append(status)
        val = (summary.get("final") or {}).get("val_acc")
        label = (f"skipped ({status})" if kind == "skip" else
                 f"{status}, reused from {summary['reused_from']}" if summary.get("reused_from") else status)
        self.bar.update(self.task, advance=1, last=f"{run.run_id}: {label}, val {pct(val)}")
        if kind == "done" and status == "failed" and summary.get("reason"):  # why, in one line
            err.print(Text(f"{run.run_id}: failed: {' '.join(str(summary['reason']).split())}", style="red"),
                      soft_wrap=True)


def _print_sweep_table(plan, summaries: list[dict], rows: list[dict]) -> None:
    """One row per run: the values that vary, then its numbers (summary.csv's ``rows``, the
    train-val gap among them) and its status as the sweep reported it (a run that failed
    before training has nothing on disk)."""
    varying = [k for k, v in plan.axes.items() if len(v) > 1]
    # keep_prob and drop rate side by side, after the other swept values and before seed
    keys = [k for k in varying if k not in ("dropout.keep_prob", "seed")]
    keys += [k for k in ("dropout.keep_prob", "seed") if k in varying]
    header = [k.rsplit(".", 1)[-1] for k in keys]  # keep_prob, not dropout.keep_prob
    if "dropout.keep_prob" in varying:
        header.insert(keys.index("dropout.keep_prob") + 1, "drop rate")
    header += ["train n", "val n", "epochs", "final val", "best val", "test acc", "train-val gap", "status"]
    cells = []
    for run, summary, row in zip(plan.runs, summaries, rows):
        values = [_value(run.values[k]) for k in keys]
        if "dropout.keep_prob" in varying:
            values.insert(keys.index("dropout.keep_prob") + 1, f"{1 - run.values['dropout.keep_prob']:.3g}")
        examples = summary.get("examples")
        cells.append([*values, examples_cell(examples, "train"), examples_cell(examples, "val"),
                      epochs_cell(row["epochs_completed"], row["epochs"], summary),
                      *map(pct, (row["final_val_acc"], row["best_val_acc"], row["test_acc"], row["train_val_gap"])),
                      status_text(summary.get("status", "?"))])
    print_table(f"sweep {plan.sweep_id}: {plural(len(cells), 'run')}", header, cells,
                same=("train n", "val n", "epochs", "status"), droppable=("val n", "epochs"),
                right=("train n", "val n", "final val", "best val", "test acc", "train-val gap"))
    if (saved := patience_savings(summaries)) is not None:
        out.print(patience_text(saved), markup=False, highlight=False, soft_wrap=True)


def _print_verdict(sentences: list[str]) -> None:
    """The sweep's verdict under its table, one sentence per line, wrapped between words."""
    out.print("verdict (paired by seed against keep_prob 1; the sweep's report explains the rules):", markup=False)
    for sentence in sentences:  # a hanging indent, so each sentence reads as one item
        out.print(textwrap.fill(sentence, max(out.width, 40), initial_indent="  - ", subsequent_indent="    "),
                  markup=False, highlight=False, soft_wrap=True)


def _print_next(plan, kept: list[str]) -> None:
    """The runs kept from before (``kept``: their statuses), where the sweep is, what to run next."""
    if kept:
        err.print(f"{plural(len(kept), 'run')} that {' or '.join(sorted(set(kept)))} before "
                  f"{'was' if len(kept) == 1 else 'were'} not run again (--retry-failed runs them again)",
                  soft_wrap=True)
    out.print(f"sweep folder: {printable(plan.path)}", markup=False, soft_wrap=True)
    runs = printable(plan.path.parent)
    out.print(f"next: dropcli plot {runs}   (run ids: dropcli runs {runs})", markup=False, soft_wrap=True)


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(list(v) if isinstance(v, tuple) else v)
