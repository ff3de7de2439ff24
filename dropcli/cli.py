"""The command line: parse, make one library call, render with rich.

No NumPy here, and library modules are imported inside the commands, so that
``dropcli --help`` starts fast. Bad input of any kind (library ``DropcliError``, a file
the OS refuses, a usage error) becomes one red line on stderr and exit code 2; a run
that failed or diverged exits 1. Ctrl-C or SIGTERM interrupts (runs marked
``interrupted``, exit 130); a second one ends the process at once (runs read ``crashed``).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from . import __version__

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_exc
_NO_ARGS = getattr(_click_exc, "NoArgsIsHelpError", ())
_ABORT = getattr(_click_exc, "Abort", None) or getattr(typer.core, "Abort", ())


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad flag value, missing argument) as one line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as e:
            e.show()
            sys.exit(e.exit_code)
        except _click_exc.ClickException as e:
            ctx = getattr(e, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None else ""
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = " ".join(e.format_message().split())
            err.print(Text("error: ", style="bold red") + Text(f"{where}{message}{hint}"), soft_wrap=True)
            sys.exit(e.exit_code)
        except _ABORT:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    help="Experiments on dropout in fully-connected networks, in pure NumPy.\n\n"
    "Start with:  dropcli sweep --keep 0.25,0.5,1   then   dropcli plot",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = Console(stderr=True)


def _register_subcommands():
    from .cli_data import data_app

    app.add_typer(data_app, name="data")


_register_subcommands()

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def handle_errors(command):
    """Turn library errors into one line and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .errors import DropcliError

        try:
            return command(*args, **kwargs)
        except DropcliError as e:
            _error(str(e))
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # a path the OS refuses: not a folder, no permission, disk full
            where = f"{e.filename}: " if e.filename is not None else ""
            _error(f"{where}{e.strerror or e}")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            err.print(Text("interrupted", style="yellow"))
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _error(message: str) -> None:
    """One line on stderr, whatever the message holds (newlines, control characters)."""
    line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in " ".join(message.split()))
    err.print(Text("error: ", style="bold red") + Text(line), soft_wrap=True)


def _version(value: bool):
    if value:
        out.print(f"dropcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
):
    pass


RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run folders go.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", help="Override a config key: --set model.reg=0.01 (repeatable).")
]


