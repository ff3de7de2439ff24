"""Write `dropcli check` results: checks.json, report.md and expectation.png in one folder.

The folder is ``RUNS_DIR/checks/<UTC timestamp>/``; `dropcli plot` links its report from
the index. Files are written atomically.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .runs import atomic_write_text, write_json

LABEL = {"train_mean": "train-time mean", "train_var": "train-time variance", "dropped_fraction": "fraction dropped",
         "test_mean": "test-time mean"}


def _applies(q) -> bool:
    return isinstance(q, dict) and q.get("applicable", True)


def _cells(q) -> tuple[str, str]:
    """'measured (predicted)' and 'z' of a quantity, or 'n/a' for one the variant does not predict."""
    if not _applies(q):
        return "n/a", "-"
    return f"{q['measured']:.4f} ({q['predicted']:.4f})", f"{q['z']:+.2f}"


def new_check_dir(runs_dir: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = Path(runs_dir) / "checks" / stamp
    n = 1
    while path.exists():  # two checks within one second
        n += 1
        path = Path(runs_dir) / "checks" / f"{stamp}-{n}"
    return path


def write_check_report(results: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "checks.json", results)
    figure = out_dir / "expectation.png"
    _write_figure(results, figure)
    atomic_write_text(out_dir / "report.md", render_markdown(results, figure.name))
    return [out_dir / "checks.json", figure, out_dir / "report.md"]


def render_markdown(results: dict, figure_name: str) -> str:
    verdict = "PASS" if results["pass"] else "FAIL"
    lines = [
        f"# dropcli check: {verdict}",
        "",
        f"Expectation check on x = N(0, 1) + 10 (500 x 500, seed {results['seed']}): each quantity a variant",
        f"predicts must lie within {results['z_tol']:g} standard errors of its prediction (n/a: not predicted by",
        "that variant). DropConnect is checked on the output of a 500 -> 500 affine layer with mean weights",
        "(1 + N(0, 1/4)) / 500; Gaussian noise drops nothing, and a Bernoulli mask's variance follows from its",
        "mean and the fraction it drops.",
        "",
        "| variant | keep_prob | drop rate | input mean | train-time mean (pred) | z | train-time variance (pred) | z "
        "| test-time mean (pred) | fraction dropped (pred) | z | test zero fraction | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["expectation"]:
        tm, tv, te, df = (_cells(r.get(q)) for q in ("train_mean", "train_var", "test_mean", "dropped_fraction"))
        lines.append(
            f"| {r['variant']} | {r['keep_prob']:g} | {r['drop_rate']:g} | {r['input_mean']:.4f} "
            f"| {tm[0]} | {tm[1]} | {tv[0]} | {tv[1]} | {te[0]} | {df[0]} | {df[1]} | {r['test_zero_fraction']:.4f} "
            f"| {'pass' if r['pass'] else 'FAIL'} |"
        )
    failures = [f for r in results["expectation"] for f in r.get("failures", [])]
    if failures:
        lines += ["", "Failures:", ""] + [f"- {f}" for f in failures]
    lines += [
        "",
        f"![measured vs predicted across keep_prob]({figure_name})",
        "",
        "## Gradient checks (float64)",
        "",
        "Relative error |a - n| / (|a| + |n|) per entry (cs231n's), maximised; for whole nets",
        "differences below the numeric resolution (atol) are forgiven, and the norm-wise error",
        "||a - n|| / (||a|| + ||n||) and the largest absolute difference are shown too.",
        "",
        "| check | rel. error | threshold | norm-wise | max abs diff | result |",
        "|---|---|---|---|---|---|",
    ]
    for g in results["gradients"]:
        normwise = "-" if g.get("normwise") is None else f"{g['normwise']:.1e}"
        lines.append(
            f"| {g['name']} | {g['rel_error']:.1e} | {g['threshold']:.0e} | {normwise} | {g['max_abs_diff']:.1e} "
            f"| {'pass' if g['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


def _write_figure(results: dict, path: Path) -> None:
    from .figures import new_figure as _figure
    from .figures import save_figure

    rows = results["expectation"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    panels = [q for q in ("train_mean", "train_var", "test_mean", "dropped_fraction")
              if any(_applies(r.get(q)) for r in rows)]
    fig = _figure(4.3 * len(panels), 4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for variant, color in zip(variants, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        rs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["keep_prob"])
        for ax, q in zip(axes, panels):
            shown = [r for r in rs if _applies(r.get(q))]
            if not shown:
                continue
            keeps = [r["keep_prob"] for r in shown]
            measured = [r[q]["measured"] for r in shown]
            bars = [results["z_tol"] * r[q]["se"] for r in shown]
            ax.errorbar(keeps, measured, yerr=bars, fmt="o", color=color, capsize=3, label=f"{variant} measured")
            ax.plot(keeps, [r[q]["predicted"] for r in shown], "--", color=color, label=f"{variant} predicted")
    for ax, q in zip(axes, panels):
        ax.set_title(LABEL[q] + (" (log scale)" if q == "train_var" else ""))
        if q == "train_var":  # Gaussian noise on units and DropConnect's averaged noise differ by orders
            ax.set_yscale("log")
        ax.set_xlabel("keep_prob (drop rate = 1 - keep_prob)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Dropout expectation check on N(0,1) + 10 (bars: ±{results['z_tol']:g} se)")
    fig.tight_layout()
    save_figure(fig, path)
