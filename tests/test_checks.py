"""`dropcli check`: every pass/fail tested both ways."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dropcli.evidence import checks
from dropcli.report.check import expectation_figure
from dropcli.cli import app
from dropcli.nn import layers, rel_error
from dropcli.nn.dropout import dropout_forward
from dropcli.store.layout import SCHEMA_VERSION


def forgets_to_divide(x, keep_prob, variant, *, train, rng=None):
    """The cs231n notebook's trap: inverted dropout without the / keep_prob."""
    if train and keep_prob < 1:
        return x * (rng.random(x.shape) < keep_prob), None
    return x, None


def reads_p_as_drop_rate(x, keep_prob, variant, *, train, rng=None):
    return dropout_forward(x, 1 - keep_prob if keep_prob < 1 else 1.0, variant, train=train, rng=rng)


def test_correct_dropout_passes_every_expectation():
    rows = checks.expectation_checks([0.25, 0.4, 0.7], ["inverted", "vanilla"])
    assert all(r["pass"] and not r["failures"] for r in rows)


def test_forgetting_to_divide_by_keep_prob_fails_on_the_train_mean():
    (row,) = checks.expectation_checks([0.7], ["inverted"], dropout=forgets_to_divide)
    assert not row["pass"] and not row["train_mean"]["pass"]
    assert row["train_mean"]["measured"] == pytest.approx(7.0, abs=0.05)  # the notebook's "about 7"
    assert row["dropped_fraction"]["pass"]  # the mask itself is right
    (message,) = row["failures"]
    assert "train-time mean 7.0" in message and "predicted 10.0" in message and "standard errors" in message


def test_reading_p_as_the_drop_rate_fails_on_the_fraction_dropped():
    (row,) = checks.expectation_checks([0.25], ["inverted"], dropout=reads_p_as_drop_rate)
    assert not row["dropped_fraction"]["pass"]
    assert any("fraction dropped 0.25" in f for f in row["failures"])


def test_a_vanilla_layer_that_forgets_test_scaling_fails_on_the_test_mean():
    def no_test_scaling(x, keep_prob, variant, *, train, rng=None):
        return dropout_forward(x, keep_prob, variant, train=train, rng=rng) if train else (x, None)

    (row,) = checks.expectation_checks([0.5], ["vanilla"], dropout=no_test_scaling)
    assert row["train_mean"]["pass"] and not row["test_mean"]["pass"]


def test_layer_gradient_checks_pass_and_catch_a_wrong_backward(monkeypatch):
    rows = checks.layer_gradient_checks([0.5], ["inverted", "vanilla"])
    assert all(r["pass"] for r in rows), [r for r in rows if not r["pass"]]
    assert {"affine dx", "relu dx", "batchnorm (train) dx", "layernorm dgamma", "dropout vanilla keep 0.5 dx"} <= {
        r["name"] for r in rows}
    tanh_forward, _ = layers.ACTIVATIONS["tanh"]
    monkeypatch.setitem(layers.ACTIVATIONS, "tanh", (tanh_forward, lambda dout, out: dout * (1 - out)))
    broken = {r["name"]: r for r in checks.layer_gradient_checks([0.5], ["inverted"])}
    assert not broken["tanh dx"]["pass"] and broken["relu dx"]["pass"]


def test_net_gradient_checks_pass_and_catch_a_wrong_l2_gradient(monkeypatch):
    rows = checks.net_gradient_checks([0.5], ["vanilla"], normalizations=[None, "batchnorm"])
    assert len(rows) == 4 and all(r["pass"] for r in rows)
    net = checks.FullyConnectedNet([20, 30], input_dim=15, num_classes=10, reg=0.5, weight_scale=5e-2,
                                   dtype=np.float64, seed=0)
    X, y = checks.kink_free_batch(net, 6, mask_seed=1)
    assert checks.net_gradient_check(net, X, y)["pass"]
    monkeypatch.setattr(checks, "l2_penalty", lambda arch, params: 0.0)  # loss without the L2 term
    assert not checks.net_gradient_check(net, X, y)["pass"]


def test_net_gradient_checks_report_the_real_relative_error():
    """Not 0.0 (the error left after forgiving differences below atol) but cs231n's relative
    error over the entries above the floor, ~1e-7..1e-8 in float64, and both criteria met."""
    rows = checks.net_gradient_checks([0.5], ["inverted"], normalizations=[None, "batchnorm"])
    for row in rows:
        assert 1e-12 < row["rel_error"] <= checks.NET_TOL, row
        assert 0 < row["max_abs_diff"] <= checks.NET_ATOL
        assert row["rel_floor"] == checks.NET_ATOL / checks.NET_TOL
        assert row["pass"] and row["passed_by"] == "rel. error and abs. difference"


