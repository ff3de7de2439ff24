"""Your own arrays in a ``.npz``: either the splits or one pool that the seed splits.

    X_train, y_train, X_val, y_val [, X_test, y_test]     the splits, as you made them
    X, y                                                  one pool: 80% / 10% / 10% by the seed

X arrays hold one example per row (any trailing shape is flattened) of numbers; y arrays
hold integer labels 0..K-1 (K is the largest label plus one). Read with
``allow_pickle=False``: an array of Python objects is refused, never unpickled.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

SPLIT_KEYS = ("X_train", "y_train", "X_val", "y_val")
TEST_KEYS = ("X_test", "y_test")
POOL_KEYS = ("X", "y")
LAYOUTS = "X_train, y_train, X_val, y_val [, X_test, y_test], or X, y"


def read_npz(path) -> tuple[dict[str, np.ndarray], int]:
    """The validated arrays of ``path`` (X flattened to (N, D)) and the number of classes."""
    path = Path(path).expanduser()
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: holds a single array; npz expects a .npz file with {LAYOUTS}")
        with z:
            keys = set(z.files)
            if set(SPLIT_KEYS) <= keys:
                wanted = SPLIT_KEYS + (TEST_KEYS if set(TEST_KEYS) & keys else ())
            elif set(POOL_KEYS) <= keys:
                wanted = POOL_KEYS
            else:
                raise DataError(f"{path}: expected arrays {LAYOUTS}; found {', '.join(sorted(keys)) or 'none'}")
            missing = [k for k in wanted if k not in keys]
            if missing:
                raise DataError(f"{path}: has {' and '.join(k for k in TEST_KEYS if k in keys)} but no "
                                f"{', '.join(missing)}; give both X_test and y_test, or neither")
            arrays = {k: _read(z, k, path) for k in wanted}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"data.path: {path} does not exist; npz expects a .npz file with {LAYOUTS}") from None
    except IsADirectoryError:
        raise DataError(f"data.path: {path} is a folder; npz expects a .npz file with {LAYOUTS}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    return _check(arrays, path)


def _read(z, key: str, path: Path) -> np.ndarray:
    try:
        return z[key]
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise DataError(f"{path}: {key} holds Python objects, which dropcli does not unpickle; "
                            f"save a numeric array") from None
        raise


def _check(arrays: dict[str, np.ndarray], path: Path) -> tuple[dict[str, np.ndarray], int]:
    out, dims = {}, set()
    for xk in [k for k in arrays if k.startswith("X")]:
        yk = "y" + xk[1:]
        X, y = arrays[xk], arrays[yk]
        if X.dtype.kind not in "biuf" or X.ndim < 2:
            raise DataError(f"{path}: {xk} should be a numeric array with one example per row, "
                            f"found {X.dtype} of shape {X.shape}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]  # (N, 1), as Keras stores CIFAR labels
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise DataError(f"{path}: {yk} should be a 1-D array of integer labels, found {y.dtype} of shape {y.shape}")
        if len(X) != len(y):
            raise DataError(f"{path}: {xk} has {len(X)} rows but {yk} has {len(y)} labels")
        if len(X) == 0:
            raise DataError(f"{path}: {xk} is empty")
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            raise DataError(f"{path}: {xk} contains NaN or infinite values")
        if len(y) and y.min() < 0:
            i = int(np.argmin(y))
            raise DataError(f"{path}: {yk} has a negative label {y[i]} at index {i}; labels must be 0..K-1")
        X = X.reshape(len(X), -1)
        dims.add(X.shape[1])
        out[xk], out[yk] = X, y
    if len(dims) > 1:
        raise DataError(f"{path}: the X arrays have different numbers of features: {sorted(dims)}")
    num_classes = 1 + max(int(y.max()) for k, y in out.items() if k.startswith("y"))
    if num_classes < 2:
        raise DataError(f"{path}: all labels are 0; a classifier needs at least two classes")
    if "X" in out and len(out["X"]) < 10:
        raise DataError(f"{path}: X has {len(out['X'])} examples; splitting it needs at least 10")
    return out, num_classes
