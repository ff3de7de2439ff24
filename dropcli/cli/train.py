"""``dropcli train``: train one network, store the run, print its summary.

Registered in ``cli.py``; like the rest of the CLI, nothing heavy at import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from dropcli.cli.app import (
    EXIT_RUN_FAILED, RunsDir, SetOpt, app, check_runs_dir, config_from_args, config_located, err, handle_errors, out,
    pct, printable, say_interrupted, set_keys,
)


@app.command()
@handle_errors
def train(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="A YAML config (see configs/).")],
    set_: SetOpt = None,
    runs_dir: RunsDir = Path("runs"),
    name: Annotated[Optional[str], typer.Option("--name", help="Run name (the folder is NAME-<hash8>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Train again even if this exact run already completed.")] = False,
):
    """Train one network and store the run.

    Example:  dropcli train configs/default.yaml --set dropout.keep_prob=0.8
    """
    from dropcli.experiment import run_id, train_run

    config = config_from_args(config_path, set_, name)
    check_runs_dir(runs_dir)
    epochs = config.train.epochs
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[live]}"),
        TimeElapsedColumn(), console=err,
    )
    task = progress.add_task(f"{run_id(config)} epochs", total=epochs, live="")

    def on_record(rec):
        if rec["kind"] != "epoch":
            return
        progress.start()  # on the first record: nothing is shown for input that fails early
        loss = "-" if rec["train_loss"] is None else f"{rec['train_loss']:.3f}"
        progress.update(
            task, completed=rec["epoch"], live=f"loss {loss}  train {pct(rec['train_acc'])}  val {pct(rec['val_acc'])}"
        )

    def stop_progress():  # a Progress that never started would still print a blank line
        if progress.live.is_started:
            progress.stop()

    try:
        with config_located(config_path, set_keys(set_)):
            summary = train_run(config, runs_dir, argv=sys.argv, force=force, callback=on_record)
    except KeyboardInterrupt:
        stop_progress()
        raise typer.Exit(say_interrupted(
            f"interrupted: {printable(runs_dir / run_id(config))} is marked interrupted (what was measured is kept); "
            "the same command trains it again")) from None
    finally:
        stop_progress()
    _print_run_summary(summary, runs_dir / summary["run_id"], config)
    if summary.get("status") != "completed":
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_run_summary(summary, path, config):
    if summary.get("reused_from"):
        err.print(f"already completed in {printable(summary['reused_from'])}; linked its files in (use --force to "
                  f"train again): {printable(path)}", markup=False, soft_wrap=True)
    elif summary.get("skipped"):
        err.print(f"already completed (use --force to train again): {printable(path)}", markup=False, soft_wrap=True)
    table = Table(title=f"run {summary['run_id']}", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column()
    best, final, test = summary.get("best") or {}, summary.get("final") or {}, summary.get("test") or {}
    rows = [
        ("status", summary.get("status")),
        ("keep_prob / drop rate", f"{summary.get('keep_prob')} / {summary.get('drop_rate'):.3g}"),
        ("input keep_prob", summary.get("input_keep_prob")),
        ("variant / normalization", f"{summary.get('variant')} / {summary.get('normalization')}"),
        ("seed", config.seed),
        ("epochs", f"{summary.get('epochs_completed')} of {summary.get('epochs')}"),
        ("final train / val acc", f"{pct(final.get('train_acc'))} / {pct(final.get('val_acc'))}"),
        ("best val acc (epoch)", f"{pct(best.get('val_acc'))} ({best.get('epoch')})"),
        ("test acc (best-val params)", pct(test.get("acc"))),
        ("wall time", f"{summary.get('wall_time', 0):.1f} s"),
    ]
    if summary.get("reason"):
        rows.append(("reason", summary["reason"]))
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)
    out.print(f"run folder: {printable(path)}", markup=False, soft_wrap=True)
