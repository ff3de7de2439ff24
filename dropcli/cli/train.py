"""``dropcli train``: train one network, store the run, print its summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from dropcli.cli.app import (
    EXIT_RUN_FAILED, RunsDir, SetOpt, app, config_located, err, handle_errors, out, pct, printable, say_interrupted,
    stopping,
)
from dropcli.report.format import examples_text
from dropcli.store.listing import check_runs_dir


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
    from dropcli.config import config_from
    from dropcli.config.overrides import set_keys
    from dropcli.experiment.build import run_id
    from dropcli.experiment.run import train_run

    config = config_from(config_path, set_, name)
    check_runs_dir(runs_dir)
    progress = _Progress(run_id(config), config.train.epochs)
    try:
        with stopping(progress.bar), config_located(config_path, set_keys(set_)):
            summary = train_run(config, runs_dir, argv=sys.argv, force=force, callback=progress.on_record)
    except KeyboardInterrupt:
        raise typer.Exit(say_interrupted(
            f"interrupted: {printable(runs_dir / run_id(config))} is marked interrupted (what was measured is kept); "
            "the same command trains it again")) from None
    _print_run_summary(summary, runs_dir / summary["run_id"], config)
    if summary.get("status") != "completed":
        raise typer.Exit(EXIT_RUN_FAILED)


class _Progress:
    """The run's progress bar on stderr, one step per epoch record."""

    def __init__(self, run_id: str, epochs: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[live]}"), TimeElapsedColumn(), console=err)
        self.task = self.bar.add_task(f"{run_id} epochs", total=epochs, live="")

    def on_record(self, rec):
        if rec["kind"] == "examples":
            err.print(f"data: {rec['dataset']}, {examples_text(rec)}", markup=False, highlight=False)
        if rec["kind"] != "epoch":
            return
        self.bar.start()  # on the first record: nothing is shown for input that fails early
        loss = "-" if rec["train_loss"] is None else f"{rec['train_loss']:.3f}"
        self.bar.update(self.task, completed=rec["epoch"],
                        live=f"loss {loss}  train {pct(rec['train_acc'])}  val {pct(rec['val_acc'])}")


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
        ("examples", examples_text(summary.get("examples"))),
        ("epochs", f"{summary.get('epochs_completed')} of {summary.get('epochs')}"
                   + (f", stopped early: {summary.get('stop_reason')}" if summary.get("stopped_early") else "")),
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
