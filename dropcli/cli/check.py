"""``dropcli check``: dropout's expectations and every gradient, checked numerically."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from dropcli.cli.app import EXIT_RUN_FAILED, RunsDir, app, err, handle_errors, out
from dropcli.config.vocabulary import VARIANTS
from dropcli.errors import ConfigError


def _floats(flag, text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text}: expected numbers separated by commas, e.g. 0.25,0.5,1") from None
    bad = [v for v in values if not 0 < v <= 1]
    if not values or bad:
        raise ConfigError(f"{flag} {text}: keep_prob must be in (0, 1] (the probability of keeping a unit)")
    return values


def _choices(flag, text, allowed):
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ConfigError(f"{flag} {text}: expected one or more of {', '.join(allowed)}")
    return values


@app.command()
@handle_errors
def check(
    keep: Annotated[str, typer.Option("--keep", help="keep_prob values to check.")] = "0.25,0.4,0.7",
    variant: Annotated[str, typer.Option("--variant", help="Dropout variants to check.")] = ",".join(VARIANTS),
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the input and the masks.")] = 0,
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
    from dropcli.evidence.checks import run_checks
    from dropcli.report.check import new_check_dir, write_check_report

    keeps = _floats("--keep", keep)
    variants = _choices("--variant", variant, VARIANTS)
    with err.status("checking expectations and gradients..."):
        results = run_checks(keeps, variants, seed)
    _print_expectations(results["expectation"])
    _print_gradient_summary(results["gradients"])
    for r in results["expectation"]:
        for line in r["failures"]:
            out.print(Text(f"FAIL {line}", style="red"))
    folder = new_check_dir(runs_dir)
    write_check_report(results, folder)
    out.print(f"report: {folder / 'report.md'}", markup=False, soft_wrap=True)
    if not results["pass"]:
        raise typer.Exit(EXIT_RUN_FAILED)


_QUANTITIES = {"train_mean": "train mean", "train_var": "train variance", "test_mean": "test mean",
               "dropped_fraction": "fraction dropped"}


def _print_expectations(expectation: list[dict]) -> None:
    """One row per predicted quantity: narrow enough for an 80-column terminal (one space between columns)."""
    table = Table(title="dropout check on x = N(0,1) + 10 (z: deviation in standard errors)",
                  box=None, pad_edge=False, padding=(0, 0, 0, 1), header_style="bold underline")
    for col in ("variant", "keep", "drop", "input mean", "quantity", "measured", "predicted", "z", "ok"):
        table.add_column(col, justify="left" if col in ("variant", "quantity") else "right", no_wrap=True)
    for r in expectation:
        first = True
        for key, label in _QUANTITIES.items():
            q = r.get(key)
            if not q or q.get("applicable", True) is False:
                continue
            block = (r["variant"], f"{r['keep_prob']:g}", f"{r['drop_rate']:g}", f"{r['input_mean']:.4f}")
            table.add_row(
                *(block if first else ("",) * len(block)), label, f"{q['measured']:.5g}", f"{q['predicted']:.5g}",
                f"{q['z']:+.2f}", "[green]pass[/]" if q["pass"] else "[red]FAIL[/]",
            )
            first = False
    out.print(table)


def _print_gradient_summary(grads: list[dict]) -> None:
    """Counts, the worst relative error of layers and of whole nets, and what failed."""
    from dropcli.report.check import grad_result

    def rel(g):
        return "-" if g["rel_error"] is None else f"{g['rel_error']:.1e}"

    failed = [g for g in grads if not g["pass"]]
    out.print(f"gradient checks: {len(grads) - len(failed)}/{len(grads)} pass", markup=False)
    for kind, title in (("layer", "layers"), ("net", "whole nets")):
        rows = [g for g in grads if g["kind"] == kind]
        if not rows:
            continue
        worst = max(rows, key=lambda g: -1 if g["rel_error"] is None else g["rel_error"])
        met = ", ".join(f"{n} {c}" for c, n in Counter(grad_result(g) for g in rows).items())
        floor = f" over entries with |a|+|n| > {worst['rel_floor']:.0e}" if worst["rel_floor"] else ""
        atol = f" (atol {worst['atol']:g})" if worst["atol"] else ""
        out.print(f"  {title}: worst rel. error {rel(worst)}{floor} ({worst['name']}; threshold "
                  f"{worst['threshold']:.0e}), largest abs. difference {max(g['max_abs_diff'] for g in rows):.1e}"
                  f"{atol}; {met}", markup=False)
    for g in failed:
        out.print(Text(f"FAIL {g['name']}: rel. error {rel(g)} (threshold {g['threshold']:.0e}), max abs diff "
                       f"{g['max_abs_diff']:.1e} (atol {g['atol']:g}); worst entry {g['worst_index']}: "
                       f"analytic {g['analytic']:.6g} vs numeric {g['numeric']:.6g}", style="red"))
