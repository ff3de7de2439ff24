"""Your own arrays in a ``.npz``: either the splits or one pool that the seed splits.

    X_train, y_train, X_val, y_val [, X_test, y_test]     the splits, as you made them
    X, y                                                  one pool: 80% / 10% / 10% by the seed

X arrays hold one example per row (any trailing shape is flattened, at least one number
each) of numbers; y arrays hold integer labels. The training labels (``y_train``, or the
pool's ``y``) are the classes: 0..K-1 without gaps, K >= 2; validation and test labels are
some of them. Read with ``allow_pickle=False``: an array of Python objects is refused, never
unpickled, and a file that is not a zip archive is refused before numpy reads it (numpy
would otherwise take it for a pickle). Each array's ``.npy`` header is read first: an array
that claims more bytes than its member of the zip holds, or more than this machine's memory,
is refused before numpy allocates it.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dropcli.errors import DataError
from dropcli.data import sniff
from dropcli.data.idx import amount, machine_memory
from dropcli.data.sources import shown

SPLIT_KEYS = ("X_train", "y_train", "X_val", "y_val")
TEST_KEYS = ("X_test", "y_test")
POOL_KEYS = ("X", "y")
LAYOUTS = "X_train, y_train, X_val, y_val [, X_test, y_test], or X, y"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive's first bytes (an empty one's: its end record)
NPY_MAGIC = b"\x93NUMPY"


def read_npz(path) -> tuple[dict[str, np.ndarray], int]:
    """The validated arrays of ``path`` (X flattened to (N, D)) and the number of classes."""
    path = Path(path).expanduser()
    try:
        sniff.check(path, "a .npz file", sniff.DATA_PATH)
        head = sniff.read_head(path, len(NPY_MAGIC))
        if not head.startswith(ZIP_MAGIC + (NPY_MAGIC,)):  # numpy would try it as a pickle
            raise DataError(f"{path}: not a .npz file (not a zip archive); npz expects a file written by "
                            f"numpy.savez with {LAYOUTS}")
        if head.startswith(ZIP_MAGIC[0]) and not zipfile.is_zipfile(path):  # a zip's end record is its last bytes
            raise sniff.truncated(path, path.stat().st_size, "zip", sniff.DATA_PATH)
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
            _check_sizes(z.zip, wanted, path)
            arrays = {k: _read(z, k, path) for k in wanted}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"data.path: {shown(path)} does not exist; npz expects a .npz file with {LAYOUTS}",
                        key="data.path") from None
    except IsADirectoryError:
        raise DataError(f"data.path: {path} is a folder; npz expects a .npz file with {LAYOUTS}",
                        key="data.path") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    return _check(arrays, path)


def npy_header(archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """(shape, dtype, bytes declared, bytes held) of the array ``key`` of an ``.npz``, from its
    ``.npy`` header alone: the bytes its shape and dtype declare, and the bytes its member of
    the zip holds after the header. ValueError if the member is not a ``.npy`` array."""
    member = f"{key}.npy" if f"{key}.npy" in archive.namelist() else key
    info = archive.getinfo(member)
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)  # ValueError unless the member starts as a .npy does
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        return shape, dtype, math.prod(shape) * dtype.itemsize, info.file_size - f.tell()


def _check_sizes(archive: zipfile.ZipFile, keys, path: Path) -> None:
    """DataError unless each array's header declares no more than its member holds, and all of
    them fit in this machine's memory: checked before numpy allocates anything that large."""
    total = 0
    for key in keys:
        try:
            shape, dtype, declared, held = npy_header(archive, key)
        except ValueError as e:
            raise DataError(f"{path}: {key} is not a .npy array ({e}); save the arrays with numpy.savez") from None
        if dtype.hasobject:
            continue  # refused unread by _read: dropcli does not unpickle
        if declared > held:
            raise DataError(f"{path}: the header of {key} declares {dtype} of shape {shape} ({amount(declared)}), "
                            f"but the file holds {amount(held)} for it; the file is corrupt or forged: "
                            f"write it again with numpy.savez")
        total += declared
    if (memory := machine_memory()) and total > memory:
        raise DataError(f"{path}: its arrays take {amount(total)}, more than this machine's {amount(memory)} "
                        f"of memory; save a smaller subset")


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
            raise DataError(f"{path}: {xk} is empty (shape {X.shape}); every split needs at least one example")
        if X.size == 0:
            raise DataError(f"{path}: {xk} has 0 features (shape {X.shape}); each example needs at least one number")
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            raise DataError(f"{path}: {xk} contains NaN or infinite values")
        if y.min() < 0:
            i = int(np.argmin(y))
            raise DataError(f"{path}: {yk} has a negative label {y[i]} at index {i}; labels must be 0..K-1")
        X = X.reshape(len(X), -1)
        dims.add(X.shape[1])
        out[xk], out[yk] = X, y
    if len(dims) > 1:
        raise DataError(f"{path}: the X arrays have different numbers of features: {sorted(dims)}")
    num_classes = _num_classes(out, path)
    if "X" in out and len(out["X"]) < 10:
        raise DataError(f"{path}: X has {len(out['X'])} examples; splitting it needs at least 10")
    return out, num_classes


def _num_classes(out: dict[str, np.ndarray], path: Path) -> int:
    """K, the number of distinct training labels, after checking that they are 0..K-1 and
    that the other splits' labels are among them.

    Works on the distinct values (a sort of the labels), never on an array as long as the
    largest label: a label of 10**9 is an error here, not a 10**9-class network.
    """
    yk = "y" if "y" in out else "y_train"
    classes = np.unique(out[yk])  # sorted, all >= 0
    k = len(classes)
    if k < 2:
        raise DataError(f"{path}: {yk} has only one distinct label ({classes[0]}); "
                        f"a classifier needs at least two classes")
    if classes[-1] != k - 1:  # k distinct labels >= 0 are 0..k-1 exactly when the largest is k-1
        first = classes[classes >= k][0]
        raise DataError(f"{path}: {yk} has label {first}; labels must be 0..K-1 without gaps "
                        f"(found {k} distinct labels: {_some(classes)})")
    for other in ("y_val", "y_test"):
        if other in out and (top := out[other].max()) >= k:
            raise DataError(f"{path}: {other} has label {top}, which is not a class of {yk} (0..{k - 1}); "
                            f"validation and test labels must be among the training labels")
    return k


def _some(values: np.ndarray, head: int = 5) -> str:
    """``0, 1, 2`` or, for many values, ``0, 1, 2, 3, 4, ..., 999``."""
    if len(values) <= head + 1:
        return ", ".join(str(v) for v in values)
    return f"{', '.join(str(v) for v in values[:head])}, ..., {values[-1]}"
