"""What every figure shares: a new canvas, atomic PNG writing, and the per-epoch series and
labels that both the run figures (``figures.run``) and the sweep figures (``figures.sweep``) read.

Matplotlib is imported only when a figure is drawn, and only its object API with the Agg
canvas is used (``Figure`` + ``savefig``): no pyplot, so no window, no global figure
registry and nothing to close; a figure is freed when its last reference goes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dropcli.store.files import atomic_write_bytes
from dropcli.store.runs import RunRecord

DPI = 90


def new_figure(width: float, height: float):
    """An empty ``Figure`` of ``width`` x ``height`` inches at ``DPI``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def save_figure(fig, path: Path) -> Path:
    """Render ``fig`` as PNG and replace ``path`` with it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})  # ~20% faster, ~20% larger
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def save_or_remove(fig, path: Path) -> Path | None:
    """``save_figure``, or with no figure (nothing to draw) remove the file an earlier
    ``dropcli plot`` left at ``path``, so that no report links a stale figure."""
    if fig is None:
        Path(path).unlink(missing_ok=True)
        return None
    return save_figure(fig, path)


def metric_column(records: list[dict], key: str) -> np.ndarray:
    """One metric per epoch record as floats; missing or non-finite values are nan."""
    out = [r.get(key) for r in records]
    arr = np.array([v if isinstance(v, (int, float)) else np.nan for v in out], dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def keep_prob_label(keep_prob) -> str:
    """``keep_prob 0.5 (drop rate 0.5)``, for titles and legends."""
    if keep_prob is None:
        return "keep_prob ?"
    return f"keep_prob {keep_prob:g} (drop rate {1 - keep_prob:g})"


# --- diagnostics recorded per epoch (see dropcli.train.diagnostics) ---------------------------


def diagnostics_of(run: RunRecord) -> list[dict]:
    """The epoch records of a run that carry a ``diagnostics`` dict."""
    return [r for r in run.metrics if isinstance(r.get("diagnostics"), dict)]


def layer_order(name: str):
    """Sort key of a layer name: by its number (W1 = input side), then by name."""
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def diagnostic_series(records: list[dict], key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """layer name -> (epochs, values) of one diagnostic, in layer order."""
    names = sorted({n for r in records for n in (r["diagnostics"].get(key) or {})}, key=layer_order)
    out = {}
    for name in names:
        pts = [(r.get("epoch"), (r["diagnostics"].get(key) or {}).get(name)) for r in records]
        pts = [(e, v) for e, v in pts if isinstance(e, (int, float)) and isinstance(v, (int, float))]
        if pts:
            out[name] = tuple(np.array(c, dtype=float) for c in zip(*pts))
    return out
