"""Training diagnostics: recorded per epoch, exact, free of side effects, drawn by `plot`."""

import json
import math
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from dropcli.evidence import checks
from dropcli.cli import app
from dropcli.config import Config, load_config, with_values
from dropcli.data.load import load_data
from dropcli.train.diagnostics import ActivationStats, GradNorms, epoch_diagnostics, scores_and_activations
from dropcli.nn import FullyConnectedNet, streams
from dropcli.nn.model import forward, hidden_activations, layer_values, predict_scores
from dropcli.nn.step import TrainStep
from dropcli.train.loop import TrainSettings, fit

from test_plots import assert_png

runner = CliRunner()
TIMING = ("epoch_time", "elapsed")


def run(activation="relu", diagnostics=True, epochs=2, **net_kw):
    rngs = streams(0)
    data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 60}), rngs["data"])
    net = FullyConnectedNet([32, 24], input_dim=data.input_dim, num_classes=10, activation=activation,
                            weight_scale="he", seed=0, **{"keep_prob": 0.5, **net_kw})
    history = fit(net, data, TrainSettings(epochs=epochs, batch_size=50, eval_train_samples=150,
                                           diagnostics=diagnostics),
                  order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"])
    return net, data, history


def test_epoch_records_carry_diagnostics_per_layer():
    _, _, h = run()
    first, *rest = h.records
    assert "grad_norm" not in first["diagnostics"]  # epoch 0: no steps yet
    for rec in rest:
        d = rec["diagnostics"]
        assert set(d["grad_norm"]) == {"W1", "W2", "W3"} and all(v > 0 for v in d["grad_norm"].values())
        assert set(d["act_mean"]) == set(d["act_std"]) == set(d["dead_fraction"]) == {"h1", "h2"}
        assert all(0 <= v <= 1 for v in d["dead_fraction"].values())
        assert set(d["max_col_norm"]) == {"W1", "W2", "W3"}
    assert "dead_fraction" not in run(activation="tanh", epochs=1)[2].records[-1]["diagnostics"]


def test_diagnostics_change_nothing_else():
    """Train accuracy comes from the same pass that measures the activations: same numbers."""
    strip = lambda records: [{k: v for k, v in r.items() if k not in (*TIMING, "diagnostics")}  # noqa: E731
                             for r in records]
    assert strip(run(diagnostics=True)[2].records) == strip(run(diagnostics=False)[2].records)
    assert all("diagnostics" not in r for r in run(diagnostics=False, epochs=1)[2].records)


@pytest.mark.parametrize("variant,norm", [("inverted", "batchnorm"), ("vanilla", None), ("dropconnect", "layernorm")])
def test_activations_are_read_from_the_test_mode_forward_that_gives_the_scores(variant, norm):
    rng = np.random.default_rng(0)
    net = FullyConnectedNet([16, 16], input_dim=10, num_classes=3, keep_prob=0.5, input_keep_prob=0.8,
                            variant=variant, normalization=norm, seed=0)
    X = rng.standard_normal((40, 10)).astype(np.float32)
    scores, caches, _ = forward(net.arch, net.params, net.bn_state, X, train=False)
    found = layer_values(caches)
    np.testing.assert_array_equal(scores, predict_scores(net.arch, net.params, net.bn_state, X))
    np.testing.assert_array_equal(scores, scores_and_activations(net.arch, net.params, net.bn_state, X)[0])
    assert [h["layer"] for h in found] == [1, 2] and set(found[0]) == {"layer", "in", "pre_norm", "act_in", "out"}
    for ours, theirs in zip(found, hidden_activations(net.arch, net.params, net.bn_state, X)):
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    np.testing.assert_array_equal(found[1]["in"], found[0]["out"] * (0.5 if variant == "vanilla" else 1))


def test_activation_statistics_and_gradient_norms_are_exact(monkeypatch):
    norms = []
    real = TrainStep.__call__

    def spy(self, *args, **kw):
        out = real(self, *args, **kw)
        norms.append(np.linalg.norm(self.grads["W1"].astype(np.float64)))
        return out

    monkeypatch.setattr(TrainStep, "__call__", spy)
    net, data, h = run(epochs=1)
    d = h.records[-1]["diagnostics"]
    assert d["grad_norm"]["W1"] == pytest.approx(np.mean(norms), rel=1e-5)  # the mean over the epoch's 4 steps
    assert len(norms) == 4
    sub = streams(0)["eval"].permutation(200)[:150]  # fit's fixed train-accuracy subsample
    assert h.best_epoch == 1  # so the net fit left behind is the one epoch 1's record measured
    for layer in hidden_activations(net.arch, net.params, net.bn_state, data.X_train[sub]):
        out, key = layer["out"].astype(np.float64), f"h{layer['layer']}"
        assert d["act_mean"][key] == pytest.approx(out.mean(), rel=1e-5)
        assert d["act_std"][key] == pytest.approx(out.std(), rel=1e-4)
        assert d["dead_fraction"][key] == np.mean(~(out > 0).any(axis=0))


def test_vanishing_gradients_config_shows_batchnorm_restoring_the_first_layers_gradient():
    from pathlib import Path

    from dropcli.experiment.build import build_net, train_settings

    config = load_config(Path(__file__).parent.parent / "configs" / "vanishing_gradients.yaml")
    assert config.sweep["model.normalization"] == ("none", "batchnorm")
    assert len(config.model.hidden_dims) >= 6 and config.model.activation == "sigmoid"
    first = {}
    for norm in ("none", "batchnorm"):
        c = with_values(config, {"model.normalization": norm, "train.epochs": 1, "data.num_train": 300})
        rngs = streams(c.seed)
        data = load_data(c.data, rngs["data"])
        h = fit(build_net(c, data.input_dim, data.num_classes), data, train_settings(c),
                order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"])
        g = h.records[-1]["diagnostics"]["grad_norm"]
        first[norm] = g["W1"]
        if norm == "none":  # the gradient shrinks layer by layer on its way to the input
            assert g["W1"] < g["W4"] < g["W8"]
    assert first["batchnorm"] > 100 * first["none"], first


def test_train_and_plot_write_and_draw_diagnostics(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", str(tiny_config), "--variant", "gaussian,dropconnect",
                                 "--set", "model.max_norm=2", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    (sweep,) = [p for p in runs.iterdir() if p.is_dir()]
    run_dirs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert all("diagnostics" in r for r in epochs if r["kind"] == "epoch")
        assert json.loads((run_dir / "expectation.json").read_text())["pass"]
    assert runner.invoke(app, ["plot", str(runs)]).exit_code == 0
    for run_dir in run_dirs:
        assert_png(run_dir / "diagnostics.png")
        report = (run_dir / "report.md").read_text()
        assert "](diagnostics.png)" in report and "| max_norm | 2 |" in report
    assert_png(sweep / "grad_flow.png")
    assert "](grad_flow.png)" in (sweep / "report.md").read_text()
    assert "## Dropout variants compared" in (sweep / "report.md").read_text()


def test_cli_check_accepts_the_new_variants_and_reports_what_does_not_apply(tmp_path, monkeypatch):
    real = checks.net_gradient_checks
    monkeypatch.setattr(checks, "net_gradient_checks", lambda k, v, seed=0: real(k, v, normalizations=[None], seed=seed))
    result = runner.invoke(app, ["check", "--keep", "0.5", "--variant", "gaussian,dropconnect",
                                 "--runs-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "checks").iterdir()
    data = json.loads((folder / "checks.json").read_text())
    assert data["pass"] and [r["variant"] for r in data["expectation"]] == ["gaussian", "dropconnect"]
    assert all(r["dropped_fraction"]["applicable"] is False for r in data["expectation"])
    names = {g["name"] for g in data["gradients"]}
    assert {"dropout gaussian keep 0.5 dx", "dropconnect keep 0.5 dw"} <= names
    assert any(n.startswith("net none dropconnect keep 0.5") for n in names)
    report = (folder / "report.md").read_text()
    assert "| gaussian | 0.5 | 0.5 |" in report and "| n/a |" in report and "train-time variance" in report
    # The terminal table lists only what each variant predicts: variance, not a dropped fraction.
    assert "train variance" in result.output and "fraction dropped" not in result.output


@pytest.mark.parametrize("values, mean, std", [
    ([1e200, 1e200], 1e200, math.inf),  # the squares overflow float64 (Python's ** used to raise)
    ([1e200, -1e200], 0.0, math.inf),
    ([math.inf, 1.0], math.inf, math.inf),
    ([math.nan, 1.0], math.nan, math.nan),
])
def test_a_diverging_nets_statistics_are_recorded_never_raised_on(values, mean, std):
    """A huge learning rate leaves activations, weights and gradients huge or not finite:
    the diagnostics record what overflowed as inf (NaN as NaN) and raise nothing."""
    net = FullyConnectedNet([2], input_dim=3, num_classes=2, activation="tanh", seed=0)
    out = np.tile(np.array(values), (4, 1))  # 4 examples of 2 units
    weights = {"W1": np.full((3, 2), values[0]), "W2": np.full((2, 2), values[0])}
    stats, grads = ActivationStats(), GradNorms(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a NumPy warning on stderr
        stats.add([{"layer": 1, "out": out}])
        grads.add(weights)
        d = epoch_diagnostics(net.arch, {**net.params, **weights}, stats, grads)
    np.testing.assert_equal([d["act_mean"]["h1"], d["act_std"]["h1"]], [mean, std])
    # every value is 1e200 (or inf, nan): each norm's sum of squares overflowed too
    np.testing.assert_equal([*d["grad_norm"].values(), *d["max_col_norm"].values()], [std] * 4)
