"""Commands that read stored runs: ``dropcli eval`` (Monte-Carlo dropout on one run),
``dropcli plot`` (figures and reports), ``dropcli runs`` (the list).

Registered in ``cli.py``; like the rest of the CLI, nothing heavy at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from dropcli.cli.app import app, err, handle_errors, out, pct


# --- tables that fit the terminal without cutting a cell ----------------------------------


def print_table(heading: str, header: list[str], rows: list[list], *, same=(), droppable=(), right=()) -> None:
    """Print ``heading`` and a table of ``rows`` (str or Text cells) whose cells are never
    cut: a run id must stay whole to be copied into `dropcli eval`.

    Columns named in ``same`` whose cells are equal in every row are left out and named
    in the heading instead ("all: variant inverted"). If the table is wider than the
    terminal, its headers wrap between words, then the columns named in ``droppable`` are
    left out, in that order; a table still too wide is printed whole (the terminal wraps
    its lines) rather than cut. ``right``: the columns aligned right (numbers).
    """
    rows = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
    shown = list(range(len(header)))
    notes = []
    for i, name in enumerate(header):
        if name in same and rows and len({r[i].plain for r in rows}) == 1:
            shown.remove(i)
            notes.append(f"{name} {rows[0][i].plain}")
    if notes:
        heading += f"; all: {', '.join(notes)}"
    table = _table(header, rows, shown, wrap_headers=False, right=right)
    if _width(table) > out.width:
        table = _table(header, rows, shown, wrap_headers=True, right=right)
    for name in droppable:
        if _width(table) <= out.width:
            break
        if name in header and header.index(name) in shown:
            shown.remove(header.index(name))
            table = _table(header, rows, shown, wrap_headers=True, right=right)
    out.print(heading, markup=False, highlight=False)
    width = _width(table)
    if width <= out.width:
        out.print(table)
    else:  # nothing more to leave out: print it whole (the terminal wraps its lines)
        from rich.console import Console

        Console(file=out.file, width=width, force_terminal=out.is_terminal, color_system=out.color_system).print(table)


def _table(header, rows, shown, *, wrap_headers, right=()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for i in shown:
        head = max(map(len, header[i].split())) if wrap_headers else len(header[i])
        table.add_column(header[i], width=max([head] + [r[i].cell_len for r in rows]),
                         justify="right" if header[i] in right else "left")
    for r in rows:
        table.add_row(*[r[i] for i in shown])
    return table


def _width(table: Table) -> int:
    from rich.measure import Measurement

    return Measurement.get(out, out.options.update_width(10_000), table).maximum


def status_text(status) -> Text:
    style = {"completed": "green", "running": "yellow", "pending": "yellow"}.get(status, "red")
    return Text(str(status), style=style)


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
    from dropcli.errors import ConfigError
    from dropcli.evidence.mc_eval import evaluate_run

    try:
        ts = sorted({int(t) for t in mc.split(",") if t.strip()})
    except ValueError:
        raise ConfigError(f"--mc {mc}: expected whole numbers separated by commas, e.g. 1,10,100") from None
    if not ts or ts[0] < 1 or ts[-1] > MAX_T:
        raise ConfigError(f"--mc {mc}: every T must be between 1 and {MAX_T}")
    check_run_dir(run)
    with err.status(Text(f"evaluating {run.name}...")):
        result = evaluate_run(run, ts, repeats, seed)
    if result is None:
        out.print("no dropout layers (keep_prob 1, input keep_prob 1): Monte-Carlo averaging equals weight scaling; "
                  "nothing to compare", markup=False, highlight=False, soft_wrap=True)
        return
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
    out.print("\nwrote")
    for path in (run / "mc_eval.json", run / "mc_eval.png"):
        out.print(f"  {path}", markup=False, highlight=False, soft_wrap=True)


def check_run_dir(run: Path) -> None:
    """RunStoreError (one line) unless ``run`` is a run folder, saying what it is instead."""
    from dropcli.errors import RunStoreError
    from dropcli.store.runs import is_run_dir, is_sweep_dir

    if is_run_dir(run):
        return
    if not run.exists():
        raise RunStoreError(f"{run}: no such folder")
    if not run.is_dir():
        raise RunStoreError(f"{run}: not a run folder but a file; give the folder that holds it"
                            + (f" (dropcli eval {run.parent})" if is_run_dir(run.parent) else ""))
    what = "a sweep folder" if is_sweep_dir(run) else "not a run folder (no config.yaml)"
    raise RunStoreError(f"{run}: {what}; give one of the run folders that `dropcli runs` lists")


def _ci(m: dict) -> str:
    if m["ci95"] is None:
        return "-"
    ci = f"{100 * m['ci95']:.2f}"
    return f"±{ci}%" + (f" (all {m['n']} tied)" if ci == "0.00" else "")


@app.command()
@handle_errors
def plot(
    runs_dir: Annotated[Path, typer.Argument(metavar="[RUNS_DIR]", help="The runs folder.")] = Path("runs"),
):
    """Write curves, sweep figures, expectation checks and an index report into RUNS_DIR.

    Example:  dropcli plot runs/   (then open runs/report.html)
    """
    from dropcli.report.plot import plot_all
    from dropcli.report.format import plural

    result = plot_all(runs_dir)
    for warning in result.warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning), soft_wrap=True)
    out.print(f"wrote {plural(len(result.files), 'file')}; open {runs_dir / 'report.html'}", markup=False,
              soft_wrap=True)


@app.command()
@handle_errors
def runs(
    runs_dir: Annotated[Path, typer.Argument(metavar="[RUNS_DIR]", help="The runs folder.")] = Path("runs"),
):
    """List runs, one table per sweep (in grid order), with status, key parameters, accuracies and time.

    Run ids are never cut, so they can be copied into `dropcli eval`. A value
    shared by every run of a table (status, variant, ...) is named once above
    it; on a narrow terminal the time, norm, epochs and best val columns are
    left out, in that order, before anything would be cut.

    Statuses: completed, diverged, interrupted, failed, corrupt (an unreadable
    summary.json, or run files that do not hold what it promises, such as an
    empty params.npz or config.yaml; the next sweep or train trains it again),
    running, crashed (stopped without a summary), pending. Problems in run
    folders (a torn metrics line, a damaged file, a file dropcli did not
    write) follow the table as warnings.

    Example:  dropcli runs runs/
    """
    from dropcli.errors import RunStoreError
    from dropcli.report.format import plural
    from dropcli.store.runs import find_runs, is_run_dir, read_run

    if not runs_dir.is_dir():
        raise RunStoreError(f"{runs_dir}: {'not a folder' if runs_dir.exists() else 'no such folder'}")
    if is_run_dir(runs_dir):
        raise RunStoreError(f"{runs_dir}: this is a run folder; list the runs folder that holds it "
                            f"(dropcli runs {runs_dir.resolve().parent})")
    paths = find_runs(runs_dir)
    if not paths:
        raise RunStoreError(f"{runs_dir}: no runs found (run `dropcli train` or `dropcli sweep` first)")
    folders: dict[Path, list[Path]] = {}  # a sweep (or runs_dir, for single runs) -> its runs
    for path in paths:
        folders.setdefault(path.parent, []).append(path)
    header = ["run", "status", "keep_prob", "drop rate", "variant", "norm", "seed", "epochs", "final val",
              "best val", "time"]
    warnings = []
    for n, (folder, members) in enumerate(folders.items()):
        rows = []
        for path in members if folder == runs_dir else _grid_order(folder, members):
            try:
                r = read_run(path)
            except RunStoreError as e:
                warnings.append(str(e))
                rows.append([path.name, status_text("unreadable"), *["-"] * 9])
                continue
            warnings += r.warnings
            rows.append([path.name, status_text(r.status), *_run_cells(r)])
        what = f"single runs in {runs_dir}" if folder == runs_dir else f"sweep {folder.name}"
        if n:
            out.print()
        print_table(f"{what}: {plural(len(rows), 'run')}", header, rows, same=("status", "variant", "norm", "epochs"),
                    droppable=("time", "norm", "epochs", "best val"), right=("final val", "best val", "time"))
    for warning in warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning), soft_wrap=True)


def _grid_order(sweep_dir: Path, paths: list[Path]) -> list[Path]:
    """A sweep's runs in the order of its grid (sweep.yaml), any others after them."""
    import yaml

    from dropcli.store.runs import listed_runs

    try:
        spec = yaml.safe_load((sweep_dir / "sweep.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError, yaml.YAMLError):
        spec = None  # the runs are still listed, by name
    order = {run_id: i for i, run_id in enumerate(listed_runs(spec))}
    return sorted(paths, key=lambda p: (order.get(p.name, len(order)), p.name))


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
        str(r.value("seed")), f"{epoch}/{r.value('train.epochs')}",
        *[pct(v) if num(v) else "-" for v in (final.get("val_acc"), best.get("val_acc"))],
        f"{s['wall_time']:.1f}s" if num(s.get("wall_time")) else "-",
    ]
