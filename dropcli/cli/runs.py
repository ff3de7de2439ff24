"""Commands that read stored runs: ``dropcli eval`` (Monte-Carlo dropout on one run),
``dropcli plot`` (figures and reports), ``dropcli runs`` (the list)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from dropcli.cli.app import app, err, handle_errors, out, pct
from dropcli.cli.tables import print_table, status_text
from dropcli.errors import ConfigError
from dropcli.report.format import epochs_cell, examples_cell, plural
from dropcli.store.layout import MC_EVAL_FILE
from dropcli.store.listing import check_run_dir, list_runs

MAX_T, MAX_REPEATS = 10_000, 1000  # stochastic passes per average, repeats per T: more would run for days


@app.command(name="eval")
@handle_errors
def eval_(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    mc: Annotated[str, typer.Option("--mc", help="Numbers T of stochastic passes to average.")] = "1,5,10,50,100",
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=MAX_REPEATS,
                                         help="Independent repeats per T (error bars).")] = 5,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the Monte-Carlo masks.")] = 0,
):
    """Weight scaling vs Monte-Carlo dropout averaging on a trained run.

    Accuracy of the deterministic test-time pass ("weight scaling") of the run's
    best-val checkpoint (params.npz) and of averaging the softmax of T passes with fresh
    dropout masks (repeated for error bars), plus the predictive entropy of right and
    wrong predictions. Writes RUN/mc_eval.json and RUN/mc_eval.png. A run without
    dropout has nothing to compare: eval says so and writes nothing.

    Example:  dropcli eval runs/digits-1a2b3c4d --mc 1,10,50,100 --repeats 5
    """
    from dropcli.experiment.evaluate import evaluate_run
    from dropcli.report.figures.mc_eval import MC_EVAL_PNG, plot_mc_eval

    ts = _passes(mc)
    check_run_dir(run)
    with err.status(Text(f"evaluating {run.name}...")):
        result = evaluate_run(run, ts, repeats, seed)
        figure = None if result is None else plot_mc_eval(result, run / MC_EVAL_PNG)
    if result is None:
        out.print("no dropout layers (keep_prob 1, input keep_prob 1): Monte-Carlo averaging equals weight scaling; "
                  "nothing to compare", markup=False, highlight=False, soft_wrap=True)
        return
    _print_eval(result, repeats)
    out.print("\nwrote")
    for path in (run / MC_EVAL_FILE, figure):
        out.print(f"  {path}", markup=False, highlight=False, soft_wrap=True)


def _passes(mc: str) -> list[int]:
    """``--mc 1,10,100``: the numbers T, sorted, each in 1..MAX_T."""
    try:
        ts = sorted({int(t) for t in mc.split(",") if t.strip()})
    except ValueError:
        raise ConfigError(f"--mc {mc}: expected whole numbers separated by commas, e.g. 1,10,100") from None
    if not ts or ts[0] < 1 or ts[-1] > MAX_T:
        raise ConfigError(f"--mc {mc}: every T must be between 1 and {MAX_T}")
    return ts


def _print_eval(result: dict, repeats: int) -> None:
    out.print(f"run {result['run_id']}: {result['variant']} dropout, keep_prob {result['keep_prob']:g} (drop rate "
              f"{result['drop_rate']:.3g}), input keep_prob {result['input_keep_prob']:g}", markup=False)
    out.print(f"weight scaling: one deterministic test-time pass of the best-val checkpoint (params.npz, epoch "
              f"{result.get('checkpoint_epoch', '?')}); MC: the softmax averaged over T passes with fresh dropout "
              f"masks, {repeats} repeats per T", markup=False)
    for name, s in result["splits"].items():
        rows = [[str(m["T"]), pct(m["mean"]), _ci(m), str(m["n"])] for m in s["mc"]]
        out.print()
        print_table(f"{name} split: weight scaling {pct(s['weight_scaling_acc'])}",
                    ["T", "MC accuracy (mean)", "95% CI", "N"], rows, right=("T", "MC accuracy (mean)", "N"))
        e = s["entropy"]
        if e["mean_entropy_wrong"] is not None and e["mean_entropy_correct"] is not None:
            out.print(f"predictive entropy (T={result['ts'][-1]}): right {e['mean_entropy_correct']:.3f}, "
                      f"wrong {e['mean_entropy_wrong']:.3f} nats; AUROC of entropy for errors "
                      f"{e['auroc_entropy_vs_error']:.3f} ({e['errors']} errors of {e['examples']})")


def _ci(m: dict) -> str:
    """The 95% CI's half-width, two decimals like the reports; an interval of 0.00 says the
    repeats all agreed, so it says so."""
    if m["ci95"] is None:
        return "-"
    ci = pct(m["ci95"], digits=2, unit="")
    return f"±{ci}%" + (f" (all {m['n']} tied)" if ci == "0.00" else "")


@app.command()
@handle_errors
def plot(
    runs_dir: Annotated[Path, typer.Argument(metavar="[RUNS_DIR]", help="The runs folder.")] = Path("runs"),
):
    """Write curves, sweep figures, expectation checks and an index report into RUNS_DIR.

    Figures are drawn on every core; one whose run files (and dropcli) have not
    changed since it was drawn is kept, so plotting again after a sweep grew
    draws only what is new.

    Example:  dropcli plot runs/   (then open runs/report.html)
    """
    from dropcli.report.plot import plot_all

    result = plot_all(runs_dir)
    for warning in result.warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning), soft_wrap=True)
    kept = f" ({plural(len(result.unchanged), 'figure')} already up to date)" if result.unchanged else ""
    out.print(f"wrote {plural(len(result.files), 'file')}{kept}; open {runs_dir / 'report.html'}", markup=False,
              soft_wrap=True)


@app.command()
@handle_errors
def runs(
    runs_dir: Annotated[Path, typer.Argument(metavar="[RUNS_DIR]", help="The runs folder.")] = Path("runs"),
):
    """List runs, one table per sweep (in grid order), with status, key parameters, accuracies and time.

    Run ids are never cut, so they can be copied into `dropcli eval`. A value
    shared by every run of a table (status, variant, ...) is named once above
    it; on a narrow terminal the time, norm, val n, epochs, best val, train n,
    variant, seed and drop rate columns are left out, in that order, before
    anything would be cut.

    Statuses: completed, diverged, interrupted, failed, corrupt (an unreadable
    summary.json, or run files that do not hold what it promises, such as an
    empty params.npz or config.yaml; the next sweep or train trains it again),
    running, crashed (stopped without a summary), pending. Problems in run
    folders (a torn metrics line, a damaged file, a file dropcli did not
    write) follow the table as warnings.

    Example:  dropcli runs runs/
    """
    groups, warnings = list_runs(runs_dir)
    header = ["run", "status", "keep_prob", "drop rate", "variant", "norm", "seed", "train n", "val n", "epochs",
              "final val", "best val", "time"]
    for n, group in enumerate(groups):
        rows = [[path.name, status_text("unreadable"), *["-"] * (len(header) - 2)] if r is None else
                [path.name, status_text(r.status), *_run_cells(r)] for path, r in group.runs]
        what = f"sweep {group.folder.name}" if group.is_sweep else f"single runs in {runs_dir}"
        if n:
            out.print()
        print_table(f"{what}: {plural(len(rows), 'run')}", header, rows,
                    same=("status", "variant", "norm", "train n", "val n", "epochs"),
                    # a sweep's run ids spell out what varies: variant and seed go before keep_prob's drop rate
                    droppable=("time", "norm", "val n", "epochs", "best val", "train n", "variant", "seed",
                               "drop rate"),
                    right=("train n", "val n", "final val", "best val", "time"))
    for warning in warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning), soft_wrap=True)


def _run_cells(r) -> list[str]:
    """The table cells of a run, whatever types a damaged file gave its values."""
    d = lambda v: v if isinstance(v, dict) else {}  # noqa: E731
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    s = d(r.summary)
    final, best = d(s.get("final")), d(s.get("best"))
    epoch = r.metrics[-1].get("epoch") if r.metrics else 0
    keep = r.value("dropout.keep_prob")
    return [
        f"{keep:g}" if num(keep) else str(keep), f"{1 - keep:.3g}" if num(keep) else "-",
        str(r.value("dropout.variant")), str(r.value("model.normalization")),
        str(r.value("seed")), *(examples_cell(d(s.get("examples")), split) for split in ("train", "val")),
        epochs_cell(epoch, r.value("train.epochs"), s),
        pct(final.get("val_acc")), pct(best.get("val_acc")),
        f"{s['wall_time']:.1f}s" if num(s.get("wall_time")) else "-",
    ]
