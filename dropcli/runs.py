"""The runs store: one folder per run, one per sweep. This docstring is the contract.

Layout (``SCHEMA_VERSION`` 1)::

    RUNS_DIR/
      <name>-<hash8>/                 one training run; hash8 = config_hash(resolved config)
        config.yaml                   the resolved config, written first
        meta.json                     dropcli version, argv, git commit, numpy/BLAS, host, seeds
        lock                          exists while a process trains the run: {"pid", "host"}
        metrics.jsonl                 append-only, flushed per record: {"kind": "epoch", ...}
                                      (and "iteration", "diverged" records)
        params.npz                    best parameters (W1, b1, gamma1, ...) and batchnorm
                                      state (running_mean1, running_var1, ...)
        expectation.json              expectation check of the trained net's dropout layers
        summary.json                  status and final/best metrics; written LAST, atomically
        *.png                         written by `dropcli plot`
      <sweep-name>-<hash8>/           one sweep; hash8 over its base config and grid
        sweep.yaml                    the grid and the resolved run list
        <name>-<hash8>/ ...           its runs, same layout
        summary.csv                   one row per run (for pandas), rewritten after each run
        *.png, report.md              written by `dropcli plot`
      report.md, report.html          index over everything, written by `dropcli plot`

A run's status is read from its files: ``summary.json``'s status (``completed``,
``diverged``, ``interrupted``, ``failed``) if it exists; otherwise ``running`` while the
lock names a live process on this host, ``crashed`` if it names a dead one, and
``pending`` with no lock. Every JSON file carries ``schema_version``. Writers replace
whole files atomically (temporary file, fsync, rename); readers are tolerant: a torn
last line of metrics.jsonl is skipped and reported, unknown keys are ignored.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunStoreError

SCHEMA_VERSION = 1
FINAL_STATUSES = ("completed", "diverged", "interrupted", "failed")

# --- writing --------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, **obj}, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A folder name that stays inside the runs folder: no separators, no leading dots,
    no control characters, at most 64 characters."""
    cleaned = _UNSAFE.sub("-", name).strip("-.")[:64]
    if not cleaned:
        raise RunStoreError(f"name {name!r} has no usable characters; use letters, digits, '.', '_' or '-'")
    return cleaned


class MetricsLog:
    """Append-only JSON lines, each flushed and fsynced so a crash loses at most one."""

    def __init__(self, path: Path):
        self._f = open(path, "a", encoding="utf-8")

    def append(self, record: dict) -> None:
        self._f.write(json.dumps(record, default=_jsonable, allow_nan=True) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


# --- locks ----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / "lock").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # a lock torn while being written still means "someone was here"


def lock_is_live(lock: dict) -> bool:
    return lock.get("host") == socket.gethostname() and isinstance(lock.get("pid"), int) and _pid_alive(lock["pid"])


def acquire_lock(run_dir: Path) -> bool:
    """Create the run's lock exclusively; take over a lock whose process is dead.
    Returns False if another live process holds it."""
    path = Path(run_dir) / "lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            lock = read_lock(run_dir)
            if lock is None:
                continue
            if lock and lock_is_live(lock):
                return False
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
        return True
    return False


def release_lock(run_dir: Path) -> None:
    (Path(run_dir) / "lock").unlink(missing_ok=True)


# --- reading --------------------------------------------------------------------------


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None if it is missing; RunStoreError if unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunStoreError(f"{path}: cannot read ({e.strerror})") from None
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise RunStoreError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise RunStoreError(f"{path}: expected a JSON object")
    return obj


def read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """Records of a metrics.jsonl, and warnings about lines that could not be read."""
    records, warnings = [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            last = i == len(lines)
            warnings.append(f"{path}:{i}: {'truncated last line' if last else 'unreadable line'} skipped")
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records, warnings


def run_status(run_dir: Path) -> str:
    """completed | diverged | interrupted | failed | running | crashed | pending."""
    run_dir = Path(run_dir)
    try:
        summary = read_json(run_dir / "summary.json")
    except RunStoreError:
        summary = None
    if summary and summary.get("status") in FINAL_STATUSES:
        return summary["status"]
    lock = read_lock(run_dir)
    if lock is None:
        return "pending"
    return "running" if lock and lock_is_live(lock) else "crashed"


@dataclass
class RunRecord:
    """Everything the store holds about one run, read tolerantly."""

    path: Path
    status: str
    config: dict
    summary: dict | None
    metrics: list[dict]  # epoch records only, in order
    expectation: dict | None
    warnings: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.path.name

    def value(self, dotted: str, default=None):
        """A config value by dotted path, e.g. ``run.value("dropout.keep_prob")``."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def read_run(run_dir: Path) -> RunRecord:
    import yaml

    run_dir = Path(run_dir)
    warnings = []
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RunStoreError(f"{run_dir}: not a run folder (no config.yaml)") from None
    except (OSError, yaml.YAMLError) as e:
        raise RunStoreError(f"{run_dir / 'config.yaml'}: cannot read ({e})") from None
    records, w = read_metrics(run_dir / "metrics.jsonl")
    warnings += w
    summary = expectation = None
    for name in ("summary.json", "expectation.json"):
        try:
            obj = read_json(run_dir / name)
        except RunStoreError as e:
            warnings.append(str(e))
            obj = None
        if name == "summary.json":
            summary = obj
        else:
            expectation = obj
    return RunRecord(
        path=run_dir,
        status=run_status(run_dir),
        config=config if isinstance(config, dict) else {},
        summary=summary,
        metrics=[r for r in records if r.get("kind") == "epoch"],
        expectation=expectation,
        warnings=warnings,
    )


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.yaml").is_file()


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / "sweep.yaml").is_file()


def find_runs(root: Path) -> list[Path]:
    """Run folders directly under ``root`` and inside its sweeps, sorted by path."""
    root = Path(root)
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if is_run_dir(child):
            found.append(child)
        elif is_sweep_dir(child):
            found += [g for g in sorted(child.iterdir()) if g.is_dir() and is_run_dir(g)]
    return found


def find_sweeps(root: Path) -> list[Path]:
    root = Path(root)
    return [p for p in sorted(root.iterdir()) if p.is_dir() and is_sweep_dir(p)] if root.is_dir() else []


def read_sweep(sweep_dir: Path) -> tuple[dict, list[RunRecord]]:
    """A sweep's spec (sweep.yaml) and its runs, in the spec's order."""
    import yaml

    sweep_dir = Path(sweep_dir)
    try:
        spec = yaml.safe_load((sweep_dir / "sweep.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RunStoreError(f"{sweep_dir / 'sweep.yaml'}: cannot read ({e})") from None
    runs = []
    for entry in spec.get("runs", []):
        path = sweep_dir / str(entry.get("run_id", ""))
        if is_run_dir(path):
            runs.append(read_run(path))
    return spec, runs
