"""`dropcli data list | fetch NAME | info NAME`, through typer's CliRunner (no internet:
fetch goes to a file server on 127.0.0.1)."""

import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from test_data_files import FileServer, make_idx_dataset, spec_for
from typer.testing import CliRunner

from dropcli.cli.data import Dataset, Downloadable, data_app
from dropcli.config import DATASETS, DataConfig
from dropcli.data.datasets import CATALOG, NAMES

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DROPCLI_DATA_MIRROR", raising=False)


def invoke(*args):
    return runner.invoke(data_app, [str(a) for a in args])


@pytest.mark.parametrize("command", ["list", "fetch", "info"])
def test_every_data_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Example" in result.output, result.output


def test_choices_match_the_library():
    assert [d.value for d in Downloadable] == list(CATALOG)
    literal = typing.get_args(DataConfig.model_fields["dataset"].annotation)
    assert [d.value for d in Dataset] == list(NAMES) == list(literal) == list(DATASETS)


def test_every_list_of_datasets_is_the_configs():
    """The config's Literal is the one list; what cannot derive from it is checked against it."""
    from dropcli.data.load import LOADERS

    assert list(LOADERS) == list(DATASETS)
    assert set(CATALOG) <= set(DATASETS)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()
    listed = docs.split("`data.dataset` is one of ", 1)[1].split(".\n", 1)[0]
    assert listed == ", ".join(f"`{name}`" for name in DATASETS)
    assert [row.split("`")[1] for row in docs.splitlines() if row.startswith("| `")] == list(DATASETS)


def test_data_help_imports_no_numpy():
    code = ("import sys; from typer.testing import CliRunner; from dropcli.cli.data import data_app\n"
            "for args in (['--help'], ['fetch', '--help'], ['info', '--help']):\n"
            "    assert CliRunner().invoke(data_app, args).exit_code == 0\n"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_shows_every_dataset_and_the_cache_folder(tmp_path):
    result = invoke("list")
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert name in result.output
    assert "not downloaded" in result.output and "built in" in result.output


def test_fetch_downloads_with_progress_then_list_and_info_show_it(tmp_path, monkeypatch):
    published = tmp_path / "published"
    make_idx_dataset(published, n_train=10_050, n_test=20)
    server = FileServer()
    try:
        for f in CATALOG["mnist"].files:
            server.files[f"/mnist/{f.name}"] = (published / f.name).read_bytes()
        monkeypatch.setitem(CATALOG, "mnist", spec_for("mnist", published))
        monkeypatch.setenv("DROPCLI_DATA_MIRROR", server.url)
        result = invoke("fetch", "mnist")
        assert result.exit_code == 0, result.output
        assert "downloaded and checked" in result.output and "10050 training and 20 test" in result.output
        again = invoke("fetch", "mnist")
        assert "already in the cache folder" in again.output and len(server.requests) == 4
    finally:
        server.stop()
    assert "decoded" in invoke("list").output
    info = invoke("info", "mnist")
    assert info.exit_code == 0 and CATALOG["mnist"].files[0].sha256 in info.output
    assert "50 train / 10000 validation" not in info.output  # the catalog's official numbers:
    assert "50000 train / 10000 validation" in info.output


def test_fetch_failure_is_one_line_exit_2(tmp_path, monkeypatch):
    server = FileServer()
    url = server.url
    server.stop()
    monkeypatch.setenv("DROPCLI_DATA_MIRROR", url)
    result = invoke("fetch", "cifar10")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "connection refused" in lines[0] and "data.path" in lines[0], result.output
    assert "Traceback" not in result.output


def test_fetch_refuses_what_has_no_download():
    result = invoke("fetch", "digits")
    assert result.exit_code == 2 and "digits" in result.output


def test_info_with_path_checks_the_files_and_shows_the_splits(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, X=np.zeros((100, 6), np.uint8), y=np.arange(100) % 5)
    result = invoke("info", "npz", "--path", path)
    assert result.exit_code == 0, result.output
    assert "6 features, 5 classes" in result.output and "80" in result.output


def test_info_with_a_bad_path_is_one_line(tmp_path):
    (tmp_path / "x").mkdir()
    result = invoke("info", "mnist", "--path", tmp_path / "x")
    assert result.exit_code == 2 and "has no train-images-idx3-ubyte.gz" in result.output
    assert "Traceback" not in result.output


def test_info_digits_and_npz_without_path():
    digits = invoke("info", "digits")
    assert digits.exit_code == 0 and "1000" in digits.output and "64 features" in digits.output
    npz = invoke("info", "npz")
    assert npz.exit_code == 0 and "X_train, y_train" in npz.output


def test_info_mnist1d_credits_it_and_shows_the_split():
    from dropcli.data.mnist1d import provenance

    result = invoke("info", "mnist1d")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # as if the terminal were one long line
    version = provenance()["generator"]["version"]
    for said in ("Greydanus", "Scaling down deep learning", "arXiv:2011.14439", "Apache-2.0",
                 "https://github.com/greydanus/mnist1d", f"reference generator mnist1d {version}",
                 "train = reference training rows 0..2999, validation = reference training rows 3000..3999, "
                 "test = the reference's test rows; the same for every seed",
                 f"sha256 {provenance()['sha256']} (as recorded)", "40 features, 10 classes",
                 "│ train │ 3000 │", "│ val │ 1000 │", "│ test │ 1000 │"):  # the splits table
        assert said in text, said
    assert "mnist1d" in invoke("list").output
    refused = invoke("info", "mnist1d", "--path", "x.npz")
    assert refused.exit_code == 2 and "mnist1d is built in and reads no file" in refused.output


def test_registered_in_the_main_app():
    from dropcli.cli import app

    assert any(group.name == "data" for group in app.registered_groups)
    result = CliRunner().invoke(app, ["data", "list"])
    assert result.exit_code == 0 and "cifar10" in result.output
