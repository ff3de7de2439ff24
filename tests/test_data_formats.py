"""Reading the real formats: IDX, CIFAR-10 pickles (through the restricted unpickler), npz.

Every bad file gives a one-line DataError that names the file, never a traceback.
"""

import gzip
import pickle
import tarfile

import numpy as np
import pytest
from test_data_files import (
    MALICIOUS_PICKLE, cifar_batch_bytes, cifar_hwc, idx_bytes, make_cifar_batches, make_idx_dataset,
    write_cifar_archive, write_cifar_folder, write_idx,
)

from dropcli.data.cifar import read_cifar10
from dropcli.data.idx import read_idx, read_images_and_labels
from dropcli.data.npz import read_npz
from dropcli.data.safe_pickle import RefusedGlobal, safe_loads
from dropcli.errors import DataError


def one_line_error(call, *args, match=None):
    with pytest.raises(DataError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and message, message
    if match:
        assert match in message, message
    return message


def in_memory(name, shape, dtype):
    return np.empty(shape, dtype)


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_idx_images_and_labels_round_trip(tmp_path, gz):
    arrays = make_idx_dataset(tmp_path, n_train=30, n_test=10, gz=gz)
    suffix = ".gz" if gz else ""
    X, y = read_images_and_labels(tmp_path / f"train-images-idx3-ubyte{suffix}",
                                  tmp_path / f"train-labels-idx1-ubyte{suffix}", (28, 28), 10)
    assert X.shape == (30, 784) and X.dtype == np.uint8
    assert np.array_equal(X, arrays["X_train"].reshape(30, -1)) and np.array_equal(y, arrays["y_train"])


def test_idx_gzip_is_detected_by_content_not_name(tmp_path):
    path = write_idx(tmp_path / "labels.idx", np.arange(5, dtype=np.uint8), gz=True)
    assert np.array_equal(read_idx(path), np.arange(5))


def test_idx_other_value_types_are_read_big_endian(tmp_path):
    header = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big")
    path = tmp_path / "ints.idx"
    path.write_bytes(header + np.array([1, 256, -2], ">i4").tobytes())
    assert read_idx(path).tolist() == [1, 256, -2]


@pytest.mark.parametrize("mutate,message", [
    (lambda raw: b"\x08\x03\x00\x00" + raw[4:], "not an IDX file"),
    (lambda raw: raw[:3], "not an IDX file"),
    (lambda raw: b"", "not an IDX file"),
    (lambda raw: raw[:-100], "truncated"),
    (lambda raw: raw + b"\x00" * 7, "longer than its header says"),
    (lambda raw: raw[:10], "truncated"),
], ids=["bad-magic", "short-header", "empty", "truncated-data", "trailing-bytes", "truncated-dims"])
def test_idx_corruption_is_one_line(tmp_path, mutate, message):
    raw = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(mutate(raw))
    assert str(path) in one_line_error(read_idx, path, match=message)


def test_idx_truncated_gzip_is_one_line(tmp_path):
    data = gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    one_line_error(read_idx, path, match="is truncated: a gzip stream that ends after")


def test_idx_wrong_image_shape(tmp_path):
    images = write_idx(tmp_path / "i", np.zeros((3, 27, 28), np.uint8), gz=False)
    labels = write_idx(tmp_path / "l", np.zeros(3, np.uint8), gz=False)
    one_line_error(read_images_and_labels, images, labels, (28, 28), 10, match="28x28")


def test_idx_images_and_labels_disagree(tmp_path):
    images = write_idx(tmp_path / "i", np.zeros((3, 28, 28), np.uint8), gz=False)
    labels = write_idx(tmp_path / "l", np.zeros(4, np.uint8), gz=False)
    one_line_error(read_images_and_labels, images, labels, (28, 28), 10, match="3 images but")


def test_idx_label_out_of_range(tmp_path):
    images = write_idx(tmp_path / "i", np.zeros((3, 28, 28), np.uint8), gz=False)
    labels = write_idx(tmp_path / "l", np.array([1, 12, 3], np.uint8), gz=False)
    one_line_error(read_images_and_labels, images, labels, (28, 28), 10, match="label 12 at index 1 is out of range")


# ---------------------------------------------------------------- CIFAR-10


@pytest.fixture(scope="module")
def batches():
    return make_cifar_batches(n_per_batch=40, n_test=30)


def expected_cifar(batches):
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return (cifar_hwc(np.concatenate([d for d, _ in train])), np.concatenate([y for _, y in train]),
            cifar_hwc(batches["test_batch"][0]), batches["test_batch"][1])


def test_cifar_archive_is_read_in_height_width_channel_order(tmp_path, batches):
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches)
    out = read_cifar10(archive, in_memory)
    X_train, y_train, X_test, y_test = expected_cifar(batches)
    assert out["X_train"].shape == (200, 3072) and out["X_test"].shape == (30, 3072)
    assert np.array_equal(out["X_train"], X_train) and np.array_equal(out["y_train"], y_train)
    assert np.array_equal(out["X_test"], X_test) and np.array_equal(out["y_test"], y_test)
    # pixel (row 0, col 1) of image 0: red, green, blue come from the three planes
    data = batches["data_batch_1"][0]
    assert out["X_train"][0, 3:6].tolist() == [data[0, 1], data[0, 1025], data[0, 2049]]


