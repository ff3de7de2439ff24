"""Commands that read stored runs: ``dropcli eval`` (Monte-Carlo dropout on one run),
``dropcli plot`` (figures and reports), ``dropcli runs`` (the list).

Registered in ``cli.py``; like the rest of the CLI, nothing heavy at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from .cli import app, err, handle_errors, out, pct


@app.command(name="eval")
@handle_errors
def eval_(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    mc: Annotated[str, typer.Option("--mc", help="Numbers T of stochastic passes to average.")] = "1,5,10,50,100",
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Independent repeats per T (error bars).")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Monte-Carlo masks.")] = 0,
):
    """Weight scaling vs Monte-Carlo dropout averaging on a trained run.

    Accuracy of the deterministic test-time pass and of averaging the softmax of T passes
    with fresh dropout masks (repeated for error bars), plus the predictive entropy of
    right and wrong predictions. Writes RUN/mc_eval.json and RUN/mc_eval.png.

    Example:  dropcli eval runs/digits-1a2b3c4d --mc 1,10,50,100 --repeats 5
    """
    from .errors import ConfigError
    from .mc_eval import evaluate_run

    try:
        ts = sorted({int(t) for t in mc.split(",") if t.strip()})
    except ValueError:
        raise ConfigError(f"--mc {mc}: expected whole numbers separated by commas, e.g. 1,10,100") from None
    if not ts or ts[0] < 1:
        raise ConfigError(f"--mc {mc}: every T must be at least 1")
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run}: not a run folder (no config.yaml)")
    with err.status(Text(f"evaluating {run.name}...")):
        result = evaluate_run(run, ts, repeats, seed)
    for name, s in result["splits"].items():
        table = Table(title=f"{name}: keep_prob {result['keep_prob']:g} (drop rate {result['drop_rate']:g}), "
                            f"{result['variant']}; weight scaling {pct(s['weight_scaling_acc'])}")
        for col in ("T", "MC accuracy (mean)", "95% CI", "N"):
            table.add_column(col, justify="right")
        for m in s["mc"]:
            table.add_row(str(m["T"]), pct(m["mean"]), "-" if m["ci95"] is None else f"±{100 * m['ci95']:.2f}%", str(m["n"]))
        out.print(table)
        e = s["entropy"]
        if e["mean_entropy_wrong"] is not None and e["mean_entropy_correct"] is not None:
            out.print(f"  predictive entropy (T={result['ts'][-1]}): right {e['mean_entropy_correct']:.3f}, "
                      f"wrong {e['mean_entropy_wrong']:.3f} nats; AUROC of entropy for errors "
                      f"{e['auroc_entropy_vs_error']:.3f} ({e['errors']} errors of {e['examples']})")
    out.print(f"wrote {run / 'mc_eval.json'} and {run / 'mc_eval.png'}", markup=False)


@app.command()
@handle_errors
def plot(
    runs_dir: Annotated[Path, typer.Argument(metavar="[RUNS_DIR]", help="The runs folder.")] = Path("runs"),
):
    """Write curves, sweep figures, expectation checks and an index report into RUNS_DIR.

    Example:  dropcli plot runs/   (then open runs/report.html)
    """
    from .report import plot_all

    result = plot_all(runs_dir)
    for warning in result.warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning))
    out.print(f"wrote {len(result.files)} files; open {runs_dir / 'report.html'}", markup=False)


@app.command()
@handle_errors
def runs(
    runs_dir: Annotated[Path, typer.Argument(metavar="[RUNS_DIR]", help="The runs folder.")] = Path("runs"),
):
    """List runs with status, key parameters, accuracies and time.

    Statuses: completed, diverged, interrupted, failed, corrupt (unreadable
    summary.json), running, crashed (stopped without a summary), pending.
    Problems in run folders (a torn metrics line, a corrupt file, a file
    dropcli did not write) follow the table as warnings.

    Example:  dropcli runs runs/
    """
    from .errors import RunStoreError
    from .runs import find_runs, read_run

    if not runs_dir.is_dir():
        raise RunStoreError(f"{runs_dir}: {'not a folder' if runs_dir.exists() else 'no such folder'}")
    paths = find_runs(runs_dir)
    if not paths:
        raise RunStoreError(f"{runs_dir}: no runs found (run `dropcli train` or `dropcli sweep` first)")
    table = Table(title=str(runs_dir))
    for col in ("run", "status", "keep_prob", "variant", "norm", "seed", "epochs", "final val", "best val", "time"):
        table.add_column(col)
    warnings = []
    for path in paths:
        name = str(path.relative_to(runs_dir))
        try:
            r = read_run(path)
        except RunStoreError as e:
            warnings.append(str(e))
            table.add_row(name, "unreadable", *["-"] * 8)
            continue
        warnings += r.warnings
        table.add_row(*map(Text, (name, r.status, *_run_cells(r))))
    out.print(table)
    for warning in warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning))


def _run_cells(r) -> list[str]:
    """The table cells of a run, whatever types a damaged file gave its values."""
    d = lambda v: v if isinstance(v, dict) else {}  # noqa: E731
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    s = d(r.summary)
    final, best = d(s.get("final")), d(s.get("best"))
    epoch = r.metrics[-1].get("epoch") if r.metrics else 0
    return [
        str(r.value("dropout.keep_prob")), str(r.value("dropout.variant")), str(r.value("model.normalization")),
        str(r.value("seed")), f"{epoch}/{r.value('train.epochs')}",
        *[pct(v) if num(v) else "-" for v in (final.get("val_acc"), best.get("val_acc"))],
        f"{s['wall_time']:.1f}s" if num(s.get("wall_time")) else "-",
    ]
