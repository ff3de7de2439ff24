"""Early stopping: ``train.patience`` stops a run whose validation accuracy has not
improved for that many epochs; the run keeps its best epoch and says why it stopped."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.config import config_hash, load_config_text
from dropcli.store.early_stop import patience_savings
from dropcli.train.loop import TrainSettings, fit
from dropcli.nn import FullyConnectedNet

runner = CliRunner()
PATIENT = """\
name: patient
data: {dataset: digits, num_train: 300, num_val: 200}
model: {hidden_dims: [32]}
dropout: {keep_prob: 1.0}
train: {epochs: 80, learning_rate: 0.01, patience: 3}
"""


def _data(n=200, seed=0):
    """Two classes a linear net separates at once: validation accuracy stops improving early."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float64)
    y = (X[:, 0] > 0).astype(np.int64)

    class Data:
        X_train, y_train, X_val, y_val = X[: n // 2], y[: n // 2], X[n // 2:], y[n // 2:]
    return Data


def _fit(patience, epochs=40):
    net = FullyConnectedNet(hidden_dims=(8,), input_dim=5, num_classes=2, keep_prob=1.0, dtype=np.float64, seed=0)
    records = []
    rngs = [np.random.default_rng(i) for i in range(3)]
    history = fit(net, _data(), TrainSettings(epochs=epochs, learning_rate=0.05, patience=patience),
                  order_rng=rngs[0], dropout_rng=rngs[1], eval_rng=rngs[2], callback=records.append)
    return net, history, records


def test_training_stops_patience_epochs_after_the_best_and_keeps_the_best():
    net, history, records = _fit(patience=3)
    epochs = [r for r in records if r["kind"] == "epoch"]
    (stop,) = [r for r in records if r["kind"] == "early_stop"]
    best = max((r for r in epochs if r["epoch"] > 0), key=lambda r: r["val_acc"])
    assert stop["epoch"] == epochs[-1]["epoch"] == best["epoch"] + 3 < 40
    assert stop["best_epoch"] == best["epoch"] and history.stopped_epoch == stop["epoch"]
    # no epoch after the best one improved on it
    assert all(r["val_acc"] <= best["val_acc"] for r in epochs if r["epoch"] > best["epoch"])
    # the net holds the best epoch's parameters, as without patience
    assert np.array_equal(net.params["W1"], history.best_params["W1"])


def test_without_patience_every_epoch_is_trained():
    _, history, records = _fit(patience=None, epochs=12)
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == list(range(13))
    assert history.stopped_epoch is None and not any(r["kind"] == "early_stop" for r in records)


def test_patience_reaching_the_last_epoch_is_not_an_early_stop():
    _, history, records = _fit(patience=1, epochs=1)
    assert history.stopped_epoch is None and not any(r["kind"] == "early_stop" for r in records)


def test_patience_null_keeps_every_existing_runs_hash():
    base = load_config_text(PATIENT.replace("patience: 3", "patience: null"), "a.yaml")
    without = load_config_text(PATIENT.replace(", patience: 3", ""), "b.yaml")
    assert config_hash(base) == config_hash(without)
    assert config_hash(load_config_text(PATIENT, "c.yaml")) != config_hash(base)


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "true"])
def test_a_bad_patience_is_one_line(tmp_path, value):
    path = tmp_path / "c.yaml"
    path.write_text(PATIENT.replace("patience: 3", f"patience: {value}"))
    result = runner.invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and f"{path}:5" in line and "train.patience" in line, line
    assert not (tmp_path / "runs").exists()


def test_train_shows_summary_and_table_say_where_and_why_it_stopped(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(PATIENT)
    result = runner.invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["patience"] == 3 and summary["stopped_early"] is True
    assert summary["epochs_completed"] == summary["best"]["epoch"] + 3 < summary["epochs"] == 80
    assert summary["stop_reason"] == f"val accuracy did not improve for 3 epochs after epoch {summary['best']['epoch']}"
    assert f"{summary['epochs_completed']} of 80, stopped early" in " ".join(result.output.split())
    listed = runner.invoke(app, ["runs", str(tmp_path / "runs")])
    assert f"{summary['epochs_completed']}/80 early stop" in listed.output


def test_a_sweep_says_how_much_training_patience_saved(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(PATIENT)
    result = runner.invoke(app, ["sweep", str(path), "--seeds", "0,1", "-j", "1", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("*/*/summary.json")]
    saved = patience_savings(summaries)
    assert saved["runs"] == 2 and saved["stopped"] == sum(s["stopped_early"] for s in summaries) == 2
    assert 0 < saved["saved_s"] < saved["full_s"]
    text = " ".join(result.output.split())
    assert f"train.patience stopped 2 of 2 runs early: about {saved['saved_s']:.1f} s of training saved" in text
    csv = (next((tmp_path / "r").glob("*/summary.csv"))).read_text().splitlines()
    assert "stopped_early" in csv[0].split(",") and all(",True," in row for row in csv[1:])


def test_patience_savings_prices_each_runs_own_epochs():
    runs = [
        {"patience": 5, "stopped_early": True, "epochs": 100, "epochs_completed": 20, "wall_time": 10.0},
        {"patience": 5, "stopped_early": False, "epochs": 100, "epochs_completed": 100, "wall_time": 100.0},
        {"patience": None, "epochs": 100, "epochs_completed": 100, "wall_time": 7.0},  # no patience: not counted
        {"status": "failed"},
    ]
    assert patience_savings(runs) == {"runs": 2, "stopped": 1, "saved_s": 40.0, "full_s": 150.0}
    assert patience_savings(runs[2:]) is None
