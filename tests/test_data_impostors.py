"""Files seen in the wild in place of a dataset file: one line that names what the file is,
where it is (the setting and the config line) and what to do; exit 2, no traceback, no run.

Every file is real: an HTML error page saved under the dataset file's name (plain; with a
byte-order mark and the "saved from" comment a browser writes; gzipped as a server sent it),
a Git LFS pointer (the text `git lfs pointer --file` writes: the real file's SHA-256 and
size) in a Git working tree, an empty file, and a real gzip, tar, npz or pickle cut short.
Each goes through every reader (IDX, the CIFAR-10 archive and batches folder, npz) by
`dropcli data info` and `dropcli train`, through typer's CliRunner and a real process; then
a page in the cache folder, and downloads that deliver one of them.
"""

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_data_errors import limited_dropcli, refused
from test_data_files import (
    FileServer, cifar_batch_bytes, make_cifar_batches, make_idx_dataset, spec_for, write_cifar_archive,
    write_cifar_folder,
)
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.data import sniff
from dropcli.data.cifar import BATCHES
from dropcli.data.datasets import CATALOG
from dropcli.data.idx import read_idx
from dropcli.errors import DataError

runner = CliRunner()
MNIST_HOME = CATALOG["mnist"].homepage
CIFAR_HOME = CATALOG["cifar10"].homepage
WEB_PAGE = "(a web page, such as an error or login page, in place of the dataset file)"
PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>404 Not Found</title>
</head>
<body>
<h1>Not Found</h1>
<p>The requested URL was not found on this server.</p>
<hr><address>Apache/2.4.41 (Ubuntu) Server at yann.lecun.com Port 443</address>
</body>
</html>
"""
SAVED_LOGIN_PAGE = ("\ufeff\r\n  <!-- saved from url=(0062)https://github.com/login?return_to=train-images-idx3-ubyte.gz -->"
                    "\r\n<html><head><meta charset=\"utf-8\"><title>\r\n  Sign in to GitHub\r\n</title></head>"
                    "<body><form action=\"/session\" method=\"post\"></form></body></html>\r\n").encode()


def lfs_pointer(real: bytes) -> bytes:
    """The pointer Git LFS leaves in a clone made without it (spec v1; `git lfs pointer --file`)."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(real).hexdigest()}\n"
            f"size {len(real)}\n").encode()


# kind: (the file that takes the real one's place, given its bytes; what the message calls it)
IMPOSTORS = {
    "html-page": (lambda real: PAGE, f'an HTML page titled "404 Not Found" {WEB_PAGE}'),
    "saved-login-page": (lambda real: SAVED_LOGIN_PAGE, f'an HTML page titled "Sign in to GitHub" {WEB_PAGE}'),
    "gzipped-page": (lambda real: gzip.compress(PAGE), f'a gzipped HTML page titled "404 Not Found" {WEB_PAGE}'),
    "lfs-pointer": (lfs_pointer, None),  # depends on the real file: see finding()
    "empty": (lambda real: b"", "an empty file (0 bytes: an interrupted download or copy)"),
}


def finding(kind: str, real: bytes) -> str:
    if kind == "lfs-pointer":
        size, oid = len(lfs_pointer(real)), hashlib.sha256(real).hexdigest()
        return (f"a Git LFS pointer file ({size} bytes of text that stand for the real file of {len(real):,} bytes, "
                f"sha256 {oid[:12]}...)")
    return IMPOSTORS[kind][1]


class Reader:
    """A dataset on disk, one of whose files is replaced: how to make it, which file, what it is."""

    def __init__(self, dataset, path, bad, expected, again, make):
        self.dataset, self.path, self.bad, self.expected, self.again, self.make = (
            dataset, path, bad, expected, again, make)

    def config(self) -> str:
        """A config that reads ``path``; data.path is on line 4."""
        return (f"name: impostor\ndata:\n  dataset: {self.dataset}\n  path: {self.path}\n  num_train: null\n"
                f"  num_val: null\nmodel: {{hidden_dims: [8]}}\ntrain: {{epochs: 1}}\n")


def _idx(folder):
    make_idx_dataset(folder / "mnist", n_train=60, n_test=20)


def _cifar_archive(folder):
    write_cifar_archive(folder / "cifar-10-python.tar.gz", make_cifar_batches(n_per_batch=20, n_test=10))


def _cifar_folder(folder):
    write_cifar_folder(folder / "cifar-10-batches-py", make_cifar_batches(n_per_batch=20, n_test=10))


def _npz(folder):
    np.savez(folder / "data.npz", X=np.random.default_rng(0).random((200, 50)), y=np.arange(200) % 4)


