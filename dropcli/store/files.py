"""Reading and writing the store's files (see ``dropcli.store.layout``): atomic whole-file
writes, JSON with ``schema_version``, metrics.jsonl appended record by record, and
tolerant readers that say what is wrong with a file instead of raising."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.layout import CONFIG_FILE, SCHEMA_VERSION

# --- writing --------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one."""
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path: Path):
    """A binary file to write that replaces ``path`` when the block ends (fsynced, mode
    0644); if the block raises, ``path`` is left as it was and the temporary file goes."""
    path = Path(path)
    with naming(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # never a planted file
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
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
    obj, problem = load_json(path)
    if problem is not None:
        raise RunStoreError(f"{path}: {problem}")
    return obj


def load_json(path: Path) -> tuple[dict | None, str | None]:
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


# What may be wrong with a config.yaml that still lets its run be read (values shown as None).
CONFIG_EMPTY, CONFIG_NOT_MAPPING = "empty", "not a mapping of config keys"


def read_config(run_dir: Path) -> tuple[dict | None, str | None]:
    """config.yaml's mapping and None, or None and what is wrong with the file ("missing",
    "empty", "not valid YAML (...)", ...)."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
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
