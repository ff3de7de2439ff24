"""What early stopping (``train.patience``) saved a set of runs, from their summary.json:
the epochs they did not train, priced at each run's own mean epoch time."""

from __future__ import annotations


def patience_savings(summaries: list[dict]) -> dict | None:
    """None if no run used patience; else {"runs": runs with patience, "stopped": those
    that stopped early, "saved_s": estimated training seconds not spent, "full_s":
    estimated seconds had every one of them trained all its epochs}.

    A run's epoch costs ``wall_time / epochs_completed`` (evaluation and start-up included,
    so this slightly overstates the saving on very short runs)."""
    used = [s for s in summaries if isinstance(s, dict) and s.get("patience")
            and _number(s.get("wall_time")) and _count(s.get("epochs_completed")) and _count(s.get("epochs"))]
    if not used:
        return None
    saved = full = 0.0
    for s in used:
        per_epoch = s["wall_time"] / s["epochs_completed"]
        full += per_epoch * max(s["epochs"], s["epochs_completed"])
        if s.get("stopped_early"):
            saved += per_epoch * max(0, s["epochs"] - s["epochs_completed"])
    return {"runs": len(used), "stopped": sum(bool(s.get("stopped_early")) for s in used),
            "saved_s": saved, "full_s": full}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0
