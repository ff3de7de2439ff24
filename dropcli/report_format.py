"""How numbers, statuses and paths read in a report (``dropcli.report``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .runs import RunRecord
from .stats import Stat


def num(v, digits=4) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-" if v is None else str(v)
    return f"{v:.{digits}g}"


def pct(v) -> str:
    return f"{100 * v:.2f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def pm(stat: Stat) -> str:
    """Mean ± CI half-width in %, e.g. ``91.20 ± 1.34``."""
    if not stat.n:
        return "-"
    return f"{100 * stat.mean:.2f} ± " + (f"{100 * stat.ci:.2f}" if stat.n > 1 else "n/a")


def counts(runs: list[RunRecord]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in runs).items(), key=lambda x: -x[1]))


def drop_rate(keep) -> str:
    return num(round(1 - keep, 12)) if isinstance(keep, (int, float)) else "-"


def existing(paths) -> list[Path]:
    return [p for p in paths if p.exists()]
