"""A realistic fake runs store, written file by file per the runs-store contract
(``dropcli/runs.py``, schema_version 1), so plot and report tests need no training.

``make_store(root)`` writes:

    root/
      digits-sweep-<h>/     keep_prob 0.25 / 0.5 / 0.75 / 1.0 x seeds 0, 1, 2 (12 runs; or
                            the grid of ``keeps`` x ``seeds``):
                            (0.25, seed 2) diverged in epoch 5 (loss exploding in epoch 4); (0.5, seed 1) has a torn
                            last metrics line; runs with keep_prob < 1 have expectation
                            layers, keep_prob 1 runs have none
      grid-sweep-<h>/       (with grid=True) variant x normalization x keep_prob 0.5 / 1.0,
                            one seed (8 runs)
      digits-<h>/ x 4       single runs: completed with an input dropout layer whose check
                            fails; running (live lock, 3 of 8 epochs); crashed (dead lock);
                            pending (config only)
      checks/gradient/report.md
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

EPOCHS = 8
KEEPS = (0.25, 0.5, 0.75, 1.0)
SEEDS = (0, 1, 2)

BASE = {
    "name": "digits",
    "seed": 0,
    "data": {"dataset": "digits", "path": None, "num_train": 1000, "num_val": 300},
    "model": {"hidden_dims": [256, 256], "activation": "relu", "normalization": "none", "weight_init": "he",
              "reg": 0.0},
    "dropout": {"variant": "inverted", "keep_prob": 0.5, "input_keep_prob": 1.0},
    "train": {"optimizer": "adam", "learning_rate": 0.001, "lr_decay": 1.0, "batch_size": 100, "epochs": EPOCHS,
              "dtype": "float32"},
    "sweep": {},
}


@dataclass
class Store:
    root: Path
    sweep: Path = None
    grid: Path | None = None
    runs: dict = field(default_factory=dict)  # (keep_prob, seed) -> run folder of the main sweep
    singles: dict = field(default_factory=dict)  # status -> run folder
    diverged: Path = None
    truncated: Path = None


def with_values(config: dict, values: dict) -> dict:
    out = copy.deepcopy(config)
    for dotted, value in values.items():
        node = out
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return out


def run_id(config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    return f"{config['name']}-{digest}"


def epoch_records(config: dict, epochs: int, diverge_at: int | None = None) -> list[dict]:
    """Plausible curves: more dropout (lower keep_prob) trains slower and overfits less."""
    k, seed = config["dropout"]["keep_prob"], config["seed"]
    rng = np.random.default_rng([seed, int(100 * k), len(config["dropout"]["variant"] + config["model"]["normalization"])])
    ceiling = 0.93 + 0.03 * k - 0.06 * (1 - k) ** 2 + rng.normal(0, 0.008)
    records, elapsed = [], 0.0
    for e in range(epochs + 1):
        progress = 1 - math.exp(-e / (1.5 + 2 * (1 - k)))
        val = 0.1 + (ceiling - 0.1) * progress + rng.normal(0, 0.004) * (e > 0)
        train = min(val + (0.005 + 0.05 * k) * e / epochs + (0.01 + rng.normal(0, 0.004)) * (e > 0), 1.0)
        elapsed += 0.12
        rec = {
            "kind": "epoch", "epoch": e, "iteration": 10 * e, "lr": None if e == 0 else 0.001,
            "train_loss": None if e == 0 else -math.log(train * 0.95 + 0.02) * (2 - k),
            "train_acc": train, "train_eval_loss": -math.log(train * 0.95 + 0.02),
            "val_acc": val, "val_loss": -math.log(val * 0.95 + 0.02), "epoch_time": 0.12, "elapsed": elapsed,
        }
        if diverge_at is not None and e == diverge_at - 1:  # the loss explodes, then turns NaN next epoch
            rec.update(train_loss=3e11, train_acc=0.1, train_eval_loss=2e25, val_acc=0.1, val_loss=2e25)
            records.append(rec)
            break
        records.append(rec)
    return records


def layer(name: str, variant: str, keep: float, *, fail: bool = False) -> dict:
    """One layer of expectation.json, as ``dropcli.evidence.expectation.check_dropout`` writes it."""
    train_scale, test_scale = (1 / keep, 1.0) if variant == "inverted" else (1.0, keep)
    in_mean, se = 0.49, 0.0007
    measured = train_scale * keep * in_mean + (9 * se if fail else 0.3 * se)
    q = lambda m, p, s: {"measured": m, "predicted": p, "se": s, "z": (m - p) / s, "pass": abs(m - p) / s <= 4}  # noqa: E731
    return {
        "layer": name, "variant": variant, "keep_prob": keep, "drop_rate": 1 - keep,
        "train_scale": train_scale, "test_scale": test_scale, "units": 1536000, "input_mean": in_mean,
        "input_zero_fraction": 0.5, "train_mean": q(measured, train_scale * keep * in_mean, se),
        "dropped_fraction": q(1 - keep + 0.0002, 1 - keep, 0.0006),
        "test_mean": q(test_scale * in_mean, test_scale * in_mean, 4e-7), "test_zero_fraction": 0.5,
        "pass": not fail,
    }


def expectation(config: dict, fail_input: bool = False) -> dict:
    d = config["dropout"]
    layers = []
    if d["input_keep_prob"] < 1:
        layers.append(layer("input", d["variant"], d["input_keep_prob"], fail=fail_input))
    if d["keep_prob"] < 1:
        layers += [layer(f"hidden{i + 1}", d["variant"], d["keep_prob"]) for i in range(len(config["model"]["hidden_dims"]))]
    return {"schema_version": 1, "split": "val", "examples": 300, "draws": 20, "z_tol": 4.0,
            "pass": all(x["pass"] for x in layers), "layers": layers}


def summary(config: dict, records: list[dict], status: str, reason=None) -> dict:
    final = records[-1]
    trained = [r for r in records if r["epoch"] > 0] or records
    best = max(trained, key=lambda r: r["val_acc"])
    pick = lambda r, keys: {k: r[k] for k in keys}  # noqa: E731
    return {
        "schema_version": 1, "status": status, "run_id": run_id(config), "reason": reason,
        "epochs": config["train"]["epochs"], "epochs_completed": final["epoch"],
        "best": pick(best, ("epoch", "val_acc", "train_acc", "val_loss")),
        "final": pick(final, ("epoch", "train_acc", "val_acc", "train_loss", "val_loss")),
        "test": {"acc": final["val_acc"] - 0.005, "loss": final["val_loss"]} if status == "completed" else None,
        "wall_time": final["elapsed"], "keep_prob": config["dropout"]["keep_prob"],
        "drop_rate": 1 - config["dropout"]["keep_prob"], "variant": config["dropout"]["variant"],
        "normalization": config["model"]["normalization"],
    }


def write_run(parent: Path, config: dict, *, status="completed", epochs=EPOCHS, diverge_at=None, truncate=False,
              lock=None, fail_input=False, accuracy=None) -> Path:
    """One run folder. ``status`` completed/diverged write summary.json; running/crashed
    write a lock instead; pending writes only config.yaml. ``accuracy`` = (train, val):
    the final epoch's accuracies, to give a test a known outcome."""
    run_dir = parent / run_id(config)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if status == "pending":
        return run_dir
    records = epoch_records(config, epochs, diverge_at)
    if accuracy is not None:
        records[-1].update(train_acc=accuracy[0], val_acc=accuracy[1])
    lines = [json.dumps(r) for r in records]
    if diverge_at is not None:  # as the trainer logs it: no epoch record for the epoch that diverged
        lines.append(json.dumps({"kind": "diverged", "epoch": diverge_at, "iteration": 10 * diverge_at,
                                 "loss": float("nan")}))
    lines.insert(2, json.dumps({"kind": "iteration", "iteration": 5, "loss": 2.0}))
    text = "\n".join(lines) + "\n"
    if truncate:  # a crash mid-append: the last line is torn
        text += '{"kind": "epoch", "epoch": 9, "iter'
    (run_dir / "metrics.jsonl").write_text(text)
    if lock is not None:
        (run_dir / "lock").write_text(json.dumps(lock))
        return run_dir
    reason = f"loss became non-finite in epoch {diverge_at}" if status == "diverged" else None
    (run_dir / "params.npz").write_bytes(params_npz(config))
    (run_dir / "summary.json").write_text(json.dumps(summary(config, records, status, reason), indent=2))
    (run_dir / "expectation.json").write_text(json.dumps(expectation(config, fail_input), indent=2))
    return run_dir


