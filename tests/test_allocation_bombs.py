"""Small files that claim, or unpack to, gigabytes: refused in one line before the allocation.

Every file is real: an .npz (a zip of .npy members) whose .npy header, and for one also the
zip's own size field, declares an array far larger than the file; gzip files of many
members of 64 MiB of zeros (about 65 KB each), as a fuzzer made them; a CIFAR-10 tar.gz
whose batch is 768 MiB of zeros. Commands run as `python -m dropcli` with the address
space capped at 1 GiB (dropcli itself needs about 0.4 GiB): the old readers allocated or
unpacked past that and died in a MemoryError traceback.
"""

import functools
import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_data_errors import limited_dropcli, refused
from test_data_files import idx_bytes, make_idx_dataset
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.data.idx import read_idx
from dropcli.errors import DataError

MEMORY = 1 << 30
ZEROS = 64 << 20
NPZ = ["--set", "data.dataset=npz", "--set", "data.num_train=null", "--set", "data.num_val=null"]
BASE = "name: base\ndata: {num_train: 100, num_val: 100}\nmodel: {hidden_dims: [16]}\ntrain: {epochs: 2}\n"


@pytest.fixture(autouse=True)
def _here(data_sandbox):
    (data_sandbox / "base.yaml").write_text(BASE)


def bombed(*args) -> str:
    return refused(limited_dropcli(*args, memory=MEMORY), "error: ")


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# ---------------------------------------------------------------- npz


def npy(shape, dtype="<f8", data=bytes(64)) -> bytes:
    """A .npy member: a real header declaring ``shape`` and ``dtype``, then ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def genuine_npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array))
    return buf.getvalue()


def write_npz(path, members: dict[str, bytes], claimed_sizes: dict[str, int] | None = None):
    """A zip as numpy.savez writes one; ``claimed_sizes`` overwrites a member's uncompressed size
    in the central directory (as zip64, which numpy.savez also uses) with a forged one."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            with z.open(name, "w", force_zip64=True) as f:
                f.write(data)
        for name, size in (claimed_sizes or {}).items():
            z.getinfo(name).file_size = size
    return path


def test_an_npz_whose_header_claims_75_gib_is_one_line_in_info_and_train(tmp_path):
    write_npz("bomb.npz", {"X.npy": npy((100000, 100000)), "y.npy": genuine_npy(np.arange(10) % 2)})
    assert Path("bomb.npz").stat().st_size < 1000
    message = ("error: bomb.npz: the header of X declares float64 of shape (100000, 100000) (74.5 GiB), "
               "but the file holds 64 bytes for it; the file is corrupt or forged: write it again with numpy.savez")
    assert bombed("data", "info", "npz", "--path", "bomb.npz").strip() == message  # was: _ArrayMemoryError
    assert bombed("train", "base.yaml", *NPZ, "--set", "data.path=bomb.npz", "--runs-dir", "runs").strip() == message
    assert not (tmp_path / "runs").exists()


def test_an_npz_split_header_is_checked_too():
    X = np.zeros((20, 3))
    write_npz("splits.npz", {"X_train.npy": genuine_npy(X), "y_train.npy": genuine_npy(np.arange(20) % 2),
                             "X_val.npy": npy((10**6, 10**6), "<i8"), "y_val.npy": genuine_npy(np.arange(4) % 2)})
    line = bombed("data", "info", "npz", "--path", "splits.npz")
    assert "splits.npz: the header of X_val declares int64 of shape (1000000, 1000000) (7.3 TiB)" in line


def test_an_npz_whose_zip_entry_also_claims_a_tebibyte_is_refused_by_this_machines_memory():
    header = npy((1 << 37,), data=b"")  # 2**37 float64 = 1 TiB
    write_npz("forged.npz", {"X.npy": header + bytes(64), "y.npy": genuine_npy(np.arange(10) % 2)},
              claimed_sizes={"X.npy": len(header) + (1 << 40)})
    with zipfile.ZipFile("forged.npz") as z:  # the forgery holds: zip itself believes the size
        assert z.getinfo("X.npy").file_size == len(header) + (1 << 40)
    line = bombed("data", "info", "npz", "--path", "forged.npz")
    assert "forged.npz: its arrays take 1.0 TiB, more than this machine's" in line
    assert "of memory; save a smaller subset" in line


def test_eval_of_a_run_whose_params_npz_header_is_forged_is_one_line(tmp_path, tiny_config):
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--runs-dir", "runs"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    params = run / "params.npz"
    with np.load(params) as z:
        members = {f"{k}.npy": genuine_npy(z[k]) for k in z.files}
        needs = f"{z['W1'].dtype}{list(z['W1'].shape)}"
    write_npz(params, {**members, "W1.npy": npy((100000, 100000))})
    before = {p: p.read_bytes() for p in files_under(run)}
    line = bombed("eval", run)
    assert f"{params}: W1 is float64[100000, 100000], the config needs {needs}" in line
    assert {p: p.read_bytes() for p in files_under(run)} == before  # nothing written


