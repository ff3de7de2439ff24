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
                                                  is in "diverged_epoch" and "reason"), and
                                                  the files it promises are sound (below)
    corrupt     summary.json exists but is not a JSON object with one of those statuses,
                or the run is damaged: its files do not hold what summary.json promises
    running     the lock names a live process on this host
    crashed     the lock names a dead process (killed, power cut), or there is no lock
                but metrics.jsonl exists: training started and never wrote its summary
    pending     config.yaml only (planned, or stopped before training began)

What a summary.json with a final status promises, checked whenever a status is read
(cheaply: one small YAML file, file sizes, a zip's directory; no array is loaded): always,
config.yaml is a YAML mapping; with completed or diverged (training ran to its end), also
metrics.jsonl is not empty, params.npz is a zip archive with a ``<name>.npy`` member for
every array of the config's network (from ``model.hidden_dims`` and
``model.normalization``), and expectation.json is a JSON object. The first file that is
not ("params.npz: empty") makes the run damaged, so corrupt; readers keep its summary's
numbers, with that as its "reason". A corrupt run is trained again by the next sweep and
by `dropcli train` of its config, and never reused (below). Damage within a member
(flipped bits) is not looked for: `dropcli eval`, which loads the arrays, reports it.

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
says ``"reused_from": "<folder>/<run_id>"``. Only a sound run (not corrupt) is linked in;
a linked file damaged in place is damaged in both folders, and both read corrupt.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.locks import lock_is_live, read_lock

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
    obj, problem = _load_json(path)
    if problem is not None:
        raise RunStoreError(f"{path}: {problem}")
    return obj


def _load_json(path: Path) -> tuple[dict | None, str | None]:
    """(object, None), (None, None) if the file is missing, or (None, what is wrong)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"cannot read ({e.strerror})"
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not valid JSON (not UTF-8 text)"
    except ValueError as e:
        return None, f"not valid JSON ({e})"
    except RecursionError:
        return None, "not valid JSON (nested too deeply)"
    return (obj, None) if isinstance(obj, dict) else (None, "expected a JSON object")


def read_config(run_dir: Path) -> tuple[dict | None, str | None]:
    """config.yaml's mapping and None, or None and what is wrong with the file ("missing",
    "empty", "not valid YAML (...)", ...)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, "missing"
    except OSError as e:
        return None, f"cannot read ({e.strerror})"
    except UnicodeDecodeError:
        return None, "cannot read (not UTF-8 text)"
    if not text.strip():
        return None, CONFIG_EMPTY
    try:  # libyaml where installed: this runs for every run a listing or a sweep looks at
        config = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        return None, f"not valid YAML ({' '.join(str(e).split())})"
    except RecursionError:
        return None, "not valid YAML (nested too deeply)"
    return (config, None) if isinstance(config, dict) else (None, CONFIG_NOT_MAPPING)


# What may be wrong with a config.yaml that still lets its run be read (values shown as None).
CONFIG_EMPTY, CONFIG_NOT_MAPPING = "empty", "not a mapping of config keys"


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
    return run_state(run_dir)[0]


def run_state(run_dir: Path) -> tuple[str, tuple[str, str] | None]:
    """The run's status and, if it is corrupt because its files are damaged, (file name,
    what is wrong with it); see ``damage``."""
    run_dir = Path(run_dir)
    summary, problem = _load_json(run_dir / "summary.json")
    if problem is not None:
        return "corrupt", None
    if summary is not None:
        if summary.get("status") not in FINAL_STATUSES:
            return "corrupt", None
        damaged = damage(run_dir, summary["status"])
        return ("corrupt" if damaged else summary["status"]), damaged
    lock = read_lock(run_dir)
    if lock is not None:
        return ("running" if lock_is_live(lock) else "crashed"), None
    return ("crashed" if os.path.lexists(run_dir / "metrics.jsonl") else "pending"), None


# Statuses of training that ran to its end: it wrote params.npz and expectation.json before summary.json.
TRAINED = ("completed", "diverged")


def damage(run_dir: Path, status: str) -> tuple[str, str] | None:
    """(file name, what is wrong with it) for the first file of ``run_dir`` that does not
    hold what a summary.json saying ``status`` promises (module docstring); None if all
    do. Cheap enough for every status read: one small YAML file, sizes, a zip directory."""
    run_dir = Path(run_dir)
    config, problem = read_config(run_dir)
    if problem is not None:
        return "config.yaml", problem
    if status not in TRAINED:
        return None
    try:
        if (run_dir / "metrics.jsonl").stat().st_size == 0:
            return "metrics.jsonl", "empty"
    except FileNotFoundError:
        return "metrics.jsonl", "missing"
    except OSError as e:
        return "metrics.jsonl", f"cannot read ({e.strerror})"
    names = param_names(config)
    if names is None:
        return "config.yaml", "no model.hidden_dims list (the layer sizes params.npz is checked against)"
    if (problem := _npz_problem(run_dir / "params.npz", names)) is not None:
        return "params.npz", problem
    expectation, problem = _load_json(run_dir / "expectation.json")
    if problem is not None or expectation is None:
        return "expectation.json", problem or "missing"
    return None