def test_gradient_rows_say_which_criterion_passed_without_changing_pass():
    tol, atol = checks.NET_TOL, checks.NET_ATOL
    cases = {  # analytic, numeric -> passed_by
        "rel. error": ([1.0, 0.0], [1.0 + 1e-8, 1e-10]),  # 0 vs 1e-10: below the floor, not a rel. error of 1
        "abs. difference": ([1e-5, 0.0], [1e-5 + 1e-10, 0.0]),  # nothing above the floor (5e-4)
        "per entry": ([1.0, 0.0], [1.0 + 2.0002e-6, 0.0]),  # within atol + tol x 2, neither bound alone
        None: ([1.0, 0.0], [1.0, 1e-9]),  # a zero gradient off by 2 x atol fails
    }
    for expected, (a, n) in cases.items():
        row = checks._grad_row("net", "w", np.array(a), np.array(n), tol, atol)
        assert row["pass"] == (rel_error(a, n, atol) <= tol)  # the test itself is unchanged
        assert row["passed_by"] == expected, (expected, row)
        assert row["max_abs_diff"] == pytest.approx(np.abs(np.subtract(a, n)).max())
    assert checks._grad_row("net", "w", np.array([1.0, 0.0]), np.array([1.0 + 1e-8, 1e-10]), tol, atol)[
        "rel_error"] == pytest.approx(1e-8 / 2, rel=1e-6)


def test_expectation_figure_shows_every_variant_and_the_input_mean():
    results = {"z_tol": 4.0, "expectation": checks.expectation_checks([0.25, 0.7], checks.VARIANTS)}
    fig = expectation_figure(results)
    axes = fig.axes
    assert all(ax.get_ylabel() for ax in axes) and not any(ax.get_legend() for ax in axes) and fig.legends
    train_mean = next(ax for ax in axes if ax.get_title() == "train-time mean")
    (ref,) = [line for line in train_mean.get_lines() if line.get_label() == "input mean"]
    assert ref.get_linestyle() == "--"
    assert set(ref.get_ydata()) == {results["expectation"][0]["input_mean"]}
    # inverted, gaussian and dropconnect all measure ~10 at every keep_prob: none may hide another
    xs = [x for c in train_mean.containers for x in c.lines[0].get_xdata()]
    assert len(xs) == 8 and len(set(np.round(xs, 6))) == 8


def test_cli_check_writes_a_report_and_exits_0(tmp_path):
    result = CliRunner().invoke(app, ["check", "--keep", "0.5", "--variant", "inverted", "--runs-dir", str(tmp_path)],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "checks").iterdir()
    data = json.loads((folder / "checks.json").read_text())
    assert data["pass"] and data["schema_version"] == SCHEMA_VERSION
    report = (folder / "report.md").read_text()
    assert "PASS" in report and "](expectation.png)" in report
    assert "measured among the non-zero inputs" in report and "drop rate" in report
    assert "| pass (rel. error and abs. difference) |" in report and "| 0.0e+00 |" not in report
    assert (folder / "expectation.png").read_bytes().startswith(b"\x89PNG")
    # The terminal table has the input mean to compare the means with, uncut at 80 columns.
    header = next(line for line in result.output.splitlines() if line.startswith("variant"))
    assert "input mean" in header and "predicted" in header and "…" not in result.output
    assert f"{data['expectation'][0]['input_mean']:.4f}" in result.output
    assert "worst rel. error 0.0e+00" not in result.output


def test_cli_check_exits_1_and_names_the_failure(tmp_path, monkeypatch):
    real = checks.expectation_checks
    monkeypatch.setattr(checks, "expectation_checks", lambda *a, **k: real(*a, **k, dropout=forgets_to_divide))
    result = CliRunner().invoke(app, ["check", "--keep", "0.7", "--variant", "inverted", "--runs-dir", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "FAIL inverted keep_prob 0.7: train-time mean 7.0" in result.output


@pytest.mark.parametrize("args", [["--keep", "0,0.5"], ["--keep", "abc"], ["--variant", "alexnet"]])
def test_cli_check_bad_flags(tmp_path, args):
    result = CliRunner().invoke(app, ["check", *args, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output
    assert not (tmp_path / "checks").exists()