def test_cifar_extracted_folder_reads_the_same(tmp_path, batches):
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", batches)
    a = read_cifar10(folder, in_memory)
    b = read_cifar10(write_cifar_archive(tmp_path / "c.tar.gz", batches), in_memory)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("payload,found", [
    (MALICIOUS_PICKLE, "os.system"),
    (b"cposix\nsystem\n(S'echo pwned > pwned.txt'\ntR.", "posix.system"),
    (b"cbuiltins\neval\n(S'__import__(\"os\").system(\"echo pwned > pwned.txt\")'\ntR.", "builtins.eval"),
    (b"c__builtin__\ngetattr\n(cos\nenviron\nS'x'\ntR.", "__builtin__.getattr"),
], ids=["os.system", "posix.system", "eval", "getattr"])
def test_malicious_pickle_in_the_archive_is_refused_and_never_run(tmp_path, monkeypatch, batches, payload, found):
    monkeypatch.chdir(tmp_path)
    archive = write_cifar_archive(tmp_path / "evil.tar.gz", batches, raw={"data_batch_3": payload})
    message = one_line_error(read_cifar10, archive, in_memory, match="refused to unpickle")
    assert found in message and "data_batch_3" in message
    assert not (tmp_path / "pwned.txt").exists()


def test_safe_loads_refuses_codecs_other_than_latin1():
    assert safe_loads(pickle.dumps(b"abc", protocol=2)) == b"abc"  # Python 3's protocol-2 bytes
    text = b"eJzLSMzJAQAEMQGU"  # zlib-compressed, base64-encoded: a codec is a decompressor too
    evil = (b"\x80\x02c_codecs\nencode\nX" + len(text).to_bytes(4, "little") + text
            + b"X\x06\x00\x00\x00base64\x86R.")
    with pytest.raises(pickle.UnpicklingError, match="base64"):
        safe_loads(evil)
    with pytest.raises(RefusedGlobal):
        safe_loads(pickle.dumps(np.float64(1.0)))  # numpy scalars: not in a CIFAR batch


def test_truncated_archive_is_one_line(tmp_path, batches):
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches)
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) * 2 // 3])
    one_line_error(read_cifar10, archive, in_memory, match="truncated")


def test_not_an_archive_is_one_line(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"not an archive, nor a page or pointer seen in the wild\n" * 20)
    one_line_error(read_cifar10, path, in_memory, match="not a readable tar.gz")


def test_archive_without_a_batch_is_one_line(tmp_path, batches):
    path = tmp_path / "c.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(write_cifar_folder(tmp_path / "f", batches) / "data_batch_1", "cifar-10-batches-py/data_batch_1")
    one_line_error(read_cifar10, path, in_memory, match="has no data_batch_2")


def test_folder_without_a_batch_is_one_line(tmp_path, batches):
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", batches)
    (folder / "test_batch").unlink()
    one_line_error(read_cifar10, folder, in_memory, match="no test_batch")