def param_names(config: dict) -> list[str] | None:
    """The arrays of the config's network, named as ``nn.model.init_params`` names them
    (W1, b1, gamma1, beta1, running_mean1, running_var1, ..., WL, bL); None if the config
    has no ``model.hidden_dims`` list."""
    model = config.get("model")
    hidden = model.get("hidden_dims") if isinstance(model, dict) else None
    if not isinstance(hidden, list) or not hidden:
        return None
    norm = model.get("normalization")
    layers = len(hidden) + 1
    names = []
    for i in range(1, layers + 1):
        names += [f"W{i}", f"b{i}"]
        if i < layers and norm in ("batchnorm", "layernorm"):
            names += [f"gamma{i}", f"beta{i}"]
            if norm == "batchnorm":
                names += [f"running_mean{i}", f"running_var{i}"]
    return names


def _npz_problem(path: Path, names: list[str]) -> str | None:
    """What is wrong with params.npz at ``path``, read from its zip directory only."""
    import zipfile

    try:
        if path.stat().st_size == 0:
            return "empty"
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"cannot read ({e.strerror})"
    except Exception:  # noqa: BLE001 - a damaged zip fails in many ways (BadZipFile, struct.error); all mean this
        return "not a .npz file (not a zip archive, or truncated)"
    lacking = [n for n in names if f"{n}.npy" not in members]
    if lacking:
        shown = ", ".join(lacking[:4]) + (f" and {len(lacking) - 4} more" if len(lacking) > 4 else "")
        return f"has no {shown} (arrays the config's network needs)"
    return None


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


RETRAINED = "(status corrupt; a sweep trains it again)"


def read_run(run_dir: Path) -> RunRecord:
    """A run folder, read tolerantly: only a missing or unreadable config.yaml is an error
    (RunStoreError); every other problem becomes one line in ``warnings``. A damaged run
    (see ``damage``) keeps its summary, whose "reason" then says what is damaged."""
    run_dir = Path(run_dir)
    config, config_problem = read_config(run_dir)
    if config_problem == "missing":
        raise RunStoreError(f"{run_dir}: not a run folder (no config.yaml)")
    status, damaged = run_state(run_dir)
    damaged_file = damaged[0] if damaged else None
    if config_problem not in (None, CONFIG_EMPTY, CONFIG_NOT_MAPPING):
        raise RunStoreError(f"{run_dir / 'config.yaml'}: {config_problem}"
                            + (f" {RETRAINED}" if damaged_file == "config.yaml" else ""))
    warnings = []
    if config_problem is not None and damaged_file != "config.yaml":  # no summary promised it
        warnings.append(f"{run_dir / 'config.yaml'}: {config_problem}; its values are shown as None")
    records, w = read_metrics(run_dir / "metrics.jsonl")
    warnings += w
    summary, problem = _load_json(run_dir / "summary.json")
    if problem is not None:
        warnings.append(f"{run_dir / 'summary.json'}: {problem} {RETRAINED}")
    expectation, problem = _load_json(run_dir / "expectation.json")
    if problem is not None and damaged_file != "expectation.json":
        warnings.append(f"{run_dir / 'expectation.json'}: {problem}")
    if status == "corrupt" and summary is not None and damaged is None:
        warnings.append(f"{run_dir / 'summary.json'}: no valid status {RETRAINED}")
        summary = None
    if summary is not None:
        summary = checked_summary(summary, run_dir / "summary.json", warnings)
    if damaged is not None:
        warnings.append(f"{run_dir / damaged_file}: {damaged[1]}, but summary.json says "
                        f"{(summary or {}).get('status', 'it is finished')} {RETRAINED}")
        summary = summary and {**summary, "reason": f"{damaged_file}: {damaged[1]}"}
    warnings += foreign_files(run_dir)
    return RunRecord(
        path=run_dir,
        status=status,
        config=config or {},
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
    """The run's summary, or just its status if it has none (or an unreadable one); a
    damaged run's with status corrupt and the damage as its reason."""
    summary, _ = _load_json(Path(run_dir) / "summary.json")
    status, damaged = run_state(run_dir)
    if summary is None or (status not in FINAL_STATUSES and damaged is None):
        return {"run_id": Path(run_dir).name, "status": status}
    summary = checked_summary(summary, Path(run_dir) / "summary.json", [])
    return {**summary, "status": "corrupt", "reason": f"{damaged[0]}: {damaged[1]}"} if damaged else summary
