"""CIFAR-10, python version: ``cifar-10-python.tar.gz`` or its ``cifar-10-batches-py/`` folder.

Each of ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` is a pickled dict with
``data`` (uint8, N x 3072: the red plane, then green, then blue, each 32x32 row-major)
and ``labels`` (N ints in 0..9). Batches are read through ``safe_pickle`` and straight
out of the archive (nothing is extracted to disk), once the size the archive (or the
folder) gives for them is known to be at most ``MAX_BATCH_BYTES``. Images are returned
flattened in height-width-channel order, the order of cs231n's ``load_CIFAR10``.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from dropcli.errors import DataError
from dropcli.data import sniff
from dropcli.data.idx import amount, check_labels
from dropcli.data.safe_pickle import RefusedGlobal, TruncatedPickle, safe_loads

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = (*TRAIN_BATCHES, TEST_BATCH)
_PIXELS = 32 * 32 * 3
MAX_BATCH_BYTES = 60_000 * 3_200  # all 60,000 images with labels and file names (a real batch: 31 MB)


def _check_batch_size(where: str, size: int) -> None:
    """DataError before reading a batch larger than all of CIFAR-10 (a decompression bomb)."""
    if size > MAX_BATCH_BYTES:
        raise DataError(f"{where}: the batch is {amount(size)}, more than all of CIFAR-10's 60,000 images take "
                        f"({amount(MAX_BATCH_BYTES)}); the file is corrupt or forged: download it again")


def _archive_batches(path: Path, origin: sniff.Origin):
    """(name, raw pickle) of each batch in a tar.gz, in one pass (no seeking, no extraction)."""
    seen = set()
    try:
        sniff.check(path, f"a CIFAR-10 archive ({ARCHIVE})", origin)
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in BATCHES and name not in seen:
                    seen.add(name)
                    _check_batch_size(f"{path}:{name}", member.size)
                    yield name, archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        if isinstance(e, EOFError) or "unexpected end of data" in str(e):  # tarfile's words for a stream cut short
            gzipped = sniff.read_head(path, 2) == sniff.GZIP_MAGIC
            raise sniff.truncated(path, path.stat().st_size, "gzip" if gzipped else "tar", origin) from None
        raise DataError(f"{path}: not a readable tar.gz archive ({e}); download it again") from None


def _folder_batches(folder: Path, origin: sniff.Origin):
    for name in BATCHES:
        try:
            _check_batch_size(str(folder / name), (folder / name).stat().st_size)
            sniff.check(folder / name, "a CIFAR-10 batch (a pickled dict)", origin)
            yield name, (folder / name).read_bytes()
        except FileNotFoundError:
            raise DataError(f"{folder}: no {name}; expected the files of {FOLDER}/: {', '.join(BATCHES)}") from None
        except OSError as e:
            raise DataError(f"{folder / name}: cannot read ({e.strerror})") from None


def parse_batch(raw: bytes, where: str, origin: sniff.Origin = sniff.Origin()) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 (N, 3072) in the file's channel-plane order, labels uint8 (N,))."""
    try:
        batch = safe_loads(raw)
    except TruncatedPickle:
        raise sniff.truncated(where, len(raw), "pickle", origin) from None
    except RefusedGlobal as e:
        raise DataError(f"{where}: refused to unpickle: {e} (a genuine CIFAR-10 batch holds only "
                        f"dicts, lists, bytes, ints and numpy arrays)") from None
    except Exception as e:  # noqa: BLE001 - a corrupt pickle fails in many ways; all mean the same
        raise DataError(f"{where}: not a readable CIFAR-10 batch (corrupt or truncated pickle: "
                        f"{type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{where}: expected a pickled dict with data and labels, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' should be a uint8 array of N x {_PIXELS} pixels, found {found}")
    if not isinstance(labels, (list, np.ndarray)) or not all(isinstance(v, (int, np.integer)) for v in labels):
        raise DataError(f"{where}: 'labels' should be a list of integers")
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(data),):
        raise DataError(f"{where}: {len(data)} images but {len(y)} labels")
    check_labels(y, 10, where)
    return data, y.astype(np.uint8)


def read_cifar10(source: Path, alloc, origin: sniff.Origin = sniff.Origin()) -> dict[str, np.ndarray]:
    """X_train, y_train, X_test, y_test from the archive or the batches folder ``source``.

    ``alloc(name, shape, dtype)`` gives the output arrays (e.g. ``.npy`` files opened as
    memory maps), so that the decoded images are written once, not copied around.
    ``origin`` says where ``source`` came from, for the message about a bad file.
    """
    source = Path(source)
    if source.is_dir():
        parsed = {name: parse_batch(raw, source / name, origin) for name, raw in _folder_batches(source, origin)}
    else:
        parsed = {name: parse_batch(raw, f"{source}:{name}", origin) for name, raw in _archive_batches(source, origin)}
    missing = [b for b in BATCHES if b not in parsed]
    if missing:
        raise DataError(f"{source}: the archive has no {', '.join(missing)}; expected {FOLDER}/ with "
                        f"{', '.join(BATCHES)}")
    out = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))):
        n = sum(len(parsed[b][0]) for b in names)
        if n == 0:
            raise DataError(f"{source}: the {split} split ({', '.join(names)}) has no images; "
                            f"every split needs at least one example")
        X = alloc(f"X_{split}", (n, _PIXELS), np.uint8)
        y = alloc(f"y_{split}", (n,), np.uint8)
        lo = 0
        for b in names:
            data, labels = parsed.pop(b)
            hi = lo + len(data)
            # channel planes (3, 32, 32) -> height-width-channel (32, 32, 3), written in place
            X[lo:hi].reshape(-1, 32, 32, 3)[...] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            y[lo:hi] = labels
            lo = hi
        out[f"X_{split}"], out[f"y_{split}"] = X, y
    return out