def _load(config_path: Optional[Path], overrides, name=None):
    from .config import apply_overrides, default_config, load_config, with_values

    config = load_config(config_path) if config_path is not None else default_config()
    if overrides:
        config = apply_overrides(config, overrides)
    if name is not None:  # a name is a string, not YAML: --name 1e3 or --name yes mean those characters
        config = with_values(config, {"name": name}, source="--name")
    return config


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def _check_runs_dir(runs_dir: Path) -> None:
    """A runs folder that cannot be one fails before anything is shown or written."""
    from .errors import RunStoreError

    for path in (runs_dir, *runs_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise RunStoreError(f"{runs_dir}: cannot be a runs folder ({path} is a file)")
            return


# --- train ------------------------------------------------------------------------------


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
    from .runner import run_id, train_run

    config = _load(config_path, set_, name)
    _check_runs_dir(runs_dir)
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
            task, completed=rec["epoch"], live=f"loss {loss}  train {_pct(rec['train_acc'])}  val {_pct(rec['val_acc'])}"
        )

    def stop_progress():  # a Progress that never started would still print a blank line
        if progress.live.is_started:
            progress.stop()

    try:
        summary = train_run(config, runs_dir, argv=sys.argv, force=force, callback=on_record)
    except KeyboardInterrupt:
        stop_progress()
        err.print(Text(f"interrupted: {runs_dir / run_id(config)} is marked interrupted (what was measured is "
                       "kept); the same command trains it again", style="yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        stop_progress()
    _print_run_summary(summary, runs_dir / summary["run_id"])
    if summary.get("status") != "completed":
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_run_summary(summary, path):
    if summary.get("reused_from"):
        err.print(f"already completed in {summary['reused_from']}; linked its files in (use --force to train "
                  f"again): {path}", markup=False)
    elif summary.get("skipped"):
        err.print(f"already completed (use --force to train again): {path}", markup=False)
    table = Table(title=f"run {summary['run_id']}", show_header=False)
    best, final, test = summary.get("best") or {}, summary.get("final") or {}, summary.get("test") or {}
    rows = [
        ("status", summary.get("status")),
        ("keep_prob / drop rate", f"{summary.get('keep_prob')} / {summary.get('drop_rate'):.3g}"),
        ("epochs", f"{summary.get('epochs_completed')} of {summary.get('epochs')}"),
        ("final train / val acc", f"{_pct(final.get('train_acc'))} / {_pct(final.get('val_acc'))}"),
        ("best val acc (epoch)", f"{_pct(best.get('val_acc'))} ({best.get('epoch')})"),
        ("test acc (best params)", _pct(test.get("acc"))),
        ("wall time", f"{summary.get('wall_time', 0):.1f} s"),
    ]
    if summary.get("reason"):
        rows.append(("reason", summary["reason"]))
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)
    out.print(f"run folder: {path}", markup=False)


# --- sweep ------------------------------------------------------------------------------


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
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes (BLAS threads are split among them); with --executor dask and no --scheduler, the local cluster's workers.")] = 1,
    executor: Annotated[str, typer.Option(
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
    from .config import parse_sweep_values, with_sweep
    from .executors import make_executor
    from .sweep import plan_sweep, run_sweep

    config = _load(config_path, None)
    flags = {"--keep": ("dropout.keep_prob", keep), "--variant": ("dropout.variant", variant),
             "--norm": ("model.normalization", norm), "--seeds": ("seed", seeds)}
    grid = {}
    for flag, (key, value) in flags.items():
        if value is not None:
            grid.update(parse_sweep_values([f"{key}={value}"], source=flag))
    grid.update(parse_sweep_values(set_ or []))
    if grid:
        config = with_sweep(config, grid)
    _check_runs_dir(runs_dir)
    plan = plan_sweep(config, runs_dir)
    runner = make_executor(executor, jobs=jobs, scheduler=scheduler)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    kept = []  # failed or diverged earlier, not run again
    progress = Progress(
        TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(), console=err,
    )
    task = progress.add_task("runs", total=len(plan.runs), last="")

    def on_event(kind, run, summary):
        if kind == "start":  # the data is checked: from here on the sweep writes
            where = f" on {runner.description}" if runner.name == "dask" else ""
            err.print(f"sweep {plan.sweep_id}: {len(plan.runs)} runs -> {plan.path}{where}", markup=False)
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
        progress.update(task, advance=1, last=f"{run.run_id}: {label}, val {_pct(val)}")

    try:
        try:
            summaries = run_sweep(plan, executor=runner, force=force, retry_failed=retry_failed, argv=sys.argv,
                                  on_event=on_event)
        finally:
            if progress.live.is_started:
                progress.stop()
    except KeyboardInterrupt:
        from .sweep import summary_rows

        counts = {}
        for row in summary_rows(plan):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        done = ", ".join(f"{n} {status}" for status, n in counts.items())
        err.print(Text(f"interrupted: {done}; the same command resumes the sweep (completed runs are kept)",
                       style="yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_sweep_table(plan, summaries)
    if kept:
        err.print(f"{len(kept)} runs that {' or '.join(sorted(set(kept)))} before were not run again "
                  "(--retry-failed runs them again)")
    out.print(f"sweep folder: {plan.path}   next: dropcli plot {plan.path.parent}", markup=False)
    if any(s.get("status") != "completed" for s in summaries):
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_sweep_table(plan, summaries):
    varying = [k for k, v in plan.axes.items() if len(v) > 1]
    table = Table(title=f"sweep {plan.sweep_id}")
    for col in varying:
        table.add_column(col.rsplit(".", 1)[-1])  # keep_prob, not dropout.keep_prob
    if "dropout.keep_prob" in varying:
        table.add_column("drop rate")
    for col in ("final val", "best val", "train-val gap", "status"):
        table.add_column(col, justify="right")
    for run, s in zip(plan.runs, summaries):
        final, best = s.get("final") or {}, s.get("best") or {}
        gap = None
        if final.get("train_acc") is not None and final.get("val_acc") is not None:
            gap = final["train_acc"] - final["val_acc"]
        cells = [str(list(v) if isinstance(v, tuple) else v) for v in (run.values[k] for k in varying)]
        if "dropout.keep_prob" in varying:
            cells.append(f"{1 - run.values['dropout.keep_prob']:.3g}")
        status = s.get("status", "?")
        style = "green" if status == "completed" else "red"
        cells += [_pct(final.get("val_acc")), _pct(best.get("val_acc")), _pct(gap), f"[{style}]{status}[/]"]
        table.add_row(*cells)
    out.print(table)


# --- check ------------------------------------------------------------------------------


def _floats(flag, text):
    from .errors import ConfigError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text}: expected numbers separated by commas, e.g. 0.25,0.5,1") from None
    bad = [v for v in values if not 0 < v <= 1]
    if not values or bad:
        raise ConfigError(f"{flag} {text}: keep_prob must be in (0, 1] (the probability of keeping a unit)")
    return values


def _choices(flag, text, allowed):
    from .errors import ConfigError

    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ConfigError(f"{flag} {text}: expected one or more of {', '.join(allowed)}")
    return values


@app.command()
@handle_errors
def check(
    keep: Annotated[str, typer.Option("--keep", help="keep_prob values to check.")] = "0.25,0.4,0.7",
    variant: Annotated[str, typer.Option("--variant", help="Dropout variants to check.")] = (
        "inverted,vanilla,gaussian,dropconnect"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the input and the masks.")] = 0,
    runs_dir: RunsDir = Path("runs"),
):
    """Check dropout's expectations and every gradient numerically; exit 1 if anything fails.

    The cs231n notebook's check (x = N(0,1) + 10): train-time mean, test-time mean, and the
    fraction dropped (Bernoulli) or the train-time variance (gaussian, dropconnect), each
    against what the variant predicts (n/a where it predicts nothing); then gradient checks
    of every layer and of whole nets (none / batchnorm / layernorm x variant x keep_prob) in
    float64. Writes report.md, checks.json and a figure to RUNS_DIR/checks/<time>/.

    Example:  dropcli check --keep 0.25,0.4,0.7 --variant gaussian,dropconnect
    """
    from .check_report import new_check_dir, write_check_report
    from .checks import run_checks
    from .config import VARIANTS

    keeps = _floats("--keep", keep)
    variants = _choices("--variant", variant, VARIANTS)
    with err.status("checking expectations and gradients..."):
        results = run_checks(keeps, variants, seed)

    # One row per predicted quantity: narrow enough for an 80-column terminal.
    table = Table(title="dropout check on x = N(0,1) + 10 (z: deviation in standard errors)",
                  box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
    for col in ("variant", "keep", "drop", "quantity", "measured", "predicted", "z", "ok"):
        table.add_column(col, justify="left" if col in ("variant", "quantity") else "right", no_wrap=True)
    labels = {"train_mean": "train mean", "train_var": "train variance", "test_mean": "test mean",
              "dropped_fraction": "fraction dropped"}
    for r in results["expectation"]:
        first = True
        for key, label in labels.items():
            q = r.get(key)
            if not q or q.get("applicable", True) is False:
                continue
            table.add_row(
                r["variant"] if first else "", f"{r['keep_prob']:g}" if first else "",
                f"{r['drop_rate']:g}" if first else "", label, f"{q['measured']:.5g}", f"{q['predicted']:.5g}",
                f"{q['z']:+.2f}", "[green]pass[/]" if q["pass"] else "[red]FAIL[/]",
            )
            first = False
    out.print(table)
    grads = results["gradients"]
    failed = [g for g in grads if not g["pass"]]
    worst = {kind: max((g for g in grads if g["kind"] == kind), key=lambda g: g["rel_error"]) for kind in ("layer", "net")}
    out.print(
        f"gradient checks: {len(grads) - len(failed)}/{len(grads)} pass; worst layer rel. error "
        f"{worst['layer']['rel_error']:.1e} ({worst['layer']['name']}, limit {worst['layer']['threshold']:.0e}); "
        f"whole nets: worst rel. error {worst['net']['rel_error']:.1e} (limit {worst['net']['threshold']:.0e}, "
        f"differences below {worst['net']['atol']:.0e} forgiven), largest difference "
        f"{max(g['max_abs_diff'] for g in grads if g['kind'] == 'net'):.1e}, worst norm-wise "
        f"{max(g['normwise'] or 0 for g in grads if g['kind'] == 'net'):.1e}"
    )
    for g in failed:
        out.print(Text(f"FAIL {g['name']}: rel. error {g['rel_error']:.2e} at {g['worst_index']}: "
                       f"analytic {g['analytic']:.6g} vs numeric {g['numeric']:.6g}", style="red"))
    for r in results["expectation"]:
        for line in r["failures"]:
            out.print(Text(f"FAIL {line}", style="red"))
    folder = new_check_dir(runs_dir)
    write_check_report(results, folder)
    out.print(f"report: {folder / 'report.md'}", markup=False)
    if not results["pass"]:
        raise typer.Exit(EXIT_RUN_FAILED)


# --- eval -------------------------------------------------------------------------------


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
                            f"{result['variant']}; weight scaling {_pct(s['weight_scaling_acc'])}")
        for col in ("T", "MC accuracy (mean)", "95% CI", "N"):
            table.add_column(col, justify="right")
        for m in s["mc"]:
            table.add_row(str(m["T"]), _pct(m["mean"]), "-" if m["ci95"] is None else f"±{100 * m['ci95']:.2f}%", str(m["n"]))
        out.print(table)
        e = s["entropy"]
        if e["mean_entropy_wrong"] is not None and e["mean_entropy_correct"] is not None:
            out.print(f"  predictive entropy (T={result['ts'][-1]}): right {e['mean_entropy_correct']:.3f}, "
                      f"wrong {e['mean_entropy_wrong']:.3f} nats; AUROC of entropy for errors "
                      f"{e['auroc_entropy_vs_error']:.3f} ({e['errors']} errors of {e['examples']})")
    out.print(f"wrote {run / 'mc_eval.json'} and {run / 'mc_eval.png'}", markup=False)


# --- plot and runs ------------------------------------------------------------------------


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
        *[_pct(v) if num(v) else "-" for v in (final.get("val_acc"), best.get("val_acc"))],
        f"{s['wall_time']:.1f}s" if num(s.get("wall_time")) else "-",
    ]


_signals_seen = 0


def _interrupt(signum, frame):
    """SIGINT and SIGTERM: the first ends the command the way Ctrl-C does (runs marked
    interrupted, workers stopped, exit 130); a second ends the process at once."""
    global _signals_seen
    _signals_seen += 1
    if _signals_seen == 1:
        raise KeyboardInterrupt
    processes = sys.modules.get("dropcli.executors.processes")
    if processes is not None:
        processes.kill_workers()
    os.write(2, b"\ninterrupted again: stopped at once (runs in progress read 'crashed')\n")
    os._exit(EXIT_INTERRUPTED)


def main():
    import signal

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    app()
