"""The built-in MNIST-1D: the shipped arrays are the reference generator's, pinned by digest,
and split the documented way, the same for every seed."""

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from dropcli.config import DataConfig
from dropcli.data import mnist1d
from dropcli.data.load import load_data
from dropcli.errors import DataError
from dropcli.nn import streams

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# array_digest of the shipped float32 / uint8 arrays (scripts/make_mnist1d.py, mnist1d 0.0.2.post1)
PINNED = "1a14503b53beee5ce088dda3b6d5c141e94d1a18571a1e25761eaef28de36802"


def mnist1d_data(num_train=None, num_val=None, path=None):
    return DataConfig(dataset="mnist1d", path=path, num_train=num_train, num_val=num_val)


def test_the_shipped_arrays_are_the_pinned_ones_and_their_provenance_says_so():
    arrays, record = mnist1d.read_arrays(), mnist1d.provenance()
    assert {k: (a.dtype.str, a.shape) for k, a in arrays.items()} == {
        "X_train": ("<f4", (4000, 40)), "y_train": ("|u1", (4000,)),
        "X_test": ("<f4", (1000, 40)), "y_test": ("|u1", (1000,))}
    assert mnist1d.array_digest(arrays) == PINNED == record["sha256"]
    assert record["generator"]["package"] == "mnist1d" and record["license"] == "Apache-2.0"
    assert record["class_counts"]["y_train"] == np.bincount(arrays["y_train"]).tolist()


def test_the_shipped_arrays_are_what_the_reference_generator_makes():
    data = pytest.importorskip("mnist1d.data", reason="the reference generator `mnist1d` (test extra) is not "
                                                        "installed: pip install '.[test]'")
    from importlib import metadata

    ds = data.make_dataset(data.get_dataset_args())  # ~1 s
    reference = {"X_train": ds["x"], "y_train": ds["y"], "X_test": ds["x_test"], "y_test": ds["y_test"]}
    record = mnist1d.provenance()
    assert mnist1d.array_digest(reference) == record["sha256_reference"], (
        f"mnist1d {metadata.version('mnist1d')} generates other arrays than "
        f"{record['generator']['version']}, which made the shipped ones")
    shipped = mnist1d.read_arrays()
    for name, a in reference.items():  # the shipped arrays are the reference's, X rounded to float32
        np.testing.assert_array_equal(shipped[name], a.astype(shipped[name].dtype), err_msg=name)
    assert max(np.abs(shipped[k] - reference[k]).max() for k in ("X_train", "X_test")) < 3e-7


def test_split_is_the_documented_one_and_the_same_for_every_seed():
    arrays = mnist1d.read_arrays()
    a = load_data(mnist1d_data(), streams(0)["data"])
    assert a.sizes() == {"train": 3000, "val": 1000, "test": 1000}
    assert a.input_dim == 40 and a.num_classes == 10 and a.X_train.dtype == np.float32
    assert np.array_equal(a.y_train, arrays["y_train"][:3000]) and np.array_equal(a.y_val, arrays["y_train"][3000:])
    assert np.array_equal(a.y_test, arrays["y_test"])
    b = load_data(mnist1d_data(), streams(7)["data"])
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # standardised with the training split's statistics, each feature by its own std
    np.testing.assert_allclose(a.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(a.X_train.std(axis=0), 1, atol=1e-4)


def test_subsamples_are_class_balanced_and_drawn_by_the_seed():
    a, again = (load_data(mnist1d_data(500, 200), streams(0)["data"]) for _ in range(2))
    b = load_data(mnist1d_data(500, 200), streams(1)["data"])
    assert a.sizes() == {"train": 500, "val": 200, "test": 1000}
    assert np.array_equal(a.X_train, again.X_train) and np.array_equal(a.y_val, again.y_val)
    assert not np.array_equal(a.X_train, b.X_train)
    y = mnist1d.read_arrays()["y_train"]
    for drawn, pool in ((a.y_train, y[:3000]), (a.y_val, y[3000:])):  # each class keeps its share
        assert np.all(np.abs(np.bincount(drawn) - len(drawn) * np.bincount(pool) / len(pool)) < 1)


def test_the_builtin_dataset_is_the_same_as_its_arrays_given_as_npz(tmp_path):
    """mnist1d behaves exactly like `dataset: npz` on the same splits (subsample and standardisation)."""
    arrays, path = mnist1d.read_arrays(), tmp_path / "mnist1d_splits.npz"
    np.savez(path, X_train=arrays["X_train"][:3000], y_train=arrays["y_train"][:3000],
             X_val=arrays["X_train"][3000:], y_val=arrays["y_train"][3000:],
             X_test=arrays["X_test"], y_test=arrays["y_test"])
    built_in = load_data(mnist1d_data(1000, 300), streams(3)["data"])
    npz = load_data(DataConfig(dataset="npz", path=str(path), num_train=1000, num_val=300), streams(3)["data"])
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(built_in, name), getattr(npz, name)), name


def test_data_path_with_mnist1d_is_refused():
    with pytest.raises(DataError, match="data.path: x.npz is set but data.dataset is mnist1d, which is built in"):
        load_data(mnist1d_data(path="x.npz"), streams(0)["data"])


def test_the_generator_is_a_test_dependency_only_and_the_arrays_are_package_data():
    pyproject = tomllib.loads(PYPROJECT.read_text())
    project = pyproject["project"]
    assert any(r.startswith("mnist1d") for r in project["optional-dependencies"]["test"])
    runtime = {re.split(r"[<>=!~\[ ;]", r)[0].lower() for r in project["dependencies"]}
    assert not runtime & {"mnist1d", "scipy", "requests"}  # (requests comes with pooch, for downloads)
    assert {"*.npz", "*.json"} <= set(pyproject["tool"]["setuptools"]["package-data"]["dropcli.data"])
