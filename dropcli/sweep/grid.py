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

from dropcli.config import Config, config_hash, config_to_dict, hashed_dict, run_config, with_values
from dropcli.store.files import atomic_write_text
from dropcli.store.layout import SCHEMA_VERSION, SWEEP_FILE, is_run_dir, run_key, safe_name
from dropcli.store.sweeps import sweep_schema_version


@dataclass(frozen=True)
class PlannedRun:
    """One grid point: its folder's name in the sweep and its resolved config."""

    run_id: str  # <name>-<what varies>-<hash8> (run_folder); its hash8 is the run's identity
    values: dict  # the swept values of this grid point, by dotted key
    config: Config


@dataclass(frozen=True)
class SweepPlan:
    """The runs of a grid, in grid order, and the sweep folder they go to."""

    path: Path  # the sweep folder
    axes: dict  # dotted key -> list of values, in grid order
    base: Config
    runs: tuple[PlannedRun, ...]
    schema_version: int = SCHEMA_VERSION  # 1: a sweep an older dropcli created, its runs named <name>-<hash8>

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
    digest = hashlib.sha256(
        json.dumps({"base": hashed_dict(base, "sweep"), "axes": axes}, sort_keys=True, default=list).encode()
    ).hexdigest()[:8]
    path = Path(runs_dir) / f"{safe_name(config.name)}-sweep-{digest}"
    varying = sorted((key for key, values in axes.items() if len(values) > 1), key=lambda k: k == "seed")
    existing = _existing_folders(path)
    version = sweep_schema_version(path)  # a sweep keeps the naming it was created with (1: <name>-<hash8>)
    runs, seen = [], set()
    for point in itertools.product(*axes.values()):
        values = dict(zip(axes, point))
        cfg = run_config(with_values(base, values, source="sweep"))
        key = config_hash(cfg)
        if key not in seen:
            seen.add(key)
            labelled = {k: values[k] for k in varying} if version >= 2 else {}
            folder = existing.get(key) or run_folder(cfg.name, key, labelled)
            runs.append(PlannedRun(folder, values, cfg))
    return SweepPlan(path=path, axes=axes, base=base, runs=tuple(runs), schema_version=version)


# How a swept key reads in a run folder's name: a short prefix before its value, or
# nothing where the value names itself (``gaussian``, ``batchnorm``); other keys use their
# last part without underscores (``model.reg`` -> ``reg0.001``).
LABELS = {"dropout.keep_prob": "keep", "dropout.input_keep_prob": "inkeep", "train.learning_rate": "lr",
          "train.lr_decay": "decay", "train.batch_size": "batch", "model.hidden_dims": "h", "data.num_train": "ntrain",
          "data.num_val": "nval", "model.weight_init": "init", "model.max_norm": "maxnorm", "data.path": "path"}
SELF_NAMED = {"dropout.variant", "dropout.placement", "model.normalization", "model.activation", "train.optimizer",
              "data.dataset", "train.dtype"}


def run_folder(name: str, key: str, values: dict) -> str:
    """A sweep run's folder name, ``<name>-<label><value>...-<hash8>``, e.g.
    ``mnist1d-keep0.25-seed2-3fa9c2d1``, from the values of the axes that vary. Only
    ``key`` (hash8) identifies the run: the part before it is sanitised and cut at 64
    characters (``safe_name``), so a name is at most 73."""
    labels = "-".join(_label(k, v) for k, v in values.items())
    return f"{safe_name(f'{name}-{labels}' if labels else name).rstrip('-.')}-{key}"


def _label(key: str, value) -> str:
    if isinstance(value, (list, tuple)):
        value = "x".join(map(str, value))  # hidden_dims [256, 256] -> h256x256
    elif isinstance(value, float):
        value = f"{value:g}"
    elif value is None:  # the null of num_train / num_val is all the data; of the others, off
        value = "all" if key.startswith("data.num_") else "off"
    prefix = "" if key in SELF_NAMED else LABELS.get(key, key.rsplit(".", 1)[-1].replace("_", ""))
    return f"{prefix}{value}"


def _existing_folders(sweep_dir: Path) -> dict[str, str]:
    """The run folders the sweep already has, by hash8: a run keeps its folder, whatever
    name an older dropcli gave it (``<name>-<hash8>`` before schema_version 2)."""
    try:
        return {run_key(d.name): d.name for d in sorted(sweep_dir.iterdir()) if is_run_dir(d)}
    except OSError:
        return {}


def write_spec(plan: SweepPlan) -> None:
    """Write the plan's sweep.yaml (creating the sweep folder): its grid and its runs."""
    spec = {
        "schema_version": plan.schema_version,
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
