"""load_data on the real datasets' formats: splits, subsamples, standardisation, the cache.

Files come from data.path here (tests/test_data_files.py makes them); downloads are
tested in test_data_download.py, and any attempt to download here fails the test.
"""

import hashlib
import json
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from test_data_files import cifar_hwc, make_cifar_batches, make_idx_dataset, write_cifar_archive, write_cifar_folder

import dropcli.data.sources
from dropcli.config import Config, DataConfig, load_config, with_values
from dropcli.data.load import load_data, stratified_indices
from dropcli.data.datasets import CATALOG
from dropcli.errors import DataError
from dropcli.nn import streams


@pytest.fixture(autouse=True)
def _no_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DROPCLI_DATA_MIRROR", raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("a load test tried to download")

    monkeypatch.setattr(dropcli.data.sources, "download", refuse)


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    return folder, make_idx_dataset(folder, n_train=10_200, n_test=300)


@pytest.fixture(scope="module")
def cifar_archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar")
    batches = make_cifar_batches(n_per_batch=250, n_test=200)
    return write_cifar_archive(folder / "cifar-10-python.tar.gz", batches), batches


def data(dataset, path, num_train=None, num_val=None):
    return DataConfig(dataset=dataset, path=None if path is None else str(path), num_train=num_train, num_val=num_val)


def load(config, seed=0, **kw):
    return load_data(config, streams(seed)["data"], **kw)


# ---------------------------------------------------------------- digits: unchanged


def test_digits_split_is_unchanged():
    d = load(Config(data={"num_train": 300, "num_val": 300}).data)  # the former default: digits, 300 / 300
    h = hashlib.sha256()
    for y in (d.y_train, d.y_val, d.y_test):
        h.update(y.astype(np.int64).tobytes())
    assert h.hexdigest()[:16] == "a144567995828ef0"  # the split and subsamples before real datasets
    assert d.sizes() == {"train": 300, "val": 300, "test": 297} and d.X_train.dtype == np.float32
    assert float(d.X_train[:5].sum(dtype=np.float64)) == pytest.approx(9.00548242777586, rel=1e-6)


# ---------------------------------------------------------------- official splits


def test_mnist_split_is_the_official_one_with_the_last_10000_as_validation(mnist_dir):
    folder, arrays = mnist_dir
    a = load(data("mnist", folder), seed=0)
    assert a.sizes() == {"train": 200, "val": 10_000, "test": 300}
    assert a.input_dim == 784 and a.num_classes == 10 and a.X_train.dtype == np.float32
    assert np.array_equal(a.y_train, arrays["y_train"][:200]) and np.array_equal(a.y_val, arrays["y_train"][200:])
    assert np.array_equal(a.y_test, arrays["y_test"])
    b = load(data("mnist", folder), seed=7)  # no random split: the same for every seed
    assert np.array_equal(a.X_val, b.X_val) and np.array_equal(a.y_train, b.y_train)


def test_images_are_standardised_with_training_statistics_only(mnist_dir):
    folder, arrays = mnist_dir
    d = load(data("mnist", folder), dtype=np.float64)
    X = arrays["X_train"][:200].reshape(200, -1).astype(np.float64)
    mean = X.mean(axis=0)
    scale = np.sqrt(np.mean(X.var(axis=0)))  # one std for all pixels
    np.testing.assert_allclose(d.X_train, (X - mean) / scale, atol=1e-9)
    np.testing.assert_allclose(d.X_test, (arrays["X_test"].reshape(300, -1) - mean) / scale, atol=1e-9)
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-9)


def test_cifar10_split_as_cs231n(cifar_archive):
    archive, batches = cifar_archive
    d = load(data("cifar10", archive))
    assert d.sizes() == {"train": 250, "val": 1000, "test": 200} and d.input_dim == 3072
    train = np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)])
    assert np.array_equal(d.y_train, train[:250]) and np.array_equal(d.y_val, train[250:])
    # val is the last 1000 training images, standardised like the training split
    raw = cifar_hwc(np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])).astype(np.float64)
    mean, scale = raw[:250].mean(axis=0), np.sqrt(np.mean(raw[:250].var(axis=0)))
    np.testing.assert_allclose(d.X_val, (raw[250:] - mean) / scale, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("where", ["folder", "parent", "archive-parent"])
def test_cifar10_from_an_extracted_folder_or_its_parent(tmp_path, cifar_archive, where):
    archive, batches = cifar_archive
    if where == "archive-parent":
        path = archive.parent
    else:
        folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", batches)
        path = folder if where == "folder" else tmp_path
    a, b = load(data("cifar10", path)), load(data("cifar10", archive))
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_test, b.y_test)