READERS = {
    "idx": Reader("mnist", "mnist", "mnist/train-images-idx3-ubyte.gz", "an IDX file",
                  f"download the file again from {MNIST_HOME}", _idx),
    "cifar-archive": Reader("cifar10", "cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                            "a CIFAR-10 archive (cifar-10-python.tar.gz)", f"download the file again from {CIFAR_HOME}",
                            _cifar_archive),
    "cifar-batch": Reader("cifar10", "cifar-10-batches-py", "cifar-10-batches-py/data_batch_1",
                          "a CIFAR-10 batch (a pickled dict)", f"download the file again from {CIFAR_HOME}",
                          _cifar_folder),
    "npz": Reader("npz", "data.npz", "data.npz", "a .npz file", "download or copy the file again", _npz),
}
ALTERNATIVE = "point data.path at the real file"


@pytest.fixture(autouse=True)
def _here(data_sandbox):
    subprocess.run(["git", "init", "-q", str(data_sandbox)], check=True)  # the data lives in a Git working tree


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def refused_in_one_line(*args) -> str:
    """The one line a refused command prints (exit 2, no traceback), through typer's CliRunner."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.output.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def both_commands_say(reader: Reader, tmp_path: Path, message: str):
    """`data info DATASET --path PATH` and `train` of a config with that data.path print exactly
    ``message`` (train: after the config line), and nothing is written in runs/ or the cache."""
    assert refused_in_one_line("data", "info", reader.dataset, "--path", reader.path) == f"error: {message}"
    (tmp_path / "cfg.yaml").write_text(reader.config())
    assert refused_in_one_line("train", "cfg.yaml", "--runs-dir", "runs") == f"error: cfg.yaml:4: {message}"
    assert not (tmp_path / "runs").exists()
    assert files_under(tmp_path / "cache") == []


@pytest.mark.parametrize("kind", IMPOSTORS)
@pytest.mark.parametrize("name", READERS)
def test_an_impostor_is_named_by_every_reader(tmp_path, name, kind):
    reader = READERS[name]
    reader.make(tmp_path)
    real = Path(reader.bad).read_bytes()
    Path(reader.bad).write_bytes(IMPOSTORS[kind][0](real))
    fix = f"run `git lfs pull` in {tmp_path} to fetch it" if kind == "lfs-pointer" else reader.again
    both_commands_say(reader, tmp_path, f"data.path {reader.bad}: is {finding(kind, real)}, not {reader.expected}; "
                                        f"{fix}, or {ALTERNATIVE}")


def _cut(path: Path, keep: float = 0.5) -> int:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path.stat().st_size


def _plain_tar(folder):
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w") as tar:  # some copies are unzipped, keeping the name
        for name, (data, labels) in make_cifar_batches(n_per_batch=20, n_test=10).items():
            payload = cifar_batch_bytes(data, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


TRUNCATED = {  # reader, how its file was made, and what the message says the file was cut from
    "idx-gzip": ("idx", None, "a gzip stream", "its end-of-stream marker"),
    "cifar-tar.gz": ("cifar-archive", None, "a gzip stream", "its end-of-stream marker"),
    "cifar-tar": ("cifar-archive", _plain_tar, "a tar archive", "the end of its last member"),
    "cifar-pickle": ("cifar-batch", None, "a pickle", "its STOP opcode"),
    "npz-zip": ("npz", None, "a zip archive (what numpy.savez writes)", "its central directory"),
}


@pytest.mark.parametrize("case", TRUNCATED)
def test_a_truncated_file_is_named_with_the_bytes_read(tmp_path, case):
    name, make, container, end = TRUNCATED[case]
    reader = READERS[name]
    (make or reader.make)(tmp_path)
    size = _cut(Path(reader.bad))
    both_commands_say(reader, tmp_path, f"data.path {reader.bad}: is truncated: {container} that ends after "
                                        f"{size:,} bytes, before {end} (an interrupted download or copy); "
                                        f"{reader.again}, or {ALTERNATIVE}")


@pytest.mark.parametrize("name,kind", [("idx", "gzipped-page"), ("cifar-archive", "lfs-pointer"), ("npz", "empty")])
def test_a_real_process_prints_the_one_line_on_stderr(tmp_path, name, kind):
    reader = READERS[name]
    reader.make(tmp_path)
    Path(reader.bad).write_bytes(IMPOSTORS[kind][0](Path(reader.bad).read_bytes()))
    (tmp_path / "cfg.yaml").write_text(reader.config())
    for args in (("data", "info", reader.dataset, "--path", reader.path), ("train", "cfg.yaml", "--runs-dir", "runs")):
        line = refused(limited_dropcli(*args), f"data.path {reader.bad}: is ", f", not {reader.expected}; ")
        assert line.startswith("error: ") and "Traceback" not in line
    assert not (tmp_path / "runs").exists()


def test_a_page_in_the_cache_folder_says_to_fetch_again_and_that_works(tmp_path, monkeypatch):
    published = tmp_path / "published"
    make_idx_dataset(published, n_train=60, n_test=20)
    monkeypatch.setitem(CATALOG, "mnist", spec_for("mnist", published, num_val=10))
    shutil.copytree(published, tmp_path / "cache" / "mnist")
    page = tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz"
    page.write_bytes(PAGE)
    (tmp_path / "cfg.yaml").write_text("name: cached\nseed: 0\ndata: {dataset: mnist}\nmodel: {hidden_dims: [8]}\n"
                                       "train: {epochs: 1}\n")
    assert refused_in_one_line("train", "cfg.yaml", "--runs-dir", "runs") == (
        f"error: cfg.yaml:3: {page} (in the cache folder): is {finding('html-page', b'')}, not an IDX file; "
        f"delete it and run `dropcli data fetch mnist`")
    assert not (tmp_path / "runs").exists()

    page.unlink()  # as the line says
    server = FileServer()
    try:
        server.files["/mnist/train-images-idx3-ubyte.gz"] = (published / "train-images-idx3-ubyte.gz").read_bytes()
        monkeypatch.setenv("DROPCLI_DATA_MIRROR", server.url)
        fetched = runner.invoke(app, ["data", "fetch", "mnist"])
    finally:
        server.stop()
    assert fetched.exit_code == 0 and "downloaded and checked" in fetched.output, fetched.output
    trained = runner.invoke(app, ["train", "cfg.yaml", "--runs-dir", "runs"])
    assert trained.exit_code == 0, trained.output


@pytest.mark.parametrize("kind", [*IMPOSTORS, "truncated"])
def test_a_download_that_is_not_the_file_says_what_arrived(tmp_path, monkeypatch, kind):
    published = tmp_path / "published"
    make_idx_dataset(published, n_train=60, n_test=20)
    monkeypatch.setitem(CATALOG, "mnist", spec_for("mnist", published, num_val=10))
    real = (published / "train-images-idx3-ubyte.gz").read_bytes()
    sent, what = ((real[: len(real) // 2], f"sent {len(real) // 2:,} bytes, not the {len(real):,} of the published file")
                  if kind == "truncated" else (IMPOSTORS[kind][0](real), f"sent {finding(kind, real)}"))
    server = FileServer()
    try:
        server.files["/mnist/train-images-idx3-ubyte.gz"] = sent
        monkeypatch.setenv("DROPCLI_DATA_MIRROR", server.url)
        result = runner.invoke(app, ["data", "fetch", "mnist"])
    finally:
        server.stop()
    assert result.exit_code == 2, result.output
    *progress, line = result.output.splitlines()  # above the error: the download's progress bar, as it stopped
    assert not [p for p in progress if "error" in p or "Traceback" in p], result.output
    assert f"({server.url}/mnist/train-images-idx3-ubyte.gz: {what}, so it was deleted)" in line, line
    assert files_under(tmp_path / "cache") == []


# ---------------------------------------------------------------- the recognition itself


def genuine_files(tmp_path) -> dict[str, Path]:
    _idx(tmp_path)
    _cifar_archive(tmp_path)
    _cifar_folder(tmp_path)
    _npz(tmp_path)
    make_idx_dataset(tmp_path / "plain", n_train=5, n_test=5, gz=False)
    return {"idx.gz": tmp_path / READERS["idx"].bad, "idx": tmp_path / "plain" / "train-images-idx3-ubyte",
            "tar.gz": tmp_path / "cifar-10-python.tar.gz", "pickle": tmp_path / READERS["cifar-batch"].bad,
            "npz": tmp_path / "data.npz"}


def test_no_genuine_dataset_file_is_taken_for_an_impostor(tmp_path):
    for name, path in genuine_files(tmp_path).items():
        assert sniff.describe(sniff.read_head(path), path.stat().st_size) is None, name


def test_a_reader_called_without_an_origin_names_the_path_and_says_to_download_again(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(PAGE)
    with pytest.raises(DataError) as error:
        read_idx(path)
    assert str(error.value) == (f"{path}: is {finding('html-page', b'')}, not an IDX file; "
                                f"download or copy the file again")
    assert error.value.key is None


def test_only_a_pointer_of_the_lfs_spec_is_one(tmp_path):
    real = np.random.default_rng(0).bytes(5000)
    assert sniff.lfs_pointer(lfs_pointer(real)) == (hashlib.sha256(real).hexdigest(), 5000)
    with_extension = lfs_pointer(real).replace(b"\noid", b"\next-0-foo sha256:" + b"0" * 64 + b"\noid")
    assert sniff.lfs_pointer(with_extension) == (hashlib.sha256(real).hexdigest(), 5000)  # the spec allows ext- keys
    assert sniff.lfs_pointer(lfs_pointer(real).replace(b"sha256:", b"md5:")) is None
    assert sniff.lfs_pointer(b"version https://git-lfs.github.com/spec/v1\n" + b"x" * 2000) is None


def test_every_batch_of_a_folder_is_checked(tmp_path):
    _cifar_folder(tmp_path)
    (tmp_path / "cifar-10-batches-py" / BATCHES[-1]).write_bytes(b"")
    line = refused_in_one_line("data", "info", "cifar10", "--path", "cifar-10-batches-py")
    assert line.startswith(f"error: data.path cifar-10-batches-py/{BATCHES[-1]}: is an empty file"), line
