"""A user's data is used whole unless the config says otherwise, and every run says how
many examples it trained, validated and tested on: at the start of `train`, in its table,
summary.json, summary.csv and `dropcli runs`."""

import csv
import json

import numpy as np
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.config import load_config_text

runner = CliRunner()


def own_data(tmp_path, n_train=4000, n_val=1000, n_test=500):
    """An npz of the user's own arrays: 20 features, 4 classes a small net can learn."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(4, 20))

    def split(n):
        y = rng.integers(0, 4, size=n)
        return (centres[y] + rng.normal(size=(n, 20))).astype(np.float32), y

    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = split(n_train), split(n_val), split(n_test)
    path = tmp_path / "mine.npz"
    np.savez(path, X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va, X_test=X_te, y_test=y_te)
    return path


def config(tmp_path, data_path, extra=""):
    path = tmp_path / "mine.yaml"
    path.write_text(f"name: mine\ndata: {{dataset: npz, path: {data_path}{extra}}}\nmodel: {{hidden_dims: [16]}}\n"
                    "train: {epochs: 2}\n")
    return path


def test_num_train_and_num_val_default_to_all_the_data():
    data = load_config_text("name: x\n", "x.yaml").data
    assert data.num_train is None and data.num_val is None


def test_train_on_own_data_uses_all_of_it_and_says_so(tmp_path):
    path = config(tmp_path, own_data(tmp_path))
    result = runner.invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "data: npz, train 4,000 · val 1,000 · test 500" in result.output
    assert "examples" in result.output
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["examples"] == {"train": 4000, "val": 1000, "test": 500, "train_pool": 4000, "val_pool": 1000}
    listed = runner.invoke(app, ["runs", str(tmp_path / "runs")])
    assert "train n 4,000" in listed.output and "val n 1,000" in listed.output


def test_a_subsample_is_always_visible(tmp_path):
    path = config(tmp_path, own_data(tmp_path), ", num_train: 300")
    result = runner.invoke(app, ["sweep", str(path), "--seeds", "0,1", "-j", "1", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "train n 300 of 4,000" in " ".join(result.output.split())
    (table,) = (tmp_path / "r").glob("*/summary.csv")
    rows = list(csv.DictReader(table.open()))
    assert [(r["num_train"], r["num_val"], r["num_test"]) for r in rows] == [("300", "1000", "500")] * 2
    trained = runner.invoke(app, ["train", str(path), "--set", "seed=5", "--runs-dir", str(tmp_path / "r")])
    assert "train 300 of 4,000 · val 1,000 · test 500" in trained.output