# ---------------------------------------------------------------- gzipped IDX


@functools.lru_cache(maxsize=1)
def zeros_member() -> bytes:
    """One gzip member of 64 MiB of zeros (about 65 KB); members concatenated are one gzip file."""
    return gzip.compress(bytes(ZEROS), compresslevel=9, mtime=0)


def mnist_folder(images: bytes) -> Path:
    """An MNIST folder of real IDX files whose train-images-idx3-ubyte.gz is ``images``."""
    make_idx_dataset(Path("mnist"), n_train=20, n_test=10)
    Path("mnist/train-images-idx3-ubyte.gz").write_bytes(images)
    return Path("mnist")


def test_a_gzip_of_80_members_of_zeros_stops_at_the_magic_number(tmp_path):
    mnist_folder(zeros_member() * 80)  # 5 GiB of zeros in about 5 MB, as the fuzzer made it
    message = ("mnist/train-images-idx3-ubyte.gz: not an IDX file (magic number 00000000, expected 0000 then "
               "a type byte and a dimension count, e.g. 00000803)")
    assert message in bombed("data", "info", "mnist", "--path", "mnist")  # was: MemoryError at 3.9 GiB
    assert message in bombed("train", "base.yaml", "--set", "data.dataset=mnist", "--set", "data.path=mnist",
                             "--runs-dir", "runs")
    assert not (tmp_path / "runs").exists() and files_under(tmp_path / "cache") == []


def test_gzip_is_not_unpacked_past_the_end_the_idx_header_declares(tmp_path):
    images = np.zeros((20, 28, 28), np.uint8)
    mnist_folder(gzip.compress(idx_bytes(images), mtime=0) + zeros_member() * 16)  # then 1 GiB of zeros
    line = bombed("data", "info", "mnist", "--path", "mnist")
    assert ("mnist/train-images-idx3-ubyte.gz: the file is longer than its header says: shape (20, 28, 28) "
            "needs 15696 bytes, found more") in line
    assert files_under(tmp_path / "cache") == []


def test_an_idx_header_claiming_more_than_its_gzip_can_unpack_to_is_refused_before_reading(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 10**6, 28, 28)  # 784 MB declared
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(5000), mtime=0))
    with pytest.raises(DataError) as error:
        read_idx(path)
    size = path.stat().st_size
    assert str(error.value).startswith(
        f"{path}: the IDX header declares shape (1000000, 28, 28) (747.7 MiB), more than {size} bytes of gzip "
        f"can unpack to (at most")  # was: "truncated", after unpacking all of it


# ---------------------------------------------------------------- CIFAR-10 tar.gz


def tar_gz_of_zeros(path: Path, member: str, size: int) -> Path:
    """A real tar.gz (one deflate stream, as tarfile's streaming reader needs) holding ``member``:
    ``size`` bytes of zeros. Built from copies of one fully flushed deflate block of 64 MiB of
    zeros, so that nothing large is compressed or held here."""
    info = tarfile.TarInfo(member)
    info.size = size
    head, tail = info.tobuf(tarfile.GNU_FORMAT), bytes(-size % 512 + 1024)  # padding, end of archive

    def deflated(data: bytes, final=False) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)

    assert size % ZEROS == 0
    block, crc = deflated(bytes(ZEROS)), zlib.crc32(head)
    for _ in range(size // ZEROS):
        crc = zlib.crc32(bytes(ZEROS), crc)
    crc = zlib.crc32(tail, crc)
    total = len(head) + size + len(tail)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header: deflate, no name, mtime 0
        f.write(deflated(head))
        for _ in range(size // ZEROS):
            f.write(block)
        f.write(deflated(tail, final=True))
        f.write(struct.pack("<II", crc, total & 0xFFFFFFFF))
    return path


def test_a_cifar_batch_larger_than_all_of_cifar10_is_not_read(tmp_path):
    tar_gz_of_zeros(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py/data_batch_1", 12 * ZEROS)
    line = bombed("data", "info", "cifar10", "--path", "cifar-10-python.tar.gz")  # was: MemoryError
    assert ("cifar-10-python.tar.gz:data_batch_1: the batch is 768.0 MiB, more than all of CIFAR-10's 60,000 "
            "images take (183.1 MiB); the file is corrupt or forged: download it again") in line
    assert files_under(tmp_path / "cache") == []
