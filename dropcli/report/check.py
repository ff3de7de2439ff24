"""Write `dropcli check` results: checks.json, report.md and expectation.png in one folder.

The folder is ``RUNS_DIR/checks/<UTC timestamp>/``; `dropcli plot` links its report from
the index. Files are written atomically.
"""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

from dropcli.report.figures.common import new_figure, save_figure
from dropcli.store.files import atomic_write_text, write_json

LABEL = {"train_mean": "train-time mean", "train_var": "train-time variance", "dropped_fraction": "fraction dropped",
         "test_mean": "test-time mean"}


def _applies(q) -> bool:
    return isinstance(q, dict) and q.get("applicable", True)


def _cells(q) -> tuple[str, str]:
    """'measured (predicted)' and 'z' of a quantity, or 'n/a' for one the variant does not predict."""
    if not _applies(q):
        return "n/a", "-"
    return f"{q['measured']:.4f} ({q['predicted']:.4f})", f"{q['z']:+.2f}"


def _sci(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def grad_result(g: dict) -> str:
    """'pass (rel. error)', 'pass (abs. difference)', 'pass (rel. error and abs. difference)' or 'FAIL'."""
    return f"pass ({g['passed_by']})" if g["pass"] else "FAIL"


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
    firsts = {g["kind"]: g for g in results["gradients"]}.values()  # one row per kind: layer, net
    floors = "; ".join(f"{'whole nets' if g['kind'] == 'net' else 'layers'}: " + (
        f"{g['rel_floor']:.0e} = {g['atol']:.0e} / {g['threshold']:.0e}" if g["atol"] else "0, so every entry")
        for g in firsts)
    lines = [
        f"# dropcli check: {verdict}",
        "",
        f"Expectation check on x = N(0, 1) + 10 (500 x 500, seed {results['seed']}): each quantity a variant",
        f"predicts must lie within {results['z_tol']:g} standard errors of its prediction (n/a: not predicted by",
        "that variant). DropConnect is checked on the output of a 500 -> 500 affine layer with mean weights",
        "(1 + N(0, 1/4)) / 500; Gaussian noise drops nothing, and a Bernoulli mask's variance follows from its",
        "mean and the fraction it drops.",
        "",
        "Note: \"fraction dropped\" is measured among the non-zero inputs (a zero looks the same kept or dropped). "
        "cs231n's notebook docstring meant `p` as the probability of keeping a unit, but some write-ups (one of "
        "the blog posts dropcli started from among them) read it as the drop rate, so dropcli always says "
        "keep_prob and drop rate = 1 - keep_prob explicitly.",
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
        "Relative error |a - n| / (|a| + |n|) per entry (cs231n's), maximised over the entries whose",
        f"|a| + |n| exceeds a floor of atol / threshold ({floors}): below",
        "it, threshold x (|a| + |n|) is smaller than the numeric gradient's absolute accuracy (finite differences",
        "resolve a whole net's gradient to ~1e-10), so a relative error there measures the finite difference, not",
        "the gradient. A check passes when every entry is within atol + threshold x (|a| + |n|); the result says",
        "which criterion the check meets: rel. error <= threshold, largest absolute difference (max abs diff)",
        "<= atol, or both. The norm-wise error ||a - n|| / (||a|| + ||n||) is shown for comparison.",
        "",
        "| check | rel. error | threshold | max abs diff | atol | norm-wise | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in results["gradients"]:
        lines.append(
            f"| {g['name']} | {_sci(g['rel_error'])} | {g['threshold']:.0e} | {g['max_abs_diff']:.1e} "
            f"| {g['atol']:g} | {_sci(g['normwise'])} | {grad_result(g)} |"
        )
    return "\n".join(lines) + "\n"


YLABEL = {"train_mean": "mean of the train-time output", "train_var": "variance of the train-time output",
          "dropped_fraction": "fraction of non-zero inputs dropped", "test_mean": "mean of the test-time output"}


def _write_figure(results: dict, path: Path) -> None:
    save_figure(expectation_figure(results), path)


def expectation_figure(results: dict):
    """Measured (markers, bars of z_tol standard errors) vs predicted (dotted) per quantity and
    keep_prob, one marker shape per variant, with the measured input mean as a dashed line."""
    from matplotlib.lines import Line2D

    rows = results["expectation"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    panels = [q for q in ("train_mean", "train_var", "test_mean", "dropped_fraction")
              if any(_applies(r.get(q)) for r in rows)]
    input_mean = rows[0]["input_mean"]  # one input x for every row
    # Variants that predict the same value (inverted, gaussian and dropconnect's means, say) would
    # hide each other: shift each variant sideways by a fraction of the gap between keep_probs.
    keeps = sorted({r["keep_prob"] for r in rows})
    dodge = 0.12 * min((b - a for a, b in pairwise(keeps)), default=0.5)
    # The reference line's label: in the widest gap between keep_probs, or right of a single one.
    gap = max(pairwise(keeps), key=lambda g: g[1] - g[0], default=(keeps[0] + 1.5 * dodge, keeps[0] + 3 * dodge))
    label_x = sum(gap) / 2
    styles = list(zip(variants, ("tab:blue", "tab:orange", "tab:green", "tab:red"), "os^D"))
    fig = new_figure(4.3 * len(panels) + 1.8, 4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for j, (variant, color, marker) in enumerate(styles):
        shift = (j - (len(styles) - 1) / 2) * dodge
        rs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["keep_prob"])
        for ax, q in zip(axes, panels):
            shown = [r for r in rs if _applies(r.get(q))]
            if not shown:
                continue
            xs = [r["keep_prob"] + shift for r in shown]
            bars = [results["z_tol"] * r[q]["se"] for r in shown]
            ax.plot(xs, [r[q]["predicted"] for r in shown], ":", marker="_", markersize=14, color=color)
            ax.errorbar(xs, [r[q]["measured"] for r in shown], yerr=bars, fmt=marker, color=color, capsize=3,
                        markersize=5, label=f"{variant} measured")
    for ax, q in zip(axes, panels):
        ax.set_title(LABEL[q] + (" (log scale)" if q == "train_var" else ""))
        if q == "train_var":  # Gaussian noise on units and DropConnect's averaged noise differ by orders
            ax.set_yscale("log")
        if q in ("train_mean", "test_mean"):  # wide and pale: the predictions at the same height stay visible
            ax.axhline(input_mean, color="0.6", linestyle="--", linewidth=2.5, zorder=0, label="input mean")
            ax.text(label_x, input_mean, "input mean", ha="center", va="top", fontsize=8, color="0.4")
        ax.set_xticks(keeps, [f"{k:g}" for k in keeps])
        ax.set_xlim(keeps[0] - 3 * dodge, keeps[-1] + 3 * dodge)
        ax.set_xlabel("keep_prob (drop rate = 1 - keep_prob)")
        ax.set_ylabel(YLABEL[q])
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, marker=m, linestyle="none", label=f"{v} measured") for v, c, m in styles]
    handles += [Line2D([], [], color="k", linestyle=":", marker="_", markersize=14, label="predicted"),
                Line2D([], [], color="0.6", linestyle="--", linewidth=2.5,
                       label=f"input mean\n(measured, {input_mean:.4f})")]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"Dropout expectation check on N(0,1) + 10 (bars: ±{results['z_tol']:g} se; "
                 "variants shifted sideways around each keep_prob)")
    fig.tight_layout(rect=(0, 0, 1 - 1.8 / fig.get_figwidth(), 1))
    return fig
