"""dropcli eval (weight scaling vs MC dropout) and the variance-shift report."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dropcli.cli import app
from dropcli.evidence.expectation import variance_shift
from dropcli.evidence.mc_eval import entropy_summary, mc_curve
from dropcli.nn import FullyConnectedNet
from dropcli.nn.model import predict_scores
from dropcli.train.loop import evaluate

runner = CliRunner()


def trained_run(tmp_path, tiny_config, *sets):
    runs = tmp_path / "runs"
    args = ["train", str(tiny_config), "--runs-dir", str(runs)]
    for s in sets:
        args += ["--set", s]
    assert runner.invoke(app, args).exit_code == 0
    (run_dir,) = runs.iterdir()
    return run_dir


def test_mc_with_keep_prob_one_equals_the_deterministic_pass_exactly():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 10)), rng.integers(3, size=40)
    net = FullyConnectedNet([16], input_dim=10, num_classes=3, keep_prob=1.0, normalization="batchnorm",
                            dtype=np.float64, seed=0)
    acc, probs = mc_curve(net, X, y, [1, 3, 7], repeats=2)
    deterministic, _ = evaluate(net, X, y)
    assert np.all(acc == deterministic)
    scores = net.loss(X)
    # Every stochastic pass is the deterministic pass, bit for bit ...
    mc_scores = predict_scores(net.arch, net.params, net.bn_state, X, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(mc_scores, scores)
    # ... so the average of 7 softmaxes differs from one softmax only by the rounding of the sum.
    expected = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(probs[0], expected / expected.sum(1, keepdims=True), rtol=1e-14)


def test_mc_with_dropout_varies_with_t_and_repeats():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 10)), rng.integers(3, size=200)
    net = FullyConnectedNet([32], input_dim=10, num_classes=3, keep_prob=0.3, weight_scale="he", seed=0)
    acc, _ = mc_curve(net, X, y, [1, 50], repeats=3)
    assert acc.shape == (3, 2)
    assert len(set(acc[:, 0])) > 1  # single passes differ between repeats


def test_entropy_summary_auroc():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.5, 0.5], [0.55, 0.45]])
    y = np.array([0, 0, 1, 1])  # the two uncertain ones are wrong
    s = entropy_summary(probs, y)
    assert s["errors"] == 2 and s["auroc_entropy_vs_error"] == 1.0
    assert s["mean_entropy_wrong"] > s["mean_entropy_correct"]


def test_cli_eval_writes_results(tmp_path, tiny_config):
    run_dir = trained_run(tmp_path, tiny_config)
    result = runner.invoke(app, ["eval", str(run_dir), "--mc", "1,4", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads((run_dir / "mc_eval.json").read_text())
    assert set(data["splits"]) == {"val", "test"}
    assert [m["T"] for m in data["splits"]["val"]["mc"]] == [1, 4]
    assert (run_dir / "mc_eval.png").read_bytes().startswith(b"\x89PNG")


def test_cli_eval_prints_whole_paths_and_names_the_checkpoint(tmp_path, tiny_config):
    run_dir = trained_run(tmp_path / ("a-long-folder-name-" * 3), tiny_config)
    result = runner.invoke(app, ["eval", str(run_dir), "--mc", "1,4", "--repeats", "2"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name in ("mc_eval.json", "mc_eval.png"):
        assert f"  {run_dir / name}" in lines  # one line each, never split
    assert "…" not in result.stdout
    best = json.loads((run_dir / "summary.json").read_text())["best"]["epoch"]
    assert f"best-val checkpoint (params.npz, epoch {best})" in " ".join(result.stdout.split())
    assert "val split: weight scaling" in result.stdout and "test split: weight scaling" in result.stdout


def test_cli_eval_without_dropout_says_so_and_writes_nothing(tmp_path, tiny_config):
    run_dir = trained_run(tmp_path, tiny_config, "dropout.keep_prob=1")
    before = sorted(p.name for p in run_dir.iterdir())
    result = runner.invoke(app, ["eval", str(run_dir)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["no dropout layers (keep_prob 1, input keep_prob 1): Monte-Carlo "
                                          "averaging equals weight scaling; nothing to compare"]
    assert sorted(p.name for p in run_dir.iterdir()) == before
    with_input_dropout = trained_run(tmp_path / "b", tiny_config, "dropout.keep_prob=1", "dropout.input_keep_prob=0.8")
    result = runner.invoke(app, ["eval", str(with_input_dropout), "--mc", "2", "--repeats", "2"])
    assert result.exit_code == 0 and (with_input_dropout / "mc_eval.json").is_file()


@pytest.mark.parametrize("args,message", [(["--mc", "0,5"], "between 1 and 10000"), (["--mc", "x"], "whole numbers")])
def test_cli_eval_bad_flags(tmp_path, tiny_config, args, message):
    run_dir = trained_run(tmp_path, tiny_config)
    result = runner.invoke(app, ["eval", str(run_dir), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (run_dir / "mc_eval.json").exists()


def test_cli_eval_not_a_run(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output


def test_variance_shift_appears_after_dropout_and_not_without_it(tmp_path, tiny_config):
    with_dropout = trained_run(tmp_path / "a", tiny_config, "model.normalization=batchnorm",
                               "model.hidden_dims=[64,64]", "dropout.keep_prob=0.3", "train.epochs=5")
    rows = json.loads((with_dropout / "expectation.json").read_text())["variance_shift"]
    assert [r["layer"] for r in rows] == ["batchnorm1", "batchnorm2"]
    assert [r["dropout_before"] for r in rows] == [False, True]
    # Dropout before batchnorm2 inflates the variance it sees in training.
    assert rows[1]["running_var_mean"] > rows[1]["actual_var_mean"]
    assert rows[1]["shift"] > rows[0]["shift"]
    last_only = trained_run(tmp_path / "b", tiny_config, "model.normalization=batchnorm",
                            "model.hidden_dims=[64,64]", "dropout.keep_prob=0.3", "dropout.placement=last",
                            "train.epochs=5")
    data = json.loads((last_only / "expectation.json").read_text())
    assert [r["dropout_before"] for r in data["variance_shift"]] == [False, False]
    assert [layer["layer"] for layer in data["layers"]] == ["hidden2"]


def test_variance_shift_is_empty_without_batchnorm():
    net = FullyConnectedNet([8], input_dim=4, num_classes=2, keep_prob=0.5, seed=0)
    assert variance_shift(net, np.ones((3, 4), np.float32)) == []


def test_placement_last_applies_dropout_after_the_last_hidden_layer_only():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 6)), rng.integers(2, size=8)
    net = FullyConnectedNet([5, 5, 5], input_dim=6, num_classes=2, keep_prob=0.5, placement="last",
                            dtype=np.float64, seed=0)
    assert [net.arch.hidden_keep_prob(i) for i in (1, 2, 3)] == [1.0, 1.0, 0.5]
    gen = np.random.default_rng(1)
    net.loss(X, y, rng=gen)
    draws = np.random.default_rng(1)
    draws.random((8, 5))  # exactly one mask of the last hidden layer's shape was drawn
    assert gen.bit_generator.state == draws.bit_generator.state


def test_plot_reports_show_mc_eval_variance_shift_and_the_variant_comparison(tmp_path, tiny_config):
    from dropcli.report.plot import plot_all

    run_dir = trained_run(tmp_path, tiny_config, "model.normalization=batchnorm")
    assert runner.invoke(app, ["eval", str(run_dir), "--mc", "1,3", "--repeats", "2"]).exit_code == 0
    runs = run_dir.parent
    sweep = runner.invoke(app, ["sweep", str(tiny_config), "--variant", "inverted,vanilla", "--keep", "0.5,1",
                                "--runs-dir", str(runs)])
    assert sweep.exit_code == 0, sweep.output
    plot_all(runs)
    report = (run_dir / "report.md").read_text()
    assert "## Weight scaling vs Monte-Carlo averaging" in report and "](mc_eval.png)" in report
    assert "## Variance shift" in report and "| batchnorm1 | no |" in report
    (sweep_dir,) = [p for p in runs.iterdir() if p.name.startswith("tiny-sweep-")]
    sweep_report = (sweep_dir / "report.md").read_text()
    section = sweep_report.split("## Inverted vs vanilla")[1]
    assert "| inverted |" in section and "| vanilla |" in section
    # per keep_prob, paired by seed; keep_prob 1 (the same net for both variants) left out
    assert "| vanilla - inverted | 0.5 | 0.5 |" in section and "| vanilla - inverted | 1 |" not in section
