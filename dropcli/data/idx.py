"""The IDX format of MNIST and Fashion-MNIST, gzipped or not.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian uint32 sizes, then the values in C order. MNIST's images are type 0x08
(unsigned byte) with 3 dimensions (N, 28, 28); its labels type 0x08 with 1 (N,).
Whether a file is gzipped is read from its first two bytes, not from its name.

The header is read and checked before the array is allocated: the size it declares must
fit in the file (a gzip stream expands at most ``GZIP_MAX_RATIO`` times) and in this
machine's memory, and gzip is decompressed into the array, never past its declared end,
so that a small file cannot claim or unpack gigabytes.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dropcli.errors import DataError
from dropcli.data import sniff

_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAX_RATIO = 1032  # deflate spends at least 2 bits on a 258-byte match: no stream expands more
CHUNK = 1 << 20  # bytes unpacked into the array per read


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where unknown): no decoded array can be larger."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def amount(nbytes: int) -> str:
    """``nbytes`` for a message: ``64 bytes``, ``1.5 MiB``, ``74.5 GiB``."""
    if nbytes < 1024:
        return f"{nbytes} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        nbytes /= 1024
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}"
    return ""  # pragma: no cover


def read_idx(path: Path, check: Callable[[np.dtype, tuple[int, ...]], None] | None = None,
             origin: sniff.Origin = sniff.Origin()) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array (native byte order); DataError if it is
    not one. ``check(dtype, shape)`` may refuse the header before the array is allocated;
    ``origin`` says where the file came from, for the message about a page or pointer in its place."""
    path = Path(path)
    try:
        size = path.stat().st_size
        sniff.check(path, "an IDX file", origin)
        with open(path, "rb") as raw:
            zipped = raw.read(2) == sniff.GZIP_MAGIC
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if zipped else raw
            dtype, shape = _read_header(f, path)
            if check:
                check(dtype.newbyteorder("="), shape)
            _check_room(path, dtype, shape, size, zipped)
            values = _read_values(f, path, dtype, shape)
    except EOFError:  # gzip's "Compressed file ended before the end-of-stream marker was reached"
        raise sniff.truncated(path, size, "gzip", origin) from None
    except (zlib.error, gzip.BadGzipFile) as e:
        raise origin.error(path, f"a corrupt gzip stream ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    return values.astype(dtype.newbyteorder("="), copy=False)


def _read_header(f, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (magic number {head.hex() or 'missing'}, "
                        f"expected 0000 then a type byte and a dimension count, e.g. 00000803)")
    ndim = head[3]
    dims = f.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DataError(f"{path}: the IDX header is truncated or declares {ndim} dimensions")
    return _TYPES[head[2]], tuple(int(n) for n in np.frombuffer(dims, dtype=">u4"))


def _check_room(path: Path, dtype: np.dtype, shape: tuple[int, ...], size: int, zipped: bool) -> None:
    """DataError unless the values the header declares fit in the file of ``size`` bytes and in memory."""
    nbytes = math.prod(shape) * dtype.itemsize
    expected = 4 + 4 * len(shape) + nbytes
    declares = f"{path}: the IDX header declares shape {shape} ({amount(nbytes)}), more than"
    if not zipped and size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise DataError(f"{path}: the file is {what}: shape {shape} needs {expected} bytes, found {size}")
    if zipped and nbytes > GZIP_MAX_RATIO * size:
        raise DataError(f"{declares} {amount(size)} of gzip can unpack to (at most {amount(GZIP_MAX_RATIO * size)}); "
                        f"the file is corrupt or forged: download it again")
    if (memory := machine_memory()) and nbytes > memory:
        raise DataError(f"{declares} this machine's {amount(memory)} of memory; use a smaller file")


def _read_values(f, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The values after the header, decompressed straight into the array and never past its end."""
    values = np.empty(shape, dtype)
    buffer = memoryview(values.reshape(-1).view(np.uint8))
    done = 0
    while done < len(buffer) and (n := f.readinto(buffer[done:done + CHUNK])):
        done += n
    header = 4 + 4 * len(shape)
    expected = header + len(buffer)
    if done < len(buffer):
        raise DataError(f"{path}: the file is truncated: shape {shape} needs {expected} bytes, found {header + done}")
    if f.read(1):  # one byte past the declared end is enough: a gzip bomb stops here
        raise DataError(f"{path}: the file is longer than its header says: shape {shape} needs {expected} bytes, "
                        f"found more")
    return values


def read_images_and_labels(images: Path, labels: Path, shape: tuple[int, ...], num_classes: int,
                           origin: sniff.Origin = sniff.Origin()):
    """(X uint8 (N, prod(shape)), y uint8 (N,)) from a pair of IDX files, validated."""

    def images_header(dtype, found):
        if dtype != np.uint8 or found[1:] != tuple(shape):
            raise DataError(f"{images}: expected unsigned-byte images of {'x'.join(map(str, shape))} pixels, "
                            f"found {dtype} values of shape {found[1:]}")

    def labels_header(dtype, found):
        if dtype != np.uint8 or len(found) != 1:
            raise DataError(f"{labels}: expected a 1-D IDX array of unsigned-byte labels, found {dtype} {found}")

    X = read_idx(images, images_header, origin)
    y = read_idx(labels, labels_header, origin)
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
