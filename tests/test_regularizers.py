"""Gaussian dropout, DropConnect and max-norm: gradients, expectations, where they act.

Tolerances follow dropcli.evidence.expectation: a measurement must lie within Z_TOL = 4 standard
errors of its prediction, the standard error computed from the number of units (or
weights) sampled; the generators are seeded, so the tests are deterministic.
"""

import numpy as np
import pytest

from dropcli.evidence.checks import _kink_free_masks_and_batch, kink_free_batch
from dropcli.evidence.expectation import Z_TOL, check_dropconnect, check_dropout, expectation_report
from dropcli.evidence.mc_eval import mc_curve
from dropcli.nn import FullyConnectedNet, layers, numeric_gradient
from dropcli.nn.dropout import dropconnect_backward, dropconnect_forward, draw_mask, dropout_backward, dropout_forward
from dropcli.nn.model import apply_max_norm, predict_scores

from gradcheck_util import assert_grad_close, check_layer

LAYER_TOL = 1e-8
NET_TOL, NET_ATOL = 1e-6, 5e-10  # as in test_model.py


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(231).standard_normal((500, 500)) + 10  # the cs231n notebook's input


# --- Gaussian dropout -------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.8])
def test_gaussian_train_mean_and_variance_match_the_prediction(x, keep):
    """noise ~ N(1, s2), s2 = (1 - keep) / keep: E[out] = x and Var[out | x] = s2 x^2."""
    out, _ = dropout_forward(x, keep, "gaussian", train=True, rng=np.random.default_rng(0))
    n, s2 = x.size, (1 - keep) / keep
    z_mean = (out.mean() - x.mean()) / np.sqrt(s2 * np.mean(x**2) / n)
    # (out - x)^2 = x^2 (noise - 1)^2, whose variance is 2 s2^2 x^4 for a normal noise
    z_var = (np.mean((out - x) ** 2) - s2 * np.mean(x**2)) / (s2 * np.sqrt(2 * np.mean(x**4) / n))
    assert abs(z_mean) <= Z_TOL and abs(z_var) <= Z_TOL, (z_mean, z_var)
    assert np.mean(out == 0) == 0  # Gaussian noise drops nothing
    result = check_dropout(x, keep, "gaussian", np.random.default_rng(0))
    assert result["pass"] and result["predicts"] == ["train_mean", "train_var", "test_mean"]
    assert result["train_mean"]["z"] == pytest.approx(z_mean) and result["train_var"]["z"] == pytest.approx(z_var)
    assert result["dropped_fraction"]["applicable"] is False and result["dropped_fraction"]["pass"] is None


def test_gaussian_has_inverted_dropouts_mean_and_variance(x):
    """Srivastava et al. 2014, section 10: the same first two moments as inverted Bernoulli."""
    for keep in (0.3, 0.7):
        inv, gauss = (check_dropout(x, keep, v, np.random.default_rng(1)) for v in ("inverted", "gaussian"))
        assert inv["noise_mean"] == gauss["noise_mean"] == pytest.approx(1.0)
        assert inv["noise_var"] == pytest.approx(gauss["noise_var"])


def test_gaussian_check_catches_the_wrong_variance(x):
    def var_one_minus_keep(x, keep_prob, variant, *, train, rng=None):  # N(1, 1 - k): a plausible slip
        if not train:
            return x, None
        return x * (1 + np.sqrt(1 - keep_prob) * rng.standard_normal(x.shape)), None

    result = check_dropout(x, 0.5, "gaussian", np.random.default_rng(3), dropout=var_one_minus_keep)
    assert result["train_mean"]["pass"] and not result["train_var"]["pass"] and not result["pass"]


def test_gaussian_test_mode_is_the_identity_and_keep_one_draws_nothing(x):
    assert dropout_forward(x, 0.5, "gaussian", train=False)[0] is x
    gen = np.random.default_rng(0)
    state = gen.bit_generator.state
    out, cache = dropout_forward(x, 1.0, "gaussian", train=True, rng=gen)
    assert out is x and dropout_backward(x, cache) is x and gen.bit_generator.state == state
    x32 = np.ones((10, 10), np.float32)
    out, (noise, _) = dropout_forward(x32, 0.5, "gaussian", train=True, rng=np.random.default_rng(0))
    assert out.dtype == noise.dtype == np.float32


