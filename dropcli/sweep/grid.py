"""A sweep's grid: the cartesian product of a config's ``sweep:`` axes, planned as runs of
one sweep folder, and its sweep.yaml (read back by ``dropcli.store.sweeps``). Running the
plan is ``dropcli.sweep.run``."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from dropcli.config import Config, config_to_dict, run_config, with_values
from dropcli.experiment.build import run_id
from dropcli.store.files import atomic_write_text
from dropcli.store.layout import SCHEMA_VERSION, SWEEP_FILE, safe_name


@dataclass(frozen=True)
class PlannedRun:
    """One grid point: its run id and resolved config."""

    run_id: str
    values: dict  # the swept values of this grid point, by dotted key
    config: Config


@dataclass(frozen=True)
class SweepPlan:
    """The runs of a grid, in grid order, and the sweep folder they go to."""

    path: Path  # the sweep folder
    axes: dict  # dotted key -> list of values, in grid order
    base: Config
    runs: tuple[PlannedRun, ...]

    @property
    def sweep_id(self) -> str:
        return self.path.name


def plan_sweep(config: Config, runs_dir: Path) -> SweepPlan:
    """The runs of ``config``'s grid (its ``sweep`` section) under ``runs_dir``.

    A config with an empty grid is a sweep of one run. Grid points that resolve to the
    same config are run once.
    """
    axes = {key: list(values) for key, values in config.sweep.items()}
    base = run_config(config)
    runs, seen = [], set()
    for point in itertools.product(*axes.values()):
        values = dict(zip(axes, point))
        cfg = run_config(with_values(base, values, source="sweep"))
        rid = run_id(cfg)
        if rid not in seen:
            seen.add(rid)
            runs.append(PlannedRun(rid, values, cfg))
    digest = hashlib.sha256(
        json.dumps({"base": config_to_dict(base), "axes": axes}, sort_keys=True, default=list).encode()
    ).hexdigest()[:8]
    path = Path(runs_dir) / f"{safe_name(config.name)}-sweep-{digest}"
    return SweepPlan(path=path, axes=axes, base=base, runs=tuple(runs))


def write_spec(plan: SweepPlan) -> None:
    """Write the plan's sweep.yaml (creating the sweep folder): its grid and its runs."""
    spec = {
        "schema_version": SCHEMA_VERSION,
        "sweep_id": plan.sweep_id,
        "name": plan.base.name,
        "axes": {k: _plain(v) for k, v in plan.axes.items()},
        "base": config_to_dict(plan.base),
        "runs": [{"run_id": r.run_id, "values": _plain(r.values)} for r in plan.runs],
    }
    plan.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan.path / SWEEP_FILE, yaml.safe_dump(_plain(spec), sort_keys=False))


def _plain(value):
    """Tuples to lists, so YAML and JSON write plain sequences."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
