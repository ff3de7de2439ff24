"""How numbers, statuses and paths read in a report (``dropcli.report.plot``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the CLI imports pct and plural without NumPy
    from dropcli.evidence.stats import Stat
    from dropcli.store.runs import RunRecord


def num(v, digits=4) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-" if v is None else str(v)
    return f"{v:.{digits}g}"


def pct(v, digits: int = 2, unit: str = "") -> str:
    """A fraction as a percentage: ``91.20`` in a report's % column; the CLI asks for
    ``digits=1, unit="%"``: ``91.2%``. Anything but a number is ``-``."""
    return f"{100 * v:.{digits}f}{unit}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def pm(stat: Stat, signed: bool = False) -> str:
    """Mean ± CI half-width in %, e.g. ``91.20 ± 1.34``; ``signed``: a paired difference
    over seeds, e.g. ``+1.20 ± 0.85``.

    An interval of 0.00 says only that the N values were all the same (accuracies move in
    steps of one example), so it says so: ``97.33 ± 0.00 (all 3 seeds tied)``."""
    if not stat.n:
        return "-"
    mean = f"{100 * stat.mean + 0.0:{'+' if signed else ''}.2f}".replace("-0.00", "+0.00" if signed else "0.00")
    if stat.n == 1:
        return f"{mean} ± n/a"
    ci = f"{100 * stat.ci:.2f}"
    seeds = "both seeds" if stat.n == 2 else f"all {stat.n} seeds"
    tied = f"the same Δ for {seeds}" if signed and mean != "+0.00" else f"{seeds} tied"
    return f"{mean} ± {ci}" + (f" ({tied})" if ci == "0.00" else "")


def plural(n: int, word: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def counts(runs: list[RunRecord]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in runs).items(), key=lambda x: -x[1]))


def drop_rate(keep) -> str:
    return num(round(1 - keep, 12)) if isinstance(keep, (int, float)) else "-"


def failure(path: Path, e: Exception) -> str:
    """The warning of a figure or report that could not be made, in one line."""
    return f"{path}: could not plot ({type(e).__name__}: {e})".splitlines()[0]


def existing(paths) -> list[Path]:
    return [p for p in paths if p.exists()]


def examples_cell(examples, split: str) -> str:
    """A run's examples of ``split`` (summary.json's ``examples``): ``300 of 4,000`` (a
    subsample of what the dataset offered), ``4,000`` (all of it), ``-`` (not recorded)."""
    n = examples.get(split) if isinstance(examples, dict) else None
    if not isinstance(n, int) or isinstance(n, bool):
        return "-"
    pool = examples.get(f"{split}_pool")
    return f"{n:,}" + (f" of {pool:,}" if isinstance(pool, int) and not isinstance(pool, bool) and pool != n else "")


def examples_text(examples) -> str:
    """summary.json's ``examples`` in a line: ``train 300 of 4,000 · val 1,000 · test 297``
    (``of`` only where ``data.num_train`` / ``num_val`` took a subsample); ``-`` if absent."""
    parts = [f"{split} {cell}" for split in ("train", "val", "test")
             if (cell := examples_cell(examples, split)) != "-" and (split != "test" or cell != "0")]
    return " · ".join(parts) or "-"


def epochs_cell(done, total, summary) -> str:
    """``71/80 early stop`` where ``train.patience`` stopped the run, else ``80/80``."""
    stopped = isinstance(summary, dict) and summary.get("stopped_early") is True
    return f"{done}/{total}" + (" early stop" if stopped else "")


def patience_text(saved: dict) -> str:
    """What early stopping saved (``store.early_stop.patience_savings``), in a sentence."""
    share = f"{saved['saved_s'] / saved['full_s']:.0%} of " if saved["full_s"] else ""
    return (f"train.patience stopped {saved['stopped']} of {plural(saved['runs'], 'run')} early: about "
            f"{saved['saved_s']:.1f} s of training saved ({share}{saved['full_s']:.1f} s had every run trained all "
            "its epochs)")