def params_npz(config: dict) -> bytes:
    """params.npz of an initial net of ``config``'s shape on digits (64 features, 10 classes)."""
    import io

    from dropcli.nn import FullyConnectedNet

    m = config["model"]
    net = FullyConnectedNet(hidden_dims=m["hidden_dims"], input_dim=64, num_classes=10,
                            normalization=None if m["normalization"] == "none" else m["normalization"], seed=0)
    buf = io.BytesIO()
    np.savez(buf, **net.params, **net.bn_state)
    return buf.getvalue()


def write_sweep(root: Path, name: str, base: dict, axes: dict, special=None) -> tuple[Path, dict]:
    """A sweep folder over the grid ``axes``; ``special(values) -> write_run kwargs``."""
    import itertools

    entries, folders = [], {}
    for point in itertools.product(*axes.values()):
        values = dict(zip(axes, point))
        entries.append((values, with_values(base, values)))
    sweep_id = f"{name}-sweep-{hashlib.sha256(json.dumps(axes).encode()).hexdigest()[:8]}"
    sweep_dir = root / sweep_id
    sweep_dir.mkdir(parents=True)
    spec = {"schema_version": 1, "sweep_id": sweep_id, "name": name, "axes": axes, "base": base,
            "runs": [{"run_id": run_id(cfg), "values": values} for values, cfg in entries]}
    (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    rows = ["run_id,status," + ",".join(axes)]
    for values, cfg in entries:
        kwargs = (special or (lambda v: {}))(values)
        folders[tuple(values.values())] = write_run(sweep_dir, cfg, **kwargs)
        rows.append(f"{run_id(cfg)},{kwargs.get('status', 'completed')}," + ",".join(str(v) for v in values.values()))
    (sweep_dir / "summary.csv").write_text("\n".join(rows) + "\n")
    return sweep_dir, folders


def make_store(root: Path, *, keeps=KEEPS, seeds=SEEDS, grid: bool = True, singles: bool = True) -> Store:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    store = Store(root)

    def special(values):
        k, seed = values["dropout.keep_prob"], values["seed"]
        if (k, seed) == (0.25, 2):
            return {"status": "diverged", "diverge_at": 5}
        return {"truncate": (k, seed) == (0.5, 1)}

    store.sweep, folders = write_sweep(root, "digits", BASE, {"dropout.keep_prob": list(keeps), "seed": list(seeds)},
                                       special)
    store.runs = folders
    store.diverged, store.truncated = folders.get((0.25, 2)), folders.get((0.5, 1))
    if grid:
        axes = {"dropout.variant": ["inverted", "vanilla"], "model.normalization": ["none", "batchnorm"],
                "dropout.keep_prob": [0.5, 1.0], "seed": [0]}
        store.grid, _ = write_sweep(root, "grid", with_values(BASE, {"name": "grid"}), axes)
    if singles:
        single = lambda **v: with_values(BASE, {"train.learning_rate": 0.002, **v})  # noqa: E731
        store.singles = {
            "completed": write_run(root, single(**{"dropout.input_keep_prob": 0.8}), fail_input=True),
            "running": write_run(root, single(seed=1), epochs=3, lock={"pid": os.getpid(), "host": socket.gethostname()}),
            "crashed": write_run(root, single(seed=2), epochs=2, lock={"pid": 1, "host": "a-host-long-gone"}),
            "pending": write_run(root, single(seed=3), status="pending"),
        }
        (root / "checks" / "gradient").mkdir(parents=True)
        (root / "checks" / "gradient" / "report.md").write_text("# Gradient check\n\nall passed\n")
    return store
