"""The runs store: one folder per run, one per sweep. This docstring is the contract.

Layout (``SCHEMA_VERSION`` 1)::

    RUNS_DIR/
      <name>-<hash8>/                 one training run; hash8 = config_hash(resolved config)
        config.yaml                   the resolved config, written first
        meta.json                     dropcli version, argv, git commit, numpy/BLAS, host, seeds
        lock                          exists while a process trains the run: {"pid", "host"}
        metrics.jsonl                 append-only, flushed per record: {"kind": "epoch", ...}
                                      (and "iteration", "diverged" records); epoch records
                                      carry "diagnostics" (see dropcli/diagnostics.py)
        params.npz                    best parameters (W1, b1, gamma1, ...) and batchnorm
                                      state (running_mean1, running_var1, ...)
        expectation.json              expectation check of the trained net's dropout layers
        summary.json                  status and final/best metrics; written LAST, atomically
        *.png, report.md, report.html written by `dropcli plot`
      <sweep-name>-<hash8>/           one sweep; hash8 over its base config and grid
        sweep.yaml                    the grid and the resolved run list
        <name>-<hash8>/ ...           its runs, same layout
        summary.csv                   one row per run (for pandas), rewritten after each run
        *.png, report.md, report.html written by `dropcli plot`
      report.md, report.html          index over everything, written by `dropcli plot`
      .locks/<name>-<hash8>           held while any folder here trains that run id

A run's status is read from its files, in this order:

    completed | diverged | interrupted | failed   summary.json says so (diverged: the epoch
                                                  is in "diverged_epoch" and "reason")
    corrupt     summary.json exists but is not a JSON object with one of those statuses
    running     the lock names a live process on this host
    crashed     the lock names a dead process (killed, power cut), or there is no lock
                but metrics.jsonl exists: training started and never wrote its summary
    pending     config.yaml only (planned, or stopped before training began)

Writes, in order: config.yaml and meta.json, then metrics.jsonl appended and fsynced per
record, params.npz and expectation.json, and summary.json last. Every whole-file write is
atomic (temporary file, fsync, rename, mode 0644); so a crash at any moment leaves
readable files, and at most a torn last line of metrics.jsonl. Every JSON file carries
``schema_version``. Readers are tolerant: a torn last line is skipped and reported, an
unreadable file, a file dropcli does not know or a summary value of the wrong type
(left out) is a warning in ``RunRecord.warnings``, unknown keys are ignored.

Exclusion: a process trains a run only while it holds two ``flock`` locks, on
``.locks/<run_id>`` in the runs folder (one run id is trained by one process at a time,
whichever folder it is in) and on the run's ``lock`` (which also names the pid and host
for the status above). The kernel drops both when the process dies, however it dies,
so a stale lock never blocks anyone and two live processes never both win.

Runs trained elsewhere (``--executor dask``): the sweep's process claims the run and
writes config.yaml when it submits it; the worker trains in its own scratch folder and
sends the files back, which the sweep's process writes (each atomically, summary.json
last). Meanwhile the run reads ``running`` and its lock names the sweep's process;
meta.json names the worker's host.

Reuse: a run id is the hash of the resolved config and seed, and training is
deterministic, so a sweep that finds the run it is about to train already finished in
another folder of the same runs folder links that folder's files in (hard links, or
copies where links are impossible) instead of training it again; its summary.json then
says ``"reused_from": "<folder>/<run_id>"``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunStoreError
from .run_locks import lock_is_live, read_lock

SCHEMA_VERSION = 1
FINAL_STATUSES = ("completed", "diverged", "interrupted", "failed")
# What a run folder holds; anything else in it is reported as a foreign file.
RUN_FILES = frozenset({"config.yaml", "meta.json", "lock", "metrics.jsonl", "params.npz", "expectation.json",
                       "summary.json", "mc_eval.json", "report.md", "report.html"})


# --- writing --------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one."""
    path = Path(path)
    with naming(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; run files are meant to be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def naming(path: Path):
    """An OSError raised while writing ``path`` names ``path``, not the temporary file
    written first (a read-only folder, a full disk)."""
    try:
        yield
    except OSError as e:
        e.filename, e.filename2 = str(path), None
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


# --- reading --------------------------------------------------------------------------


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None if it is missing; RunStoreError if unreadable."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunStoreError(f"{path}: cannot read ({e.strerror})") from None
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunStoreError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except ValueError as e:
        raise RunStoreError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise RunStoreError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise RunStoreError(f"{path}: expected a JSON object")
    return obj


def read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """Records of a metrics.jsonl, and warnings about lines that could not be read.

    An epoch record must carry an integer ``epoch``; a line that is not a JSON object
    (or an epoch record without its epoch) is skipped with a warning naming its line.
    """
    records, warnings = [], []
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"{path}: cannot read ({e.strerror})"]
    lines = data.decode("utf-8", errors="replace").splitlines()
    torn = bool(data) and not data.endswith(b"\n")  # every record ends with a newline
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            rec = None
        if isinstance(rec, dict) and (rec.get("kind") != "epoch" or _is_int(rec.get("epoch"))):
            records.append(rec)
        elif i == len(lines) and torn:
            warnings.append(f"{path}:{i}: truncated last line skipped (the run was stopped mid-write)")
        else:
            warnings.append(f"{path}:{i}: unreadable line skipped")
    return records, warnings


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# summary.json's objects of numbers (see runner._metrics_summary), checked when read
SUMMARY_NUMBERS = {"final": ("epoch", "train_acc", "val_acc", "train_loss", "val_loss"),
                   "best": ("epoch", "val_acc", "train_acc", "val_loss"), "test": ("acc", "loss")}


