"""Bad datasets and data settings, end to end: one line naming the file (or the key), exit 2,
no traceback, nothing written.

Files are real (numpy.savez, IDX, a CIFAR-10 archive) in tmp_path; commands go through
typer's CliRunner, or a real `python -m dropcli` under a memory limit where the old
behaviour was to allocate an array as long as the largest label.
"""

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data_files import make_cifar_batches, make_idx_dataset, write_cifar_archive
from typer.testing import CliRunner

import dropcli
from dropcli.cli import app
from dropcli.config import DataConfig
from dropcli.data.load import load_data
from dropcli.data.npz import read_npz
from dropcli.errors import DataError
from dropcli.nn import streams

runner = CliRunner()
BASE = "name: base\ndata: {num_train: 100, num_val: 100}\nmodel: {hidden_dims: [16]}\ntrain: {epochs: 2}\n"
NPZ = ["--set", "data.dataset=npz", "--set", "data.num_train=null", "--set", "data.num_val=null"]
RULE = "labels must be 0..K-1 without gaps"


@pytest.fixture(autouse=True)
def _cache(data_sandbox):
    (data_sandbox / "base.yaml").write_text(BASE)


def pool(path, y, X=None):
    """An npz pool ``X, y`` of len(y) examples with 5 features."""
    X = np.random.default_rng(0).random((len(y), 5)) if X is None else X
    np.savez(path, X=X, y=y)
    return path


def three_classes(n=200):
    return np.arange(n) % 3


def one_line(result, *parts) -> str:
    """The single line of a refused command (exit 2), holding every one of ``parts``."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def limited_dropcli(*args, memory=3 << 30):
    """`python -m dropcli ARGS` in the current folder, its address space capped at ``memory``
    (an array the size of a huge label then fails at once, instead of taking the machine)."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    code = Path(dropcli.__file__).resolve().parents[1]  # the dropcli these tests import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "dropcli", *map(str, args)], capture_output=True, text=True,
                          env=env, preexec_fn=cap, timeout=120, check=False)


def refused(proc, *parts) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr[-2000:]
    for part in parts:
        assert part in proc.stderr, (part, proc.stderr)
    return proc.stderr


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("labels,message", [
    (np.where(three_classes() == 0, 10**9, three_classes()),
     f"y has label 1000000000; {RULE} (found 3 distinct labels: 1, 2, 1000000000)"),
    (np.where(three_classes() == 0, np.uint64(2**63 + 5), three_classes().astype(np.uint64)),
     f"y has label 9223372036854775813; {RULE} (found 3 distinct labels: 1, 2, 9223372036854775813)"),
    (three_classes() * 1000, f"y has label 1000; {RULE} (found 3 distinct labels: 0, 1000, 2000)"),
    (np.arange(200) % 10 * 2, f"y has label 10; {RULE} (found 10 distinct labels: 0, 2, 4, 6, 8, ..., 18)"),
    (np.full(200, 7), "y has only one distinct label (7); a classifier needs at least two classes"),
], ids=["1e9", "uint64", "gaps", "many", "one-class"])
def test_labels_must_be_0_to_k_minus_1_without_gaps(tmp_path, labels, message):
    with pytest.raises(DataError) as error:
        read_npz(pool(tmp_path / "big.npz", labels))
    assert str(error.value) == f"{tmp_path / 'big.npz'}: {message}"


@pytest.mark.parametrize("split", ["val", "test"])
def test_val_and_test_labels_may_be_a_subset_of_the_training_classes_but_not_more(tmp_path, split):
    X = np.zeros((20, 3))
    arrays = {"X_train": X, "y_train": np.arange(20) % 3, "X_val": X[:4], "y_val": np.array([0, 0, 2, 2]),
              "X_test": X[:4], "y_test": np.array([1, 1, 1, 1])}
    np.savez(tmp_path / "ok.npz", **arrays)
    assert read_npz(tmp_path / "ok.npz")[1] == 3
    np.savez(tmp_path / "bad.npz", **{**arrays, f"y_{split}": np.array([0, 1, 3, 2])})
    with pytest.raises(DataError, match=rf"y_{split} has label 3, which is not a class of y_train \(0..2\)"):
        read_npz(tmp_path / "bad.npz")


def test_huge_label_in_data_info_is_one_line_not_an_out_of_memory(tmp_path):
    pool(tmp_path / "big.npz", np.where(three_classes() == 0, 10**9, three_classes()))
    refused(limited_dropcli("data", "info", "npz", "--path", "big.npz"),
            "error: big.npz: y has label 1000000000; labels must be 0..K-1 without gaps")


@pytest.mark.parametrize("labels,label", [
    (np.where(three_classes() == 0, 10**9, three_classes()), "1000000000"),  # was: "hidden_dims do not fit"
    (np.where(three_classes() == 0, np.uint64(2**63 + 5), three_classes().astype(np.uint64)),
     "9223372036854775813"),  # was: a traceback
    (three_classes() * 1000, "1000"),  # was: a run with 2001 classes
], ids=["1e9", "uint64", "gaps"])
def test_bad_labels_fail_train_before_it_writes(tmp_path, labels, label):
    pool(tmp_path / "big.npz", labels)
    refused(limited_dropcli("train", "base.yaml", *NPZ, "--set", "data.path=big.npz", "--runs-dir", "runs"),
            f"error: big.npz: y has label {label}; {RULE}")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- degenerate shapes


