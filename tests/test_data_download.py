"""Downloads against a real HTTP server on 127.0.0.1: success, checksum mismatch, server
gone, interrupted transfer. Nothing here reaches the internet: every test points the
download at the local server (DROPCLI_DATA_MIRROR, or the catalog's addresses replaced)."""

from dataclasses import replace

import numpy as np
import pytest
from test_data_files import FileServer, make_cifar_batches, make_idx_dataset, spec_for, write_cifar_archive

import dropcli.data.sources
from dropcli.config import DataConfig
from dropcli.data.load import load_data
from dropcli.data.datasets import CATALOG, fetch, status
from dropcli.data.download import addresses
from dropcli.errors import DataError
from dropcli.nn import streams


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mnist_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    make_idx_dataset(folder, n_train=10_100, n_test=50)
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DROPCLI_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def published(server, mnist_files, cache, monkeypatch):
    """The test MNIST files on the server, the catalog pinned to their hashes, the mirror set."""
    for f in CATALOG["mnist"].files:
        server.files[f"/mnist/{f.name}"] = (mnist_files / f.name).read_bytes()
    monkeypatch.setitem(CATALOG, "mnist", spec_for("mnist", mnist_files))
    monkeypatch.setenv("DROPCLI_DATA_MIRROR", server.url)
    return server


def mnist(num_train=None, num_val=None):
    return DataConfig(dataset="mnist", path=None, num_train=num_train, num_val=num_val)


def leftovers(folder):
    """Every file under ``folder`` (partial downloads would show here)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_download_verify_decode_then_use_the_cache(published, cache):
    seen = []
    d = load_data(mnist(), streams(0)["data"], progress=lambda *a: seen.append(a))
    assert d.sizes() == {"train": 100, "val": 10_000, "test": 50}
    names = [f.name for f in CATALOG["mnist"].files]
    assert sorted(published.requests) == sorted(f"/mnist/{n}" for n in names)
    assert set(leftovers(cache / "mnist")) == set(names)
    # progress: every file reported, ending at its full size
    for f in CATALOG["mnist"].files:
        last = [a for a in seen if a[0] == f.name][-1]
        assert last[1:] == (f.size, f.size)
    published.requests.clear()
    again = load_data(mnist(), streams(0)["data"])
    assert published.requests == [] and np.array_equal(again.X_val, d.X_val)
    assert status("mnist")["state"] == "decoded"


def test_only_missing_files_are_downloaded(published, cache, mnist_files):
    (cache / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (cache / "mnist" / name).write_bytes((mnist_files / name).read_bytes())
    assert status("mnist")["state"] == "partial"
    fetch("mnist")
    assert sorted(published.requests) == ["/mnist/t10k-images-idx3-ubyte.gz", "/mnist/t10k-labels-idx1-ubyte.gz"]


def test_checksum_mismatch_is_an_error_and_leaves_nothing(published, cache, monkeypatch):
    spec = CATALOG["mnist"]
    wrong = replace(spec.files[0], sha256="0" * 64)
    monkeypatch.setitem(CATALOG, "mnist", replace(spec, files=(wrong, *spec.files[1:])))
    with pytest.raises(DataError) as error:
        load_data(mnist(), streams(0)["data"])
    message = one_line(error)
    assert "train-images-idx3-ubyte.gz" in message and "SHA-256 is not the pinned 000000000000" in message
    assert "train-images-idx3-ubyte.gz" not in leftovers(cache)
    assert not [p for p in leftovers(cache) if "tmp" in p]


def test_server_gone_is_one_clear_line(server, cache, monkeypatch):
    url = server.url
    server.stop()
    monkeypatch.setenv("DROPCLI_DATA_MIRROR", url)
    with pytest.raises(DataError) as error:
        load_data(mnist(), streams(0)["data"])
    message = one_line(error)
    for part in ("connection refused", "data.path is not set", str(cache / "mnist"),
                 CATALOG["mnist"].homepage, "set data.path to its folder"):
        assert part in message, message
    assert leftovers(cache) == []


def test_interrupted_transfer_leaves_no_partial_file(published, cache):
    name = "/mnist/train-images-idx3-ubyte.gz"
    published.truncate.add(name)
    with pytest.raises(DataError) as error:
        load_data(mnist(), streams(0)["data"])
    message = one_line(error)
    assert "broke off" in message or "SHA-256" in message, message
    assert "train-images-idx3-ubyte.gz" not in leftovers(cache / "mnist")
    assert not [p for p in leftovers(cache) if "tmp" in p]
    published.truncate.clear()  # the next attempt completes
    assert load_data(mnist(), streams(0)["data"]).sizes()["test"] == 50


def test_http_404_is_named(server, cache, monkeypatch):
    monkeypatch.setenv("DROPCLI_DATA_MIRROR", server.url)  # serves nothing
    with pytest.raises(DataError, match="HTTP 404"):
        fetch("mnist")


def test_addresses_are_tried_in_order_without_a_mirror(server, cache, monkeypatch, tmp_path):
    batches = make_cifar_batches(n_per_batch=220, n_test=20)
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches)
    server.files["/live/cifar-10-python.tar.gz"] = archive.read_bytes()
    spec = spec_for("cifar10", tmp_path, urls=(f"{server.url}/dead/", f"{server.url}/live/"))
    monkeypatch.setitem(CATALOG, "cifar10", spec)
    loaded = fetch("cifar10")
    assert server.requests == ["/dead/cifar-10-python.tar.gz", "/live/cifar-10-python.tar.gz"]
    assert loaded.located.origin == "download" and loaded.arrays["X_train"].shape == (1100, 3072)


def test_canonical_addresses():
    mnist_file = CATALOG["mnist"].files[0]
    assert addresses("mnist", mnist_file, CATALOG["mnist"].urls) == [
        "https://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"]
    cifar = CATALOG["cifar10"]
    assert addresses("cifar10", cifar.files[0], cifar.urls) == [
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert addresses("cifar10", cifar.files[0], cifar.urls, mirror="http://m/x/") == [
        "http://m/x/cifar10/cifar-10-python.tar.gz"]


def test_unwritable_cache_folder_is_one_line(published, tmp_path, monkeypatch):
    (tmp_path / "blocked").write_text("a file, not a folder")
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "blocked"))
    with pytest.raises(DataError, match="cannot write the download into") as error:
        fetch("mnist")
    one_line(error)


def test_data_path_is_never_followed_by_a_download(published, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(DataConfig(dataset="mnist", path=str(tmp_path / "nope")), streams(0)["data"])
    assert published.requests == []


def test_sources_module_downloads_through_pooch(monkeypatch):
    # the load tests replace this name to forbid downloads; make sure it is the real one
    from dropcli.data.download import download

    assert dropcli.data.sources.download is download
