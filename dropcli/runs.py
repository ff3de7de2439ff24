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
        *.png                         written by `dropcli plot`
      <sweep-name>-<hash8>/           one sweep; hash8 over its base config and grid
        sweep.yaml                    the grid and the resolved run list
        <name>-<hash8>/ ...           its runs, same layout
        summary.csv                   one row per run (for pandas), rewritten after each run
        *.png, report.md              written by `dropcli plot`
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
unreadable file or a file dropcli does not know is a warning in ``RunRecord.warnings``,
unknown keys are ignored.

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
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunStoreError

SCHEMA_VERSION = 1
FINAL_STATUSES = ("completed", "diverged", "interrupted", "failed")
LOCKS_DIR = ".locks"
# What a run folder holds; anything else in it is reported as a foreign file.
RUN_FILES = frozenset({"config.yaml", "meta.json", "lock", "metrics.jsonl", "params.npz", "expectation.json",
                       "summary.json", "mc_eval.json", "report.md"})


class RunBusyError(RunStoreError):
    """Another live process is training this run."""


# --- writing --------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one."""
    path = Path(path)
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
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return False  # 0 and -1 would ask about whole process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a killed process whose parent died too stays a zombie until it is reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")
    except (OSError, ValueError):
        return True


def read_lock(run_dir: Path) -> dict | None:
    """The run's lock ({"pid", "host"}), None if there is none, {} if it is unreadable."""
    try:
        lock = json.loads((Path(run_dir) / "lock").read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return {}  # a lock torn while being written still means "someone was here"
    return lock if isinstance(lock, dict) else {}


def lock_is_live(lock: dict) -> bool:
    return lock.get("host") == socket.gethostname() and _pid_alive(lock.get("pid"))


class FileLock:
    """An exclusive ``flock`` on a file, held until ``release()`` or this process's death.

    ``FileLock.acquire(path, info)`` returns None if another process holds it. The file
    holds ``info`` as JSON while the lock is held and is removed on release; a process that
    dies leaves the file (a dead pid: the run reads ``crashed``) but not the lock.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: Path, info: dict) -> "FileLock | None":
        import fcntl

        path = Path(path)
        while True:
            # O_NOFOLLOW: a planted symlink named `lock` must not make us truncate its target
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            # We hold the inode we opened; it must still be the file at `path` (its holder
            # may have released it, i.e. unlinked it, between our open and our flock).
            try:
                same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        lock = cls(path, fd)
        try:
            data = json.dumps(info).encode()
            os.pwrite(fd, data, 0)  # in place: a stale lock taken over never reads empty meanwhile
            os.ftruncate(fd, len(data))
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self) -> None:
        """Remove the file, then drop the lock (in that order: see ``acquire``)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def _lock_info(**extra) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), **extra}


@contextlib.contextmanager
def claim_run(run_dir: Path, root: Path | None = None):
    """Hold ``run_dir`` exclusively while the block runs: its run id's lock in
    ``root/.locks`` (root: the runs folder, default ``run_dir.parent``) and its own
    ``lock``. Creates the folders. Raises RunBusyError if a live process holds either."""
    run_dir = Path(run_dir)
    locks = Path(root if root is not None else run_dir.parent) / LOCKS_DIR
    held = []
    try:
        for path, info in ((locks / run_dir.name, _lock_info(run_dir=str(run_dir))), (run_dir / "lock", _lock_info())):
            for _ in range(100):
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    lock = FileLock.acquire(path, info)
                    break
                except (FileNotFoundError, FileExistsError):  # another process removed the empty .locks meanwhile
                    continue
            else:
                raise RunStoreError(f"{path.parent}: cannot create this folder for the run's lock")
            if lock is None:
                raise RunBusyError(_busy_message(run_dir, path))
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()
        with contextlib.suppress(OSError):
            locks.rmdir()  # only if empty: the runs folder keeps no trace of finished work


def _busy_message(run_dir: Path, path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        holder = {}
    holder = holder if isinstance(holder, dict) else {}
    who = f" (pid {holder['pid']})" if "pid" in holder else ""
    where = holder.get("run_dir")
    elsewhere = f" in {where}" if where and Path(where) != run_dir else ""
    return f"{run_dir}: another dropcli process{who} is training this run right now{elsewhere}"


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
    return summary


# --- reuse ----------------------------------------------------------------------------


def find_peer(root: Path, run_id: str, statuses, exclude: Path | None = None) -> Path | None:
    """Another folder of run ``run_id`` under the runs folder ``root`` (a single run, or a
    run of one of its sweeps) whose status is in ``statuses``; None if there is none."""
    root = Path(root)
    candidates = [root / run_id]
    try:
        candidates += [d / run_id for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        pass
    same = os.path.realpath(exclude) if exclude is not None else None
    for path in candidates:
        if is_run_dir(path) and os.path.realpath(path) != same and run_status(path) in statuses:
            return path
    return None


REUSED_FILES = ("config.yaml", "meta.json", "metrics.jsonl", "params.npz", "expectation.json")


def reuse_run(peer: Path, run_dir: Path, root: Path) -> dict:
    """Give ``run_dir`` the finished run ``peer``'s files (hard links, or copies) and a
    summary saying where they came from; return that summary. Hold ``claim_run`` first."""
    peer, run_dir = Path(peer), Path(run_dir)
    summary = read_json(peer / "summary.json")
    if summary is None or summary.get("status") not in FINAL_STATUSES:
        raise RunStoreError(f"{peer}: no longer a finished run")
    (run_dir / "summary.json").unlink(missing_ok=True)  # readers must not pair an old summary with new files
    for name in REUSED_FILES:
        if (peer / name).is_file():
            _link_or_copy(peer / name, run_dir / name)
        else:
            (run_dir / name).unlink(missing_ok=True)
    summary = {k: v for k, v in summary.items() if k != "schema_version"}
    summary.update(run_id=run_dir.name, reused_from=os.path.relpath(peer, root))
    write_json(run_dir / "summary.json", summary)
    return summary


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp, follow_symlinks=False)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(src, tmp, follow_symlinks=False)
        os.chmod(tmp, 0o644)
    os.replace(tmp, dst)


def remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files that interrupted atomic writes left in ``run_dir``."""
    for p in Path(run_dir).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
