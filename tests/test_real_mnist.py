"""The genuine MNIST test set, as Yann LeCun's page publishes it, through dropcli's IDX reader,
the checksum that verifies downloads, and the files seen in the wild made from it.

The files are read where they are, never copied into the repository: ``$DROPCLI_MNIST_T10K``
if set, else ``../shared/data/mnist-t10k/`` beside this checkout. Every test skips, saying
where it looked, when they are absent (as on a user's machine).
"""

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_data_files import FileServer
from test_data_impostors import finding, lfs_pointer, refused_in_one_line

from dropcli.data.catalog import MNIST
from dropcli.data.datasets import CATALOG
from dropcli.data.download import DownloadFailed, addresses, download
from dropcli.data.idx import read_idx, read_images_and_labels
from dropcli.errors import DataError

FOLDER = Path(os.environ.get("DROPCLI_MNIST_T10K")
              or (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist-t10k").resolve())
IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
# Images per digit 0..9 in the MNIST test set (LeCun, Cortes and Burges), and its first ten labels.
CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.fixture(scope="module")
def t10k() -> Path:
    missing = [name for name in (IMAGES, LABELS) if not (FOLDER / name).is_file()]
    if missing:
        pytest.skip(f"the genuine MNIST test set is not at {FOLDER} (no {', '.join(missing)}); "
                    f"set DROPCLI_MNIST_T10K to the folder that holds it")
    return FOLDER


@pytest.fixture(autouse=True)
def _here(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DROPCLI_DATA_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)


def catalog_file(name: str):
    return next(f for f in MNIST.files if f.name == name)


def test_the_idx_reader_reads_the_ten_thousand_test_images(t10k):
    X = read_idx(t10k / IMAGES)
    assert X.shape == (10_000, 28, 28) and X.dtype == np.uint8
    assert X.min() == 0 and X.max() == 255
    y = read_idx(t10k / LABELS)
    assert y.shape == (10_000,) and y.dtype == np.uint8
    assert y[:10].tolist() == FIRST_LABELS
    assert np.bincount(y, minlength=10).tolist() == CLASS_COUNTS
    flat, labels = read_images_and_labels(t10k / IMAGES, t10k / LABELS, MNIST.image_shape, MNIST.num_classes)
    assert flat.shape == (10_000, 784) and np.array_equal(flat, X.reshape(10_000, -1)) and np.array_equal(labels, y)


def test_the_catalog_pins_the_published_checksums_and_sizes(t10k):
    readme = (t10k / "README.md").read_text()
    for name in (IMAGES, LABELS):
        size, sha = re.search(rf"{re.escape(name)}\s+([\d,]+) bytes\s+sha256 ([0-9a-f]{{64}})", readme).groups()
        data = (t10k / name).read_bytes()
        pinned = catalog_file(name)
        assert (pinned.sha256, pinned.size) == (sha, int(size.replace(",", ""))) == (
            hashlib.sha256(data).hexdigest(), len(data)), name


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.stop()


def test_downloads_of_the_real_files_pass_the_catalogs_checksum(t10k, server, tmp_path):
    for name in (IMAGES, LABELS):
        server.files[f"/{name}"] = (t10k / name).read_bytes()
        file = catalog_file(name)
        got = download(file, addresses("mnist", file, [server.url]), tmp_path / "dl")
        assert got == tmp_path / "dl" / name and got.read_bytes() == (t10k / name).read_bytes()


@pytest.mark.parametrize("kind", ["truncated", "lfs-pointer"])
def test_a_download_of_a_cut_copy_or_a_pointer_is_refused_and_named(t10k, server, tmp_path, kind):
    real = (t10k / IMAGES).read_bytes()
    sent = real[: len(real) // 2] if kind == "truncated" else lfs_pointer(real)
    server.files[f"/{IMAGES}"] = sent
    with pytest.raises(DownloadFailed) as error:
        download(catalog_file(IMAGES), addresses("mnist", catalog_file(IMAGES), [server.url]), tmp_path / "dl")
    what = (f"sent {len(sent):,} bytes, not the 1,648,877 of the published file" if kind == "truncated"
            else f"sent {finding('lfs-pointer', real)}")
    assert error.value.reasons == [f"{server.url}/{IMAGES}: {what}, so it was deleted"]
    assert list((tmp_path / "dl").iterdir()) == []


def test_a_truncated_copy_is_named_with_the_bytes_read(t10k, tmp_path):
    cut = tmp_path / IMAGES
    cut.write_bytes((t10k / IMAGES).read_bytes()[:824_438])
    with pytest.raises(DataError) as error:
        read_idx(cut)
    assert str(error.value) == (f"{cut}: is truncated: a gzip stream that ends after 824,438 bytes, before its "
                                f"end-of-stream marker (an interrupted download or copy); download or copy the "
                                f"file again")


def mnist_folder(t10k: Path, folder: Path) -> Path:
    """An MNIST folder whose four files are the real test set (links, not copies)."""
    folder.mkdir()
    for split in ("train", "t10k"):
        for real, name in ((IMAGES, f"{split}-images-idx3-ubyte.gz"), (LABELS, f"{split}-labels-idx1-ubyte.gz")):
            (folder / name).symlink_to(t10k / real)
    return folder


@pytest.mark.parametrize("kind", ["truncated", "lfs-pointer"])
def test_data_info_names_a_cut_copy_or_a_pointer_of_the_real_images(t10k, tmp_path, kind):
    folder = mnist_folder(t10k, tmp_path / "mnist")
    bad = folder / "train-images-idx3-ubyte.gz"
    real = (t10k / IMAGES).read_bytes()
    bad.unlink()
    bad.write_bytes(real[:824_438] if kind == "truncated" else lfs_pointer(real))
    if kind == "truncated":
        what = ("is truncated: a gzip stream that ends after 824,438 bytes, before its end-of-stream marker "
                "(an interrupted download or copy); download the file again from https://yann.lecun.com/exdb/mnist/")
    else:
        what = (f"is {finding('lfs-pointer', real)}, not an IDX file; run `git lfs pull` in the Git repository it "
                f"came from to fetch it")
        assert "real file of 1,648,877 bytes, sha256 8d422c7b0a1c..." in what  # the published file's own numbers
    assert refused_in_one_line("data", "info", "mnist", "--path", "mnist") == (
        f"error: data.path mnist/train-images-idx3-ubyte.gz: {what}, or point data.path at the real file")


def test_the_real_files_load_through_the_whole_data_pipeline(t10k, tmp_path, monkeypatch):
    """The test set standing in for the training set too, with 2,000 of it as validation."""
    monkeypatch.setitem(CATALOG, "mnist", replace(MNIST, num_val=2_000))
    mnist_folder(t10k, tmp_path / "mnist")
    from dropcli.data.load import inspect_data

    found = inspect_data("mnist", tmp_path / "mnist")
    assert found["input_dim"] == 784 and found["num_classes"] == 10
    assert {s: v["examples"] for s, v in found["splits"].items()} == {"train": 8_000, "val": 2_000, "test": 10_000}
    assert found["splits"]["test"]["per_class"] == CLASS_COUNTS