def test_torchvision_layout_and_plain_idx_files(tmp_path, mnist_dir):
    folder, arrays = mnist_dir
    make_idx_dataset(tmp_path / "MNIST" / "raw", n_train=10_200, n_test=300, gz=False)
    a, b = load(data("mnist", tmp_path)), load(data("mnist", folder))
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_val, b.y_val)


# ---------------------------------------------------------------- subsamples


def test_subsamples_are_stratified_and_seeded(mnist_dir):
    folder, arrays = mnist_dir
    config = data("mnist", folder, num_train=100, num_val=1000)
    a, b, c = load(config, seed=0), load(config, seed=0), load(config, seed=1)
    assert a.sizes() == {"train": 100, "val": 1000, "test": 300}
    share = 1000 * np.bincount(arrays["y_train"][200:], minlength=10) / 10_000
    counts = np.bincount(a.y_val, minlength=10)
    assert np.all(counts >= np.floor(share)) and np.all(counts <= np.ceil(share))
    assert np.array_equal(a.X_val, b.X_val) and np.array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_val, c.X_val)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_indices_keep_each_class_share(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(7, size=1000, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05])
    n = int(rng.integers(1, 1000))
    idx = stratified_indices(y, n, rng)
    assert len(idx) == n == len(set(idx)) and np.all(np.diff(idx) > 0)
    share = n * np.bincount(y, minlength=7) / len(y)
    got = np.bincount(y[idx], minlength=7)
    assert np.all(got >= np.floor(share)) and np.all(got <= np.ceil(share))


def test_asking_for_more_than_there_is(mnist_dir):
    with pytest.raises(DataError, match=r"data.num_train: 300 is more than the 200 training examples mnist has"):
        load(data("mnist", mnist_dir[0], num_train=300))


# ---------------------------------------------------------------- data.path problems