@pytest.mark.parametrize("payload,message", [
    (lambda: cifar_batch_bytes(np.zeros((4, 3071), np.uint8), [0, 1, 2, 3]), "uint8 array of N x 3072"),
    (lambda: cifar_batch_bytes(np.zeros((4, 3072), np.float32), [0, 1, 2, 3]), "uint8 array of N x 3072"),
    (lambda: cifar_batch_bytes(np.zeros((4, 3072), np.uint8), [0, 1, 2]), "4 images but 3 labels"),
    (lambda: cifar_batch_bytes(np.zeros((4, 3072), np.uint8), [0, 1, 10, 3]), "label 10 at index 2 is out of range"),
    (lambda: pickle.dumps([1, 2, 3], protocol=2), "expected a pickled dict"),
    (lambda: pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}, protocol=2)[:500], "is truncated: a pickle"),
    (lambda: b"\x00\x01garbage", "corrupt or truncated"),
], ids=["columns", "dtype", "label-count", "label-range", "not-a-dict", "truncated-pickle", "garbage"])
def test_bad_batches_are_one_line(tmp_path, batches, payload, message):
    archive = write_cifar_archive(tmp_path / "c.tar.gz", batches, raw={"data_batch_2": payload()})
    assert "data_batch_2" in one_line_error(read_cifar10, archive, in_memory, match=message)


# ---------------------------------------------------------------- npz


def test_npz_splits_layout(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "a.npz"
    np.savez(path, X_train=rng.random((20, 2, 3)), y_train=np.arange(20) % 3, X_val=rng.random((5, 2, 3)),
             y_val=np.array([0, 1, 2, 0, 1]), X_test=rng.random((4, 2, 3)), y_test=np.array([[0], [1], [2], [1]]))
    arrays, k = read_npz(path)
    assert k == 3 and arrays["X_train"].shape == (20, 6) and arrays["y_test"].shape == (4,)


def test_npz_pool_layout(tmp_path):
    path = tmp_path / "a.npz"
    np.savez_compressed(path, X=np.zeros((30, 4), np.uint8), y=np.arange(30) % 2)
    arrays, k = read_npz(path)
    assert set(arrays) == {"X", "y"} and k == 2


def save(tmp_path, **arrays):
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    return path


X20, Y20 = np.zeros((20, 3)), np.arange(20) % 2
SPLITS = {"X_train": X20, "y_train": Y20, "X_val": X20[:5], "y_val": Y20[:5]}


@pytest.mark.parametrize("arrays,message", [
    ({"X_train": X20, "y_train": Y20}, "expected arrays X_train, y_train, X_val, y_val"),
    ({**SPLITS, "X_test": X20}, "has X_test but no y_test"),
    ({"X": X20, "y": Y20[:19]}, "X has 20 rows but y has 19 labels"),
    ({"X": X20, "y": Y20.astype(float)}, "integer labels"),
    ({"X": X20, "y": Y20 - 1}, "negative label -1 at index 0"),
    ({"X": X20, "y": np.zeros(20, int)}, "at least two classes"),
    ({"X": X20 + np.nan, "y": Y20}, "NaN or infinite"),
    ({"X": np.array(["a"] * 20), "y": Y20}, "numeric array"),
    ({"X": np.arange(20.0), "y": Y20}, "one example per row"),
    ({"X": X20[:5], "y": Y20[:5]}, "at least 10"),
    ({**SPLITS, "X_val": np.zeros((5, 4))}, "different numbers of features"),
    ({**SPLITS, "X_val": np.zeros((0, 3)), "y_val": np.zeros(0, int)}, "X_val is empty"),
    ({"X": np.array([object()] * 20), "y": Y20}, "Python objects"),
], ids=["missing", "half-test", "lengths", "float-labels", "negative", "one-class", "nan", "strings",
        "1-d", "tiny", "features", "empty", "objects"])
def test_bad_npz_is_one_line(tmp_path, arrays, message):
    one_line_error(read_npz, save(tmp_path, **arrays), match=message)


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b"not a zip at all"), "not a .npz file (not a zip archive)"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p), "single array"),
], ids=["missing", "folder", "garbage", "npy"])
def test_npz_file_problems(tmp_path, make, message):
    path = tmp_path / "x.npz"
    make(path)
    one_line_error(read_npz, path, match=message)


def test_truncated_npz_is_one_line(tmp_path):
    path = save(tmp_path, X=np.random.default_rng(0).random((200, 50)), y=np.arange(200) % 4)
    path.write_bytes(path.read_bytes()[:-3000])
    one_line_error(read_npz, path, match="is truncated: a zip archive")
