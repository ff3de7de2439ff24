"""The IDX format of MNIST and Fashion-MNIST, gzipped or not.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian uint32 sizes, then the values in C order. MNIST's images are type 0x08
(unsigned byte) with 3 dimensions (N, 28, 28); its labels type 0x08 with 1 (N,).
Whether a file is gzipped is read from its first two bytes, not from its name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped if it is a gzip stream; DataError if unreadable."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: the gzip stream is truncated or corrupt ({e}); download the file again") from None


def parse_idx(raw: bytes, where: str) -> np.ndarray:
    """The array an IDX byte string holds (native byte order)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{where}: not an IDX file (magic number {raw[:4].hex() or 'missing'}, "
                        f"expected 0000 then a type byte and a dimension count, e.g. 00000803)")
    dtype, ndim = _TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{where}: the IDX header is truncated or declares {ndim} dimensions")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{where}: the file is {what}: shape {shape} needs {expected} bytes, found {len(raw)}")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)  # read-only view for bytes


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array; DataError if it is not one."""
    return parse_idx(read_bytes(path), str(path))


def read_images_and_labels(images: Path, labels: Path, shape: tuple[int, ...], num_classes: int):
    """(X uint8 (N, prod(shape)), y uint8 (N,)) from a pair of IDX files, validated."""
    X = read_idx(images)
    y = read_idx(labels)
    if X.dtype != np.uint8 or X.shape[1:] != tuple(shape):
        raise DataError(f"{images}: expected unsigned-byte images of {'x'.join(map(str, shape))} pixels, "
                        f"found {X.dtype} values of shape {X.shape[1:]}")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise DataError(f"{labels}: expected a 1-D IDX array of unsigned-byte labels, found {y.dtype} {y.shape}")
    if len(X) != len(y):
        raise DataError(f"{images} has {len(X)} images but {labels} has {len(y)} labels")
    if len(X) == 0:
        raise DataError(f"{images}: holds no images (shape {X.shape}); every split needs at least one example")
    check_labels(y, num_classes, labels)
    return X.reshape(len(X), -1), y


def check_labels(y: np.ndarray, num_classes: int, where) -> None:
    """DataError naming the first label outside 0..num_classes-1."""
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{where}: label {y[i]} at index {i} is out of range; "
                        f"expected classes 0..{num_classes - 1}")