def test_wrong_data_path_is_an_error_never_a_download(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load(data("mnist", tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"):
        load(data("mnist", tmp_path / "empty"))
    with pytest.raises(DataError, match="cifar-10-python.tar.gz or its extracted folder"):
        load(data("cifar10", tmp_path / "empty"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file; mnist expects the folder"):
        load(data("mnist", tmp_path / "file"))


def test_too_few_training_examples_for_the_validation_split(tmp_path):
    make_idx_dataset(tmp_path, n_train=500, n_test=10)
    with pytest.raises(DataError, match="500 training examples; mnist takes the last 10000"):
        load(data("mnist", tmp_path))


def test_missing_catalog_files_without_download_name_the_cache(tmp_path):
    from dropcli.data.datasets import load_arrays

    with pytest.raises(DataError, match="dropcli data fetch cifar10"):
        load_arrays("cifar10", allow_download=False)


# ---------------------------------------------------------------- npz


def test_npz_pool_is_split_by_the_seed(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, X=rng.random((200, 5)), y=np.arange(200) % 4)
    a, b, c = (load(data("npz", path), seed=s) for s in (0, 0, 1))
    assert a.sizes() == {"train": 160, "val": 20, "test": 20} and a.num_classes == 4
    assert np.array_equal(a.X_val, b.X_val) and not np.array_equal(a.X_val, c.X_val)
    assert a.X_train.mean(axis=0) == pytest.approx(np.zeros(5), abs=1e-6)


def test_npz_splits_are_kept(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, X_train=np.arange(40.0).reshape(20, 2), y_train=np.arange(20) % 2,
             X_val=np.ones((6, 2)), y_val=np.zeros(6, int))  # a subset of the training classes
    d = load(data("npz", path))
    assert d.sizes() == {"train": 20, "val": 6, "test": 0} and d.num_classes == 2 and d.X_test is None


def test_npz_needs_a_path():
    with pytest.raises(DataError, match="set data.path to a .npz"):
        load(data("npz", None))


# ---------------------------------------------------------------- the decoded cache


def test_decoded_once_then_memory_mapped(tmp_path, monkeypatch, mnist_dir):
    import dropcli.data.datasets as ds
    from dropcli.data.datasets import load_arrays

    folder = mnist_dir[0]
    first = load_arrays("mnist", folder)
    assert isinstance(first.arrays["X_train"], np.memmap) and first.arrays["X_train"].dtype == np.uint8
    (decoded,) = (tmp_path / "cache" / "decoded").iterdir()
    meta = json.loads((decoded / "source.json").read_text())
    assert meta["format"] == 1 and meta["arrays"]["X_train"] == [[10_200, 784], "uint8"]

    monkeypatch.setattr(ds, "read_images_and_labels", lambda *a: pytest.fail("decoded again"))
    again = load_arrays("mnist", folder)
    assert np.array_equal(again.arrays["y_train"], first.arrays["y_train"])


def test_a_changed_source_is_decoded_again(tmp_path):
    from dropcli.data.datasets import load_arrays

    make_idx_dataset(tmp_path / "m", n_train=10_100, n_test=10, seed=0)
    a = np.array(load_arrays("mnist", tmp_path / "m").arrays["y_test"])
    make_idx_dataset(tmp_path / "m", n_train=10_100, n_test=12, seed=1)
    b = load_arrays("mnist", tmp_path / "m").arrays["y_test"]
    assert len(a) == 10 and len(b) == 12
    assert len(list((tmp_path / "cache" / "decoded").iterdir())) == 1  # replaced, not added


def test_an_unwritable_cache_still_loads(tmp_path, monkeypatch, mnist_dir):
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "blocked"))
    d = load(data("mnist", mnist_dir[0], num_train=50, num_val=50))
    assert d.sizes()["train"] == 50


def test_a_corrupt_decoded_cache_is_rebuilt(tmp_path, mnist_dir):
    from dropcli.data.datasets import load_arrays

    load_arrays("mnist", mnist_dir[0])
    (decoded,) = (tmp_path / "cache" / "decoded").iterdir()
    (decoded / "X_train.npy").write_bytes(b"\x93NUMPY garbage")
    again = load_arrays("mnist", mnist_dir[0])
    assert again.arrays["X_train"].shape == (10_200, 784)


def test_peak_memory_within_twice_the_float32_training_array(tmp_path):
    batches = make_cifar_batches(n_per_batch=1000, n_test=1000, seed=3)
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches)
    config = data("cifar10", archive)
    load(config)  # decode once
    tracemalloc.start()
    d = load(config)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert d.X_train.nbytes == 4000 * 3072 * 4
    assert peak <= 2 * d.X_train.nbytes, f"peak {peak / 1e6:.0f} MB for a {d.X_train.nbytes / 1e6:.0f} MB array"


# ---------------------------------------------------------------- end to end


def test_train_run_on_mnist_files(tmp_path, mnist_dir):
    from dropcli.experiment.run import train_run

    config = with_values(Config(), {
        "name": "mnist-tiny", "data.dataset": "mnist", "data.path": str(mnist_dir[0]),
        "data.num_train": 200, "data.num_val": 100, "model.hidden_dims": [16], "train.epochs": 2})
    summary = train_run(config, tmp_path / "runs")
    assert summary["status"] == "completed", summary.get("reason")
    assert summary["test"]["acc"] is not None


@pytest.mark.parametrize("name", ["cs231n_regularization.yaml", "mnist_dropout.yaml"])
def test_shipped_real_data_configs(name):
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert config.data.dataset in CATALOG and config.data.path is None
    assert config.sweep


def test_catalog_pins_full_sha256():
    for spec in CATALOG.values():
        for f in spec.files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0, (spec.name, f.name)
        assert spec.num_classes == len(spec.class_names) == 10
    assert replace(CATALOG["cifar10"]).num_val == 1000 and CATALOG["mnist"].num_val == 10_000


def _load_labels(args):
    path, cache = args
    import os

    os.environ["DROPCLI_DATA_DIR"] = cache
    from dropcli.data.datasets import load_arrays

    return load_arrays("mnist", path).arrays["y_test"].tolist()


def test_two_processes_decoding_at_once_both_succeed(tmp_path, mnist_dir):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        a, b = pool.map(_load_labels, [(str(mnist_dir[0]), str(tmp_path / "shared"))] * 2)
    assert a == b == mnist_dir[1]["y_test"].tolist()
    (folder,) = (tmp_path / "shared" / "decoded").iterdir()  # one folder won, no temporaries left
    assert folder.name.startswith("mnist-")
