"""Decode once: a dataset's arrays as ``.npy`` files, memory-mapped on every later load.

Layout, inside the cache folder::

    decoded/<dataset>-<key>/        key: 10 hex of sha256 over the sources' resolved paths
        X_train.npy y_train.npy     uint8, as decoded (images flattened, labels 0..K-1)
        X_test.npy  y_test.npy
        source.json                 {"format": 1, "dataset", "sources": [{path, size, mtime_ns}],
                                     "arrays": {name: [shape, dtype]}}, written last

A folder is built under a temporary name and renamed into place, so a reader sees a
complete folder or none; two processes decoding at once (a sweep with -j 2) both finish,
and one folder wins. A source file that changed (size or mtime) is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dropcli.errors import DataError

FORMAT = 1
Alloc = Callable[[str, tuple, np.dtype], np.ndarray]


def _fingerprint(sources: Sequence[Path]) -> list[dict]:
    files = []
    for source in sources:
        source = Path(source).resolve()
        for path in sorted(source.iterdir()) if source.is_dir() else [source]:
            if path.is_file():
                st = path.stat()
                files.append({"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return files


def cache_folder(root: Path, dataset: str, sources: Sequence[Path]) -> Path:
    key = hashlib.sha256("\n".join(str(Path(s).resolve()) for s in sources).encode()).hexdigest()[:10]
    return Path(root) / "decoded" / f"{dataset}-{key}"


def _read(folder: Path, fingerprint: list[dict]) -> dict[str, np.ndarray] | None:
    """The memory-mapped arrays of a current, complete folder; None otherwise."""
    try:
        meta = json.loads((folder / "source.json").read_text())
        if meta.get("format") != FORMAT or meta.get("sources") != fingerprint:
            return None
        arrays = {}
        for name, (shape, dtype) in meta["arrays"].items():
            array = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if list(array.shape) != shape or str(array.dtype) != dtype:
                return None
            arrays[name] = array
        return arrays
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, truncated or from another version: decode again


def read_meta(folder: Path) -> dict | None:
    """``source.json`` of a decoded folder, for `dropcli data` listings; None if absent."""
    try:
        return json.loads((Path(folder) / "source.json").read_text())
    except (OSError, ValueError):
        return None


def decoded(root: Path, dataset: str, sources: Sequence[Path],
            decode: Callable[[Alloc], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays ``decode(alloc)`` makes from ``sources``, cached under ``root``, memory-mapped.

    ``decode`` must create its outputs with ``alloc(name, shape, dtype)`` and fill them.
    When ``root`` cannot be written, the arrays are decoded into memory instead.
    """
    folder = cache_folder(root, dataset, sources)
    fingerprint = _fingerprint(sources)
    if (arrays := _read(folder, fingerprint)) is not None:
        return arrays
    in_memory = lambda name, shape, dtype: np.empty(shape, dtype)  # noqa: E731
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    except OSError:
        return decode(in_memory)
    try:
        try:
            made = decode(lambda name, shape, dtype: np.lib.format.open_memmap(
                tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape))
            for array in made.values():
                array.flush()
            meta = {"format": FORMAT, "dataset": dataset, "sources": fingerprint,
                    "arrays": {k: [list(v.shape), str(v.dtype)] for k, v in made.items()}}
            (tmp / "source.json").write_text(json.dumps(meta, indent=1))
            del made
            _publish(tmp, folder, fingerprint)
        except OSError as e:
            raise DataError(f"{dataset}: cannot write the decoded copy into {tmp.parent} ({e.strerror or e}); "
                            f"free some space or set DROPCLI_DATA_DIR to another folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only left if publishing failed
    arrays = _read(folder, fingerprint)
    return decode(in_memory) if arrays is None else arrays  # None: could not publish (a race)


def _publish(tmp: Path, folder: Path, fingerprint: list[dict]) -> None:
    """Rename ``tmp`` to ``folder``; an outdated ``folder`` is moved aside first."""
    for _ in range(3):
        try:
            os.rename(tmp, folder)
            return
        except OSError:
            if _read(folder, fingerprint) is not None:
                return  # another process published the same arrays first
            stale = folder.with_name(f".{folder.name}-stale-{os.getpid()}")
            try:
                os.rename(folder, stale)
            except FileNotFoundError:
                continue
            shutil.rmtree(stale, ignore_errors=True)