@pytest.mark.parametrize("arrays,message", [
    ({"X": np.zeros((100, 0)), "y": three_classes(100)}, "X has 0 features (shape (100, 0))"),
    ({"X": np.zeros((100, 3, 0)), "y": three_classes(100)}, "X has 0 features (shape (100, 3, 0))"),
    ({"X_train": np.zeros((20, 0)), "y_train": np.arange(20) % 2, "X_val": np.zeros((5, 0)),
      "y_val": np.arange(5) % 2}, "X_train has 0 features"),
    ({"X_train": np.zeros((0, 3)), "y_train": np.zeros(0, int), "X_val": np.zeros((5, 3)),
      "y_val": np.arange(5) % 2}, "X_train is empty (shape (0, 3)); every split needs at least one example"),
], ids=["no-features", "no-features-3d", "splits-no-features", "no-training-rows"])
def test_degenerate_npz_shapes_are_refused(tmp_path, arrays, message):
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(DataError) as error:
        read_npz(tmp_path / "a.npz")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_zero_features_is_one_line_in_train_and_info(tmp_path):
    np.savez(tmp_path / "zero.npz", X=np.zeros((100, 0)), y=three_classes(100))
    message = "zero.npz: X has 0 features (shape (100, 0)); each example needs at least one number"
    one_line(invoke("train", "base.yaml", *NPZ, "--set", "data.path=zero.npz", "--runs-dir", "runs"), message)
    one_line(invoke("data", "info", "npz", "--path", "zero.npz"), message)  # was: "0 features", exit 0
    assert not (tmp_path / "runs").exists()


def test_idx_split_without_images_is_one_line(tmp_path):
    make_idx_dataset(tmp_path / "mnist", n_train=10_100, n_test=0)
    one_line(invoke("train", "base.yaml", "--set", "data.dataset=mnist", "--set", "data.path=mnist",
                    "--runs-dir", "runs"), "t10k-images-idx3-ubyte.gz: holds no images (shape (0, 28, 28))")
    assert not (tmp_path / "runs").exists()


def test_cifar_split_without_images_is_one_line(tmp_path):
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", make_cifar_batches(n_per_batch=250, n_test=0))
    with pytest.raises(DataError, match=r"the test split \(test_batch\) has no images"):  # was: a run, test acc -
        load_data(DataConfig(dataset="cifar10", path=str(tmp_path), num_train=None, num_val=None),
                  streams(0)["data"])


# ---------------------------------------------------------------- the download mirror


@pytest.mark.parametrize("mirror", ["notaurl", "ftp://x", "file:///etc", "http://", "https://[::1", "http://a b"])
def test_a_mirror_that_is_not_an_http_url_is_named(tmp_path, mirror):
    result = invoke("data", "fetch", "mnist", env={"DROPCLI_DATA_DIR": str(tmp_path / "dc"),
                                                   "DROPCLI_DATA_MIRROR": mirror})
    one_line(result, f"DROPCLI_DATA_MIRROR={mirror}: not an http(s) URL")  # no blank line before it either
    assert not (tmp_path / "dc").exists()  # nothing created


# ---------------------------------------------------------------- files that are not .npz


@pytest.mark.parametrize("content,what", [
    (b"hello world\n" * 10, "not a zip archive"),
    (np.random.default_rng(0).bytes(1000), "not a zip archive"),
], ids=["text", "random"])  # an empty file: test_data_impostors.py
def test_a_file_that_is_not_an_npz_says_so(tmp_path, content, what):
    (tmp_path / "data.npz").write_bytes(content)
    line = one_line(invoke("train", "base.yaml", *NPZ, "--set", "data.path=data.npz", "--runs-dir", "runs"),
                    f"data.npz: not a .npz file ({what}); npz expects a file written by numpy.savez")
    assert "pickle" not in line
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- data.path with digits


def test_data_path_with_the_built_in_digits_is_refused(tmp_path):
    pool(tmp_path / "ok.npz", three_classes())
    one_line(invoke("train", "base.yaml", "--set", "data.path=ok.npz", "--runs-dir", "runs"),
             "data.path: ok.npz is set but data.dataset is digits, which is built in and reads no file")
    one_line(invoke("sweep", "base.yaml", "--keep", "0.5,1", "--set", "data.path=ok.npz", "--runs-dir", "runs"),
             "data.path", "data.dataset")
    assert not (tmp_path / "runs").exists()
    one_line(invoke("data", "info", "digits", "--path", "nonexist"),
             "--path: digits is built in and reads no file, so nonexist would be ignored")


# ---------------------------------------------------------------- relative data.path


def test_a_missing_relative_path_shows_where_it_was_looked_for(tmp_path):
    one_line(invoke("train", "base.yaml", *NPZ, "--set", "data.path=sub/none.npz", "--runs-dir", "runs"),
             f"data.path: sub/none.npz (resolved to {tmp_path / 'sub' / 'none.npz'}) does not exist")
    one_line(invoke("data", "info", "mnist", "--path", "sub/mnist"),
             f"data.path: sub/mnist (resolved to {tmp_path / 'sub' / 'mnist'}) does not exist")
    absolute = tmp_path / "none.npz"
    one_line(invoke("data", "info", "npz", "--path", absolute), f"data.path: {absolute} does not exist;")
    assert not (tmp_path / "runs").exists()
