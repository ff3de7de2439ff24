"""``dropcli sweep``: run a grid of configs, show its progress, print its table.

Registered in ``cli.py``; like the rest of the CLI, nothing heavy at import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from dropcli.cli.app import (
    EXIT_RUN_FAILED, RunsDir, app, check_runs_dir, check_set_keys, config_from_args, config_located, err,
    handle_errors, out, pct, printable, say_interrupted, set_keys,
)


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
        Optional[Path], typer.Argument(metavar="[CONFIG]", help="A YAML config; default: the built-in digits config.")
    ] = None,
    keep: Annotated[Optional[str], typer.Option("--keep", help="keep_prob values: --keep 0.25,0.5,1")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Dropout variants: --variant inverted,vanilla,gaussian,dropconnect")] = None,
    norm: Annotated[Optional[str], typer.Option("--norm", help="Normalizations: --norm none,batchnorm,layernorm")] = None,
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
    from dropcli.config.schema import parse_sweep_values, with_sweep
    from dropcli.sweep.executors import make_executor
    from dropcli.report.format import plural
    from dropcli.sweep.grid import plan_sweep, run_sweep

    flags = {"--keep": ("dropout.keep_prob", keep), "--variant": ("dropout.variant", variant),
             "--norm": ("model.normalization", norm), "--seeds": ("seed", seeds)}
    check_set_keys(set_, {key: f"{flag} {value}" for flag, (key, value) in flags.items() if value is not None})
    config = config_from_args(config_path, None)
    grid = {}
    for flag, (key, value) in flags.items():
        if value is not None:
            grid.update(parse_sweep_values([f"{key}={value}"], source=flag))
    grid.update(parse_sweep_values(set_ or []))
    if grid:
        config = with_sweep(config, grid)
    check_runs_dir(runs_dir)
    plan = plan_sweep(config, runs_dir)
    executor = make_executor(executor_name, jobs=jobs, scheduler=scheduler)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    kept = []  # failed or diverged earlier, not run again
    progress = Progress(
        TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(), console=err,
    )
    task = progress.add_task("runs", total=len(plan.runs), last="")

    def on_event(kind, run, summary):
        if kind == "start":  # the data is checked: from here on the sweep writes
            where = f" on {executor.description}" if executor.description else ""
            err.print(f"sweep {plan.sweep_id}: {plural(len(plan.runs), 'run')} -> {printable(plan.path)}{where}",
                      markup=False, soft_wrap=True)
            progress.start()
            return
        status = summary.get("status")
        if kind == "wait":
            progress.update(task, last=f"{run.run_id}: another process is training it; waiting")
            return
        if kind == "skip" and status != "completed":
            kept.append(status)
        val = (summary.get("final") or {}).get("val_acc")
        label = (f"skipped ({status})" if kind == "skip" else
                 f"{status}, reused from {summary['reused_from']}" if summary.get("reused_from") else status)
        progress.update(task, advance=1, last=f"{run.run_id}: {label}, val {pct(val)}")
        if kind == "done" and status == "failed" and summary.get("reason"):  # why, in one line
            err.print(Text(f"{run.run_id}: failed: {' '.join(str(summary['reason']).split())}", style="red"),
                      soft_wrap=True)

    set_by = {**{key: flag for flag, (key, value) in flags.items() if value is not None},
              **set_keys(set_)}
    try:
        try:
            with config_located(config_path, set_by):
                summaries = run_sweep(plan, executor=executor, force=force, retry_failed=retry_failed, argv=sys.argv,
                                      on_event=on_event)
        finally:
            if progress.live.is_started:
                progress.stop()
    except KeyboardInterrupt:
        from dropcli.sweep.grid import summary_rows

        counts = {}
        for row in summary_rows(plan):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        done = ", ".join(f"{n} {status}" for status, n in counts.items())
        raise typer.Exit(say_interrupted(
            f"interrupted: {done}; the same command resumes the sweep (completed runs are kept)")) from None
    _print_sweep_table(plan, summaries)
    if kept:
        err.print(f"{plural(len(kept), 'run')} that {' or '.join(sorted(set(kept)))} before "
                  f"{'was' if len(kept) == 1 else 'were'} not run again (--retry-failed runs them again)",
                  soft_wrap=True)
    out.print(f"sweep folder: {printable(plan.path)}", markup=False, soft_wrap=True)
    runs = printable(plan.path.parent)
    out.print(f"next: dropcli plot {runs}   (run ids: dropcli runs {runs})", markup=False,
              soft_wrap=True)
    if any(s.get("status") != "completed" for s in summaries):
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_sweep_table(plan, summaries):
    from dropcli.cli.runs import print_table, status_text
    from dropcli.report.format import plural

    varying = [k for k, v in plan.axes.items() if len(v) > 1]
    # keep_prob and drop rate side by side, after the other swept values and before seed
    keys = [k for k in varying if k not in ("dropout.keep_prob", "seed")]
    keys += [k for k in ("dropout.keep_prob", "seed") if k in varying]
    header = [k.rsplit(".", 1)[-1] for k in keys]  # keep_prob, not dropout.keep_prob
    if "dropout.keep_prob" in varying:
        header.insert(keys.index("dropout.keep_prob") + 1, "drop rate")
    header += ["final val", "best val", "test acc", "train-val gap", "status"]
    rows = []
    for run, s in zip(plan.runs, summaries):
        final, best, test = s.get("final") or {}, s.get("best") or {}, s.get("test") or {}
        gap = None
        if final.get("train_acc") is not None and final.get("val_acc") is not None:
            gap = final["train_acc"] - final["val_acc"]
        cells = [_value(run.values[k]) for k in keys]
        if "dropout.keep_prob" in varying:
            cells.insert(keys.index("dropout.keep_prob") + 1, f"{1 - run.values['dropout.keep_prob']:.3g}")
        cells += [pct(final.get("val_acc")), pct(best.get("val_acc")), pct(test.get("acc")), pct(gap),
                  status_text(s.get("status", "?"))]
        rows.append(cells)
    print_table(f"sweep {plan.sweep_id}: {plural(len(rows), 'run')}", header, rows, same=("status",),
                right=("final val", "best val", "test acc", "train-val gap"))


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(list(v) if isinstance(v, tuple) else v)
