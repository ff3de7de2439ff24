"""Dataset files in their real formats, made by the tests; and a file server on 127.0.0.1.

Other data tests import from here (``tests/`` is on sys.path). The files are the real
thing at a smaller size: IDX with the right magic numbers (gzipped like the published
ones, or not), a ``cifar-10-python.tar.gz`` of batches pickled the way Python 2 wrote
them, npz files. Run as a script to write a full-size CIFAR-10 archive (the benchmark
in the issue)::

    python tests/test_data_files.py cifar10 OUT_DIR [--images-per-batch 10000]
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import sys
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from dropcli.data.datasets import CATALOG
from dropcli.data.catalog import RemoteFile
from dropcli.data.cifar import BATCHES, TEST_BATCH, TRAIN_BATCHES
from dropcli.data.safe_pickle import safe_loads

# --------------------------------------------------------------------------- IDX


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file: 0x00 0x00 0x08 ndim, big-endian sizes, the bytes."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool | None = None) -> Path:
    data = idx_bytes(array)
    gz = str(path).endswith(".gz") if gz is None else gz
    Path(path).write_bytes(gzip.compress(data, compresslevel=1, mtime=0) if gz else data)
    return Path(path)


IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def make_idx_dataset(folder: Path, n_train=10_200, n_test=300, seed=0, gz=True, shape=(28, 28)) -> dict:
    """Four MNIST-style IDX files in ``folder``; returns the arrays written (images (N, 28, 28))."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(y)
        # mostly blank pixels like MNIST (so gzip has something to do), a class-dependent stroke
        X = np.zeros((n, *shape), np.uint8)
        X[:, 4:24:2, 4:24:2] = rng.integers(0, 256, size=(n, 10, 10), dtype=np.uint8)
        X[np.arange(n), y + 2, 2] = 255
        arrays[f"X_{split}"], arrays[f"y_{split}"] = X, y
    suffix = ".gz" if gz else ""
    for name, key in zip(IDX_NAMES, ("X_train", "y_train", "X_test", "y_test")):
        write_idx(folder / f"{name}{suffix}", arrays[key], gz=gz)
    return arrays


# --------------------------------------------------------------------------- CIFAR-10


class Py2Pickler(pickle._Pickler):
    """Pickles the way Python 2 did for the CIFAR-10 files: bytes as (SHORT_)BINSTRING and
    numpy's globals under ``numpy.core`` (numpy 2 moved them to ``numpy._core``)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_str(self, obj: bytes):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_str

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode("ascii"))
        self.memoize(obj)


def cifar_batch_bytes(data: np.ndarray, labels, label: bytes = b"training batch 1 of 5") -> bytes:
    """One CIFAR-10 batch pickle: {'batch_label', 'labels', 'data', 'filenames'} (py2 str keys)."""
    batch = {b"batch_label": label, b"labels": [int(v) for v in labels], b"data": data,
             b"filenames": [b"img_%05d.png" % i for i in range(len(labels))]}
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(batch)
    return buf.getvalue()


def make_cifar_batches(n_per_batch=250, n_test=200, seed=0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Batch name -> (data uint8 (N, 3072) in channel planes, labels uint8 (N,))."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in BATCHES:
        n = n_test if name == TEST_BATCH else n_per_batch
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        out[name] = (rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), labels)
    return out


def write_cifar_archive(path: Path, batches: dict, raw: dict[str, bytes] | None = None) -> Path:
    """``cifar-10-python.tar.gz``: cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    raw = dict(raw or {})
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name in BATCHES:
            payload = raw.pop(name, None) or cifar_batch_bytes(*batches[name], label=name.encode())
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        meta = cifar_batch_bytes(np.zeros((0, 3072), np.uint8), [])  # stands in for batches.meta
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return Path(path)


def write_cifar_folder(folder: Path, batches: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in BATCHES:
        (folder / name).write_bytes(cifar_batch_bytes(*batches[name]))
    return folder


def cifar_hwc(data: np.ndarray) -> np.ndarray:
    """Channel planes -> height-width-channel rows, as dropcli (and cs231n) store images."""
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(len(data), -1)


# A pickle that calls os.system('echo pwned') when loaded by pickle.loads.
MALICIOUS_PICKLE = b"cos\nsystem\n(S'echo pwned > pwned.txt'\ntR."


# --------------------------------------------------------------------------- catalog stand-ins


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec_for(name: str, folder: Path, **changes):
    """The catalog entry of ``name`` with its files replaced by those in ``folder`` (hash, size)."""
    spec = CATALOG[name]
    files = tuple(RemoteFile(f.name, sha256(folder / f.name), (folder / f.name).stat().st_size) for f in spec.files)
    return replace(spec, files=files, **changes)


# --------------------------------------------------------------------------- a file server


class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1; paths in ``truncate`` break off halfway."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------- the generators themselves


def test_idx_files_have_the_mnist_magic_numbers(tmp_path):
    make_idx_dataset(tmp_path, n_train=20, n_test=10, gz=False)
    images = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    labels = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    assert images[:4] == b"\x00\x00\x08\x03" and struct.unpack(">3I", images[4:16]) == (20, 28, 28)
    assert labels[:4] == b"\x00\x00\x08\x01" and struct.unpack(">I", labels[4:8]) == (20,)
    assert len(images) == 16 + 20 * 784 and len(labels) == 8 + 20


def test_cifar_batches_pickle_like_python_2():
    data = np.arange(2 * 3072, dtype=np.uint64).astype(np.uint8).reshape(2, 3072)
    raw = cifar_batch_bytes(data, [3, 7])
    assert raw.startswith(b"\x80\x02}")  # protocol 2, a dict
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"U\x04data" in raw
    assert b"_codecs" not in raw  # bytes went out as py2 strings, not Python 3 bytes
    batch = safe_loads(raw)
    assert batch["labels"] == [3, 7] and np.array_equal(batch["data"], data)


def test_the_malicious_pickle_really_is_one(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("os.system", lambda cmd: calls.append(cmd) or 0)
    pickle.loads(MALICIOUS_PICKLE)  # what an unrestricted loader would do
    assert calls == ["echo pwned > pwned.txt"]


def main(argv):
    import argparse

    parser = argparse.ArgumentParser(description="Write a CIFAR-10-sized cifar-10-python.tar.gz of random images.")
    parser.add_argument("what", choices=["cifar10"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images-per-batch", type=int, default=10_000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cifar-10-python.tar.gz"
    n = args.images_per_batch
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name in BATCHES:  # one batch in memory at a time
            labels = rng.integers(0, 10, size=n).astype(np.uint8)
            payload = cifar_batch_bytes(rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), labels)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    print(f"{path}: {path.stat().st_size} bytes, {len(TRAIN_BATCHES)} x {n} training + {n} test images")


if __name__ == "__main__":
    main(sys.argv[1:])