@pytest.mark.parametrize("keep", [0.25, 0.7])
def test_gaussian_layer_gradient(keep):
    rng = np.random.default_rng(5)
    xd, dout = rng.standard_normal((10, 10)) + 10, rng.standard_normal((10, 10))

    def fwd():  # a generator in the same state every call: the same noise
        return dropout_forward(xd, keep, "gaussian", train=True, rng=np.random.default_rng(7))

    dx = dropout_backward(dout, fwd()[1])
    check_layer(f"gaussian keep {keep}", lambda: fwd()[0], {"x": xd}, {"x": dx}, dout, LAYER_TOL)


def test_unit_dropout_refuses_dropconnect(x):
    with pytest.raises(ValueError, match="masks weights"):
        dropout_forward(x, 0.5, "dropconnect", train=True, rng=np.random.default_rng(0))


# --- DropConnect --------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.25, 0.7])
def test_dropconnect_layer_gradients(keep):
    rng = np.random.default_rng(6)
    xd, w, b = rng.standard_normal((10, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))

    def fwd():  # the same weight mask every call
        return dropconnect_forward(xd, w, b, keep, train=True, rng=np.random.default_rng(7))

    dx, dw, db = dropconnect_backward(dout, fwd()[1])
    check_layer(f"dropconnect keep {keep}", lambda: fwd()[0], {"x": xd, "w": w, "b": b},
                {"x": dx, "w": dw, "b": db}, dout, LAYER_TOL)


def test_dropconnect_masks_weights_once_per_batch_and_tests_with_the_mean_weights():
    rng = np.random.default_rng(0)
    xd, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, _ = dropconnect_forward(xd, w, b, 0.4, train=True, rng=np.random.default_rng(9))
    mask = draw_mask(w.shape, 0.4, 1 / 0.4, np.random.default_rng(9), w.dtype)  # one (D, H) mask, inverted
    np.testing.assert_array_equal(out, xd @ (w * mask) + b)
    assert set(np.unique(mask)) == {0.0, 2.5}
    test_out, _ = dropconnect_forward(xd, w, b, 0.4, train=False)
    np.testing.assert_array_equal(test_out, layers.affine_forward(xd, w, b)[0])
    gen = np.random.default_rng(0)
    state = gen.bit_generator.state
    plain, _ = dropconnect_forward(xd, w, b, 1.0, train=True, rng=gen)
    np.testing.assert_array_equal(plain, layers.affine_forward(xd, w, b)[0])
    assert gen.bit_generator.state == state


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_dropconnect_train_mean_and_variance_match_the_exact_prediction(keep):
    rng = np.random.default_rng(11)
    xd, w, b = rng.standard_normal((200, 60)) + 1, 0.2 * rng.standard_normal((60, 40)), rng.standard_normal(40)
    result = check_dropconnect(xd, w, b, keep, np.random.default_rng(4), draws=20)
    assert result["pass"], result
    assert result["predicts"] == ["train_mean", "train_var", "test_mean"]
    assert result["dropped_fraction"]["applicable"] is False
    assert result["train_var"]["predicted"] == pytest.approx(
        (1 - keep) / keep * np.mean((xd**2) @ (w**2)))


def test_dropconnect_check_catches_a_missing_scale_and_keep_read_as_drop_rate():
    rng = np.random.default_rng(12)
    xd, w, b = rng.standard_normal((200, 60)) + 1, 0.2 * rng.standard_normal((60, 40)) + 0.05, np.zeros(40)

    def unscaled(x, w, b, keep_prob, *, train, rng=None):  # Wan et al.'s train rule, tested as inverted
        if not train:
            return x @ w + b, None
        return x @ (w * (rng.random(w.shape) < keep_prob)) + b, None

    def swapped(x, w, b, keep_prob, *, train, rng=None):
        return dropconnect_forward(x, w, b, 1 - keep_prob, train=train, rng=rng)

    assert not check_dropconnect(xd, w, b, 0.5, np.random.default_rng(0), draws=5, layer=unscaled)["train_mean"]["pass"]
    result = check_dropconnect(xd, w, b, 0.25, np.random.default_rng(0), draws=5, layer=swapped)
    assert result["train_mean"]["pass"] and not result["train_var"]["pass"]  # unbiased, but the wrong noise