def checked_summary(summary: dict, path: Path, warnings: list[str]) -> dict:
    """``summary`` without the values of ``SUMMARY_NUMBERS`` that are of the wrong type
    (a hand-edited or damaged file), each left out with a line in ``warnings``."""
    for section, keys in SUMMARY_NUMBERS.items():
        part = summary.get(section)
        if part is None:
            continue
        if not isinstance(part, dict):
            warnings.append(f"{path}: {section} is {_shown(part)}; expected an object of numbers (ignored)")
            summary = {**summary, section: None}
            continue
        bad = [k for k in keys if part.get(k) is not None and not _is_number(part[k])]
        for k in bad:
            warnings.append(f"{path}: {section}.{k} is {_shown(part[k])}; expected a number (ignored)")
        if bad:
            summary = {**summary, section: {k: v for k, v in part.items() if k not in bad}}
    return summary


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def run_status(run_dir: Path) -> str:
    """completed | diverged | interrupted | failed | corrupt | running | crashed | pending
    (see the module docstring)."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    try:
        summary = read_json(summary_path)
    except RunStoreError:
        return "corrupt"
    if summary is not None:
        return summary["status"] if summary.get("status") in FINAL_STATUSES else "corrupt"
    lock = read_lock(run_dir)
    if lock is not None:
        return "running" if lock_is_live(lock) else "crashed"
    return "crashed" if os.path.lexists(run_dir / "metrics.jsonl") else "pending"


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
    """A run folder, read tolerantly: only a missing or unreadable config.yaml is an error
    (RunStoreError); every other problem becomes one line in ``warnings``."""
    import yaml

    run_dir = Path(run_dir)
    warnings = []
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_bytes().decode("utf-8")) or {}
    except FileNotFoundError:
        raise RunStoreError(f"{run_dir}: not a run folder (no config.yaml)") from None
    except OSError as e:
        raise RunStoreError(f"{run_dir / 'config.yaml'}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise RunStoreError(f"{run_dir / 'config.yaml'}: cannot read (not UTF-8 text)") from None
    except (yaml.YAMLError, RecursionError) as e:
        problem = " ".join(str(e).split()) if isinstance(e, yaml.YAMLError) else "nested too deeply"
        raise RunStoreError(f"{run_dir / 'config.yaml'}: cannot read ({problem})") from None
    if not isinstance(config, dict):
        warnings.append(f"{run_dir / 'config.yaml'}: not a mapping of config keys; its values are shown as None")
        config = {}
    records, w = read_metrics(run_dir / "metrics.jsonl")
    warnings += w
    summary = expectation = None
    for name in ("summary.json", "expectation.json"):
        try:
            obj = read_json(run_dir / name)
        except RunStoreError as e:
            warnings.append(str(e) + (" (status corrupt; a sweep trains it again)" if name == "summary.json" else ""))
            obj = None
        if name == "summary.json":
            summary = obj
        else:
            expectation = obj
    status = run_status(run_dir)
    if status == "corrupt" and summary is not None:
        warnings.append(f"{run_dir / 'summary.json'}: no valid status (status corrupt; a sweep trains it again)")
        summary = None
    if summary is not None:
        summary = checked_summary(summary, run_dir / "summary.json", warnings)
    warnings += foreign_files(run_dir)
    return RunRecord(
        path=run_dir,
        status=status,
        config=config,
        summary=summary,
        metrics=[r for r in records if r.get("kind") == "epoch"],
        expectation=expectation,
        warnings=warnings,
    )


def foreign_files(run_dir: Path) -> list[str]:
    """One line per entry of a run folder that dropcli did not write there."""
    notes = []
    try:
        entries = sorted(Path(run_dir).iterdir())
    except OSError as e:
        return [f"{run_dir}: cannot list ({e.strerror})"]
    for p in entries:
        if p.name in RUN_FILES or (p.suffix == ".png" and not p.name.startswith(".")):
            continue
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            notes.append(f"{p}: leftover temporary file of an interrupted write (ignored; safe to delete)")
        else:
            notes.append(f"{p}: not a dropcli file (ignored)")
    return notes


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
    except (OSError, ValueError, RecursionError, yaml.YAMLError) as e:
        raise RunStoreError(f"{sweep_dir / 'sweep.yaml'}: cannot read ({type(e).__name__})") from None
    spec = spec if isinstance(spec, dict) else {}
    runs = [read_run(sweep_dir / rid) for rid in listed_runs(spec) if is_run_dir(sweep_dir / rid)]
    return spec, runs


def listed_runs(spec: dict) -> list[str]:
    """The run ids a sweep.yaml lists; only plain folder names, so that a damaged or
    hostile file cannot point readers (and `dropcli plot`'s writes) outside the sweep."""
    entries = spec.get("runs") if isinstance(spec, dict) else None
    ids = [e.get("run_id") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return [i for i in ids if isinstance(i, str) and i == Path(i).name and i not in ("", ".", "..")
            and "\\" not in i and i.isprintable()]


def read_summary(run_dir: Path) -> dict:
    """The run's summary, or just its status if it has none (or an unreadable one)."""
    try:
        summary = read_json(run_dir / "summary.json")
    except Exception:  # corrupt: the status says so
        summary = None
    if summary is None or summary.get("status") not in FINAL_STATUSES:
        return {"run_id": Path(run_dir).name, "status": run_status(run_dir)}
    return checked_summary(summary, Path(run_dir) / "summary.json", [])
