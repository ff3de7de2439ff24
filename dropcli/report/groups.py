"""A sweep's runs grouped into replicates (runs that differ only in ``seed``), the
metrics whose mean and 95% t-interval over the seeds the sweep figures and reports show,
and comparisons of two settings paired by seed (the report's tables and its verdict).

Reads ``RunRecord``s (``dropcli.store.runs``) only; the statistics come from ``dropcli.evidence.stats``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from dropcli.store.runs import RunRecord
from dropcli.evidence.stats import Stat, mean_ci


def _get(summary: dict, section: str, key: str):
    """A number of summary.json (``runs.read_run`` has left out values of a wrong type)."""
    part = summary.get(section)
    value = part.get(key) if isinstance(part, dict) else None
    return value if _is_number(value) else None


def _gap(summary: dict):
    tr, va = _get(summary, "final", "train_acc"), _get(summary, "final", "val_acc")
    return None if tr is None or va is None else tr - va


# metric -> (what it is, how to read it from summary.json)
METRICS = {
    "final_val": ("final val acc", lambda s: _get(s, "final", "val_acc")),
    "best_val": ("best val acc", lambda s: _get(s, "best", "val_acc")),
    "gap": ("train - val gap (final epoch)", _gap),
    "final_train": ("final train acc", lambda s: _get(s, "final", "train_acc")),
}


KEEP = "dropout.keep_prob"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def keep_prob_of(run: RunRecord) -> float | None:
    k = run.value("dropout.keep_prob", (run.summary or {}).get("keep_prob"))
    return float(k) if isinstance(k, (int, float)) else None


@dataclass
class Group:
    """The runs of a sweep that differ only in ``seed``: replicates of one setting."""

    values: dict  # varying swept parameter (dotted key) -> value; never seed
    keep_prob: float | None
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def included(self) -> list[RunRecord]:
        """The runs that count in the statistics: completed ones."""
        return [r for r in self.runs if r.status == "completed"]

    def stat(self, metric: str) -> Stat:
        return mean_ci(self.samples(metric))

    def samples(self, metric: str) -> list[float]:
        """The metric of each completed run (one per seed), missing values left out."""
        read = METRICS[metric][1]
        values = [read(r.summary or {}) for r in self.included]
        return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]

    def value(self, key: str):
        """The group's value of a swept key (keep_prob also when it is not swept)."""
        return self.keep_prob if key == KEEP else self.values.get(key)

    def label(self, keys) -> str:
        """``key=value`` for the given dotted keys, by their last part."""
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={format_value(self.values.get(k))}" for k in keys)


@dataclass
class SweepGroups:
    varying: list[str]  # swept keys except seed whose values differ between runs
    groups: list[Group]

    def panel_keys(self) -> list[str]:
        return [k for k in ("dropout.variant", "model.normalization") if k in self.varying]

    def x_key(self) -> str | None:
        """The axis the sweep figures plot against: keep_prob if it varies, else the first
        varying numeric key, else the first varying key; None if nothing but seed varies."""
        numeric = [k for k in self.varying if all(_is_number(g.value(k)) for g in self.groups)]
        return KEEP if KEEP in self.varying else (numeric or self.varying or [None])[0]

    def numeric_axes(self) -> list[str]:
        """The varying keys other than keep_prob whose every value is a number (data.num_train,
        model.reg, ...): each gets a figure against it (``report.figures.axis``)."""
        return [k for k in self.varying if k != KEEP and all(_is_number(g.value(k)) for g in self.groups)]

    def twin(self, grp: Group, key: str, wanted) -> Group | None:
        """The group with ``grp``'s values except ``key``, whose value ``wanted(group)`` accepts."""
        same = [k for k in grp.values if k != key]
        return next((g for g in self.groups if g is not grp and wanted(g)
                     and all(g.values.get(k) == grp.values.get(k) for k in same)), None)

    def baseline(self, grp: Group) -> Group | None:
        """The keep_prob = 1 group with ``grp``'s other values: what dropout is compared with."""
        return self.twin(grp, KEEP, lambda g: g.keep_prob == 1)

    def series_keys(self, x: str | None = KEEP) -> list[str]:
        """The varying keys that tell the lines of a figure against ``x`` apart."""
        return [k for k in self.varying if k != x]

    def by(self, keys) -> dict[str, list[Group]]:
        """Groups split by the values of ``keys`` (label -> groups sorted by keep_prob)."""
        out: dict[str, list[Group]] = {}
        for g in self.groups:
            out.setdefault(g.label(keys), []).append(g)
        return {k: sorted(v, key=lambda g: (g.keep_prob is None, g.keep_prob or 0)) for k, v in out.items()}


def paired(runs: list[RunRecord], base: list[RunRecord], read) -> Stat:
    """Mean and 95% CI over seeds of ``read(summary) - read(twin's summary)``, where the twin
    is the run of ``base`` with the same seed; runs without a twin (or a number) are left out."""
    twins = {}
    for r in base:
        if r.value("seed") is not None:
            twins.setdefault(r.value("seed"), r)
    diffs = []
    for r in runs:
        twin = twins.get(r.value("seed")) if r.value("seed") is not None else None
        a, b = read(r.summary or {}), read(twin.summary or {}) if twin else None
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            diffs.append(a - b)
    return mean_ci(diffs)


def _key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def group_sweep(spec: dict, runs: list[RunRecord]) -> SweepGroups:
    """Group a sweep's runs by every swept value except ``seed`` (the replicates).

    Values are read from each run's resolved config, falling back to sweep.yaml's
    ``runs[].values``; groups keep the order in which the grid first reaches them."""
    spec_values = {str(e.get("run_id")): e.get("values") or {} for e in spec.get("runs") or [] if isinstance(e, dict)}
    axes = [k for k in (spec.get("axes") or {}) if k != "seed"]

    def values_of(run):
        fallback = spec_values.get(run.run_id, {})
        return {k: run.value(k, fallback.get(k)) for k in axes}

    all_values = [values_of(r) for r in runs]
    varying = [k for k in axes if len({_key(v[k]) for v in all_values}) > 1]
    groups: dict[str, Group] = {}
    for run, values in zip(runs, all_values):
        picked = {k: values[k] for k in varying}
        g = groups.setdefault(_key(picked), Group(picked, keep_prob_of(run)))
        g.runs.append(run)
    return SweepGroups(varying, list(groups.values()))
