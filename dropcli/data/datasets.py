"""Real datasets: where their files come from, how they are read, and the decoded cache.

    catalog.py      MNIST, Fashion-MNIST, CIFAR-10: files, pinned SHA-256, addresses, splits
    sources.py      data.path, else the cache folder ($DROPCLI_DATA_DIR), else a download
    download.py     pooch: verified downloads, never a partial file ($DROPCLI_DATA_MIRROR)
    idx.py          MNIST's IDX files;  cifar.py: CIFAR-10's pickled batches;  npz.py: your arrays
    safe_pickle.py  the restricted unpickler CIFAR-10 is read through
    sniff.py        a web page, Git LFS pointer, empty or truncated file in a dataset file's place
    cache.py        decode once into uint8 .npy files, memory-mapped afterwards
    mnist1d.py      the built-in MNIST-1D: its shipped arrays, their provenance and digest

``dropcli.data.load`` turns these arrays into standardised splits; this package knows
nothing about training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dropcli.errors import DataError
from dropcli.data.cache import cache_folder, decoded, read_meta
from dropcli.data.catalog import CATALOG, DatasetSpec, RemoteFile
from dropcli.data.cifar import read_cifar10
from dropcli.data.download import MIRROR_ENV, Progress
from dropcli.data.idx import read_images_and_labels
from dropcli.data.sources import DATA_DIR_ENV, Located, data_dir, dataset_dir, expected_files, find_in, locate
from dropcli.data.npz import read_npz

__all__ = [
    "BUILT_IN", "CATALOG", "DATA_DIR_ENV", "MIRROR_ENV", "NAMES", "DatasetSpec", "Loaded", "RemoteFile",
    "data_dir", "dataset_dir", "fetch", "load_arrays", "read_npz", "status", "summary",
]

# Every value of data.dataset, with what it is (the built-in ones and npz need no catalog entry).
NAMES = {
    "mnist1d": "MNIST-1D (Greydanus 2020), built in (5000 signals of 40 numbers, 10 classes)",
    "digits": "scikit-learn's 8x8 digits, built in (1797 images, 10 classes; split by the seed)",
    **{name: spec.title for name, spec in CATALOG.items()},
    "npz": "your own arrays in a .npz file given as data.path",
}
BUILT_IN = ("mnist1d", "digits")  # shipped inside dropcli: no download, no data.path


@dataclass(frozen=True)
class Loaded:
    """A catalog dataset's official splits, uint8 and memory-mapped where the cache allowed."""

    spec: DatasetSpec
    located: Located
    arrays: dict[str, np.ndarray]  # X_train (N, D), y_train (N,), X_test, y_test


def spec_of(name: str) -> DatasetSpec:
    try:
        return CATALOG[name]
    except KeyError:
        if name in NAMES:
            what = "is built in" if name in BUILT_IN else "reads your own file (data.path)"
            raise DataError(f"{name} {what}: there is nothing to download") from None
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(NAMES)}") from None


def load_arrays(name: str, path=None, *, cache_dir: Path | None = None, progress: Progress | None = None,
                allow_download: bool = True) -> Loaded:
    """The official train and test arrays of ``name``, found, downloaded and decoded as needed."""
    spec = spec_of(name)
    located = locate(spec, path, cache_dir=cache_dir, progress=progress, allow_download=allow_download)
    root = Path(cache_dir or data_dir())
    arrays = decoded(root, spec.name, located.paths, lambda alloc: _decode(spec, located, alloc))
    n_train = len(arrays["X_train"])
    if n_train <= spec.num_val:
        raise DataError(f"{located.paths[0]}: {n_train} training examples; {spec.name} takes the last "
                        f"{spec.num_val} of them as the validation split, so it needs more")
    return Loaded(spec, located, arrays)


def _decode(spec: DatasetSpec, located: Located, alloc) -> dict[str, np.ndarray]:
    paths, origin = located.paths, located.file_origin(spec)
    if spec.format == "cifar-python":
        return read_cifar10(paths[0], alloc, origin)
    out = {}
    for split, (images, labels) in (("train", paths[0:2]), ("test", paths[2:4])):
        X, y = read_images_and_labels(images, labels, spec.image_shape, spec.num_classes, origin)
        out[f"X_{split}"] = alloc(f"X_{split}", X.shape, np.uint8)
        out[f"X_{split}"][...] = X
        out[f"y_{split}"] = alloc(f"y_{split}", y.shape, np.uint8)
        out[f"y_{split}"][...] = y
    return out


def fetch(name: str, *, cache_dir: Path | None = None, progress: Progress | None = None) -> Loaded:
    """Download (if missing), verify and decode ``name`` into the cache folder."""
    return load_arrays(name, None, cache_dir=cache_dir, progress=progress)


def status(name: str, *, cache_dir: Path | None = None) -> dict:
    """What of ``name`` is in the cache folder, without downloading or decoding anything."""
    spec = spec_of(name)
    folder = dataset_dir(spec, cache_dir)
    found = find_in(spec, folder)
    meta = None
    if None not in found:
        meta = read_meta(cache_folder(Path(cache_dir or data_dir()), spec.name, found))
    return {
        "name": name, "folder": folder, "files": list(zip(spec.files, found)),
        "complete": None not in found, "decoded": meta,
        "state": "decoded" if meta else "downloaded" if None not in found else
                 "partial" if any(found) else "not downloaded",
    }


def summary(X_train, y_train, X_val, y_val, X_test=None, y_test=None, class_names=None, num_classes=None) -> dict:
    """Shapes and per-class counts of a set of splits, for `dropcli data info`.

    ``num_classes`` (else the number of class names) must come from validated labels: the
    per-class counts are arrays of that length.
    """
    splits = {"train": (X_train, y_train), "val": (X_val, y_val)}
    if X_test is not None:
        splits["test"] = (X_test, y_test)
    k = num_classes or len(class_names)
    return {
        "input_dim": int(X_train.shape[1]),
        "num_classes": k,
        "class_names": list(class_names) if class_names else [str(i) for i in range(k)],
        "splits": {s: {"examples": len(X), "dtype": str(X.dtype),
                       "per_class": np.bincount(np.asarray(y, dtype=np.int64), minlength=k).tolist()}
                   for s, (X, y) in splits.items()},
    }


__all__ += ["expected_files", "spec_of"]