def test_dropconnect_net_masks_the_weights_into_hidden_layers_only():
    """Masks W1 and W2 (into the hidden layers), in that order, one per minibatch; never
    the output layer's W3; no unit of a hidden layer is dropped; input dropout is inverted."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 6)), rng.integers(3, size=8)
    net = FullyConnectedNet([5, 4], input_dim=6, num_classes=3, keep_prob=0.5, input_keep_prob=0.8,
                            variant="dropconnect", dtype=np.float64, seed=0)
    p = net.params
    gen = np.random.default_rng(3)
    x_in = X * draw_mask(X.shape, 0.8, 1 / 0.8, gen, X.dtype)
    h1 = np.maximum(x_in @ (p["W1"] * draw_mask(p["W1"].shape, 0.5, 2.0, gen, X.dtype)) + p["b1"], 0)
    h2 = np.maximum(h1 @ (p["W2"] * draw_mask(p["W2"].shape, 0.5, 2.0, gen, X.dtype)) + p["b2"], 0)
    expected = layers.softmax_loss(h2 @ p["W3"] + p["b3"], y)[0]
    used = np.random.default_rng(3)
    assert net.loss(X, y, rng=used)[0] == expected
    assert used.bit_generator.state == gen.bit_generator.state  # nothing else was drawn
    last = FullyConnectedNet([5, 4], input_dim=6, num_classes=3, keep_prob=0.5, variant="dropconnect",
                             placement="last", seed=0)
    assert [last.arch.weight_keep_prob(i) for i in (1, 2, 3)] == [1.0, 0.5, 1.0]


NET_CASES = [("gaussian", None, {"input_keep_prob": 0.8}), ("gaussian", "batchnorm", {}),
             ("gaussian", "layernorm", {}), ("dropconnect", None, {"input_keep_prob": 0.8}),
             ("dropconnect", "batchnorm", {}), ("dropconnect", "layernorm", {"placement": "last"})]


@pytest.mark.parametrize("variant,norm,extra", NET_CASES)
def test_whole_net_gradients(variant, norm, extra):
    net = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, keep_prob=0.5, variant=variant,
                            normalization=norm, reg=0.7, weight_scale=5e-2, dtype=np.float64, seed=0, **extra)
    X, y, mask_seed = _kink_free_masks_and_batch(net, 6)

    def loss():  # a generator in the same state each call: the same noise and weight masks
        return net.loss(X, y, rng=np.random.default_rng(mask_seed))[0]

    _, grads = net.loss(X, y, rng=np.random.default_rng(mask_seed))
    for name, w in net.params.items():
        num = numeric_gradient(loss, w, h=1e-5, order=4)
        assert_grad_close(f"{variant} {norm} {name}", grads[name], num, NET_TOL, NET_ATOL)


@pytest.mark.parametrize("variant", ["gaussian", "dropconnect"])
def test_keep_prob_one_draws_no_random_numbers(variant):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 15)), rng.integers(10, size=8)
    gen = np.random.default_rng(9)
    before = gen.bit_generator.state
    net = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, keep_prob=1.0, variant=variant, seed=0)
    net.loss(X, y, rng=gen)
    predict_scores(net.arch, net.params, net.bn_state, X, rng=gen)
    assert gen.bit_generator.state == before


def test_mc_dropout_draws_weight_masks_for_dropconnect():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 10)), rng.integers(3, size=200)
    net = FullyConnectedNet([32], input_dim=10, num_classes=3, keep_prob=0.3, variant="dropconnect",
                            weight_scale="he", seed=0)
    deterministic = predict_scores(net.arch, net.params, net.bn_state, X)
    sample = predict_scores(net.arch, net.params, net.bn_state, X, rng=np.random.default_rng(1))
    assert not np.array_equal(sample, deterministic)
    acc, _ = mc_curve(net, X, y, [1, 20], repeats=3)
    assert len(set(acc[:, 0])) > 1  # single passes differ between repeats


def test_expectation_report_of_a_dropconnect_net_checks_its_affine_layers():
    rng = np.random.default_rng(0)
    net = FullyConnectedNet([16, 16], input_dim=10, num_classes=3, keep_prob=0.5, input_keep_prob=0.8,
                            variant="dropconnect", normalization="batchnorm", weight_scale="he", seed=0)
    report = expectation_report(net, rng.standard_normal((300, 10)).astype(np.float32), np.random.default_rng(1))
    assert [(x["layer"], x["variant"]) for x in report["layers"]] == [
        ("input", "inverted"), ("affine1", "dropconnect"), ("affine2", "dropconnect")]
    assert report["pass"], report["layers"]
    assert [r["dropout_before"] for r in report["variance_shift"]] == [True, True]


# --- max-norm -------------------------------------------------------------------------


def test_apply_max_norm_rescales_only_the_columns_above_c():
    net = FullyConnectedNet([30, 20], input_dim=12, num_classes=4, weight_scale=1.0, seed=0)
    before = {k: v.copy() for k, v in net.params.items()}
    c = 3.5
    apply_max_norm(net.arch, net.params, c)
    for i in (1, 2):
        w, w0 = net.params[f"W{i}"], before[f"W{i}"]
        norms, norms0 = (np.linalg.norm(a.astype(np.float64), axis=0) for a in (w, w0))
        assert norms.max() <= c and (norms0 > c).any()
        under = norms0 <= c * (1 - 1e-4)
        np.testing.assert_array_equal(w[:, under], w0[:, under])  # untouched
        np.testing.assert_allclose(norms[~under], c, rtol=1e-4)
        cos = np.sum(w * w0, axis=0) / (norms * norms0)
        np.testing.assert_allclose(cos, 1, rtol=1e-6)  # directions kept
    np.testing.assert_array_equal(net.params["W3"], before["W3"])  # the output layer is not constrained


def test_max_norm_holds_after_every_optimizer_step(monkeypatch):
    import dropcli.train.loop as train_mod
    from dropcli.config import Config
    from dropcli.data.load import load_data
    from dropcli.nn import streams
    from dropcli.nn.step import TrainStep

    c = 0.8
    seen = []
    real = TrainStep.__call__

    def spy(self, *args, **kw):  # runs right after the previous step
        seen.append(max(float(np.linalg.norm(self.params[f"W{i}"].astype(np.float64), axis=0).max())
                        for i in range(1, self.arch.num_layers)))
        return real(self, *args, **kw)

    monkeypatch.setattr(TrainStep, "__call__", spy)
    rngs = streams(0)
    data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 50}), rngs["data"])
    net = FullyConnectedNet([64, 64], input_dim=data.input_dim, num_classes=10, keep_prob=0.5, weight_scale="he",
                            seed=0)
    history = train_mod.fit(net, data, train_mod.TrainSettings(epochs=3, batch_size=50, learning_rate=0.05,
                                                              max_norm=c),
                            order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"])
    assert seen[0] > c  # the initial weights break the constraint ...
    assert all(m <= c for m in seen[1:])  # ... and every step leaves it satisfied
    last = history.records[-1]["diagnostics"]["max_col_norm"]
    assert last["W1"] <= c and last["W2"] <= c and last["W3"] > c


@pytest.mark.parametrize("variant", ["gaussian", "dropconnect"])
def test_same_seed_same_history_bit_for_bit(variant):
    from dropcli.config import Config
    from dropcli.data.load import load_data
    from dropcli.nn import streams
    from dropcli.train.loop import TrainSettings, fit

    def run():
        rngs = streams(0)
        data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 50}), rngs["data"])
        net = FullyConnectedNet([32, 32], input_dim=data.input_dim, num_classes=10, keep_prob=0.5, variant=variant,
                                weight_scale="he", seed=0)
        h = fit(net, data, TrainSettings(epochs=2, batch_size=50, max_norm=2.0), order_rng=rngs["order"],
                dropout_rng=rngs["dropout"], eval_rng=rngs["eval"])
        return [{k: v for k, v in r.items() if k not in ("epoch_time", "elapsed")} for r in h.records]

    assert run() == run()


def test_config_accepts_the_new_variants_and_max_norm_without_renaming_old_runs():
    from dropcli.config import VARIANTS, Config, config_hash, with_values
    from dropcli.errors import ConfigError
    from dropcli.nn.dropout import VARIANTS as LAYER_VARIANTS

    assert VARIANTS == tuple(LAYER_VARIANTS)  # the config offers exactly the variants the network has
    for variant in ("gaussian", "dropconnect"):
        assert with_values(Config(), {"dropout.variant": variant}).dropout.variant == variant
    assert Config().model.max_norm is None
    sized = Config(data={"num_train": 300, "num_val": 300})
    assert config_hash(sized) == "45803e14"  # max_norm: null is left out of the hash
    assert config_hash(with_values(sized, {"model.max_norm": 3})) != config_hash(sized)
    with pytest.raises(ConfigError, match="model.max_norm: expected a number > 0 or null"):
        with_values(Config(), {"model.max_norm": 0})


def test_kink_free_batch_still_serves_unit_dropout_nets():
    net = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, keep_prob=0.5, weight_scale=5e-2,
                            dtype=np.float64, seed=0)
    X, _ = kink_free_batch(net, 6, mask_seed=1)
    assert _kink_free_masks_and_batch(net, 6)[2] == 1 and np.array_equal(_kink_free_masks_and_batch(net, 6)[0], X)
