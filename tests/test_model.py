"""The whole network: numeric gradient checks, API, masks and argument checking."""

import numpy as np
import pytest

from dropcli.evidence.checks import kink_free_batch
from dropcli.nn import FullyConnectedNet, numeric_gradient, rel_error

from gradcheck_util import assert_grad_close

NET_TOL = 1e-6
# The fourth-order difference at h = 1e-5 is accurate to ~eps |loss| / h ~ 1e-10 in
# absolute terms (measured: at most 1.8e-10 here). Entries whose true gradient is (near)
# zero, like a bias followed by batchnorm, cannot have a small *relative* error; a
# difference below NET_ATOL is forgiven, everything else must agree to NET_TOL.
NET_ATOL = 5e-10

CASES = [(norm, keep, variant)
         for norm in (None, "batchnorm", "layernorm")
         for keep, variant in ((1.0, "inverted"), (0.5, "inverted"), (0.5, "vanilla"))]


def small_net(norm, keep, variant, reg=0.0, seed=0, **kw):
    return FullyConnectedNet([20, 30], input_dim=15, num_classes=10, keep_prob=keep, variant=variant,
                             normalization=norm, reg=reg, weight_scale=5e-2, dtype=np.float64, seed=seed, **kw)


@pytest.mark.parametrize("norm,keep,variant", CASES)
@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_whole_net_gradients(norm, keep, variant, reg):
    net = small_net(norm, keep, variant, reg)
    X, y = kink_free_batch(net, 6, mask_seed=1)

    def loss():  # a generator in the same state each call: the same dropout masks
        return net.loss(X, y, rng=np.random.default_rng(1))[0]

    value, grads = net.loss(X, y, rng=np.random.default_rng(1))
    assert set(grads) == set(net.params)
    assert np.isfinite(value)
    for name, w in net.params.items():
        num = numeric_gradient(loss, w, h=1e-5, order=4)
        assert_grad_close(f"{norm} keep={keep} {variant} reg={reg} {name}", grads[name], num, NET_TOL, NET_ATOL)


def test_input_dropout_gradients():
    net = small_net("layernorm", 0.5, "inverted", input_keep_prob=0.8)
    X, y = kink_free_batch(net, 5, mask_seed=2)
    value, grads = net.loss(X, y, rng=np.random.default_rng(2))
    for name, w in net.params.items():
        num = numeric_gradient(lambda: net.loss(X, y, rng=np.random.default_rng(2))[0], w, h=1e-5, order=4)
        assert_grad_close(name, grads[name], num, NET_TOL, NET_ATOL)


def test_initial_loss_is_log_num_classes():
    rng = np.random.default_rng(0)
    net = FullyConnectedNet([50, 50], input_dim=30, num_classes=10, weight_scale=1e-3, dtype=np.float64, seed=0)
    loss, _ = net.loss(rng.standard_normal((100, 30)), rng.integers(10, size=100))
    assert abs(loss - np.log(10)) < 0.01


def test_l2_term_is_half_reg_sum_of_squared_weights_only():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 15)), rng.integers(10, size=4)
    plain = small_net("batchnorm", 1.0, "inverted", reg=0.0)
    reg = small_net("batchnorm", 1.0, "inverted", reg=0.7)
    expected = 0.5 * 0.7 * sum(np.sum(reg.params[k] ** 2) for k in reg.params if k.startswith("W"))
    np.testing.assert_allclose(reg.loss(X, y)[0] - plain.loss(X, y)[0], expected, rtol=1e-12)


def test_params_have_cs231n_names_and_shapes():
    net = FullyConnectedNet([100, 50], input_dim=64, num_classes=10, normalization="batchnorm", seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (64, 100), "b1": (100,), "gamma1": (100,), "beta1": (100,),
                      "W2": (100, 50), "b2": (50,), "gamma2": (50,), "beta2": (50,),
                      "W3": (50, 10), "b3": (10,)}
    assert set(net.bn_state) == {"running_mean1", "running_var1", "running_mean2", "running_var2"}
    assert all(v.dtype == np.float32 for v in net.params.values())


def test_test_mode_returns_scores_and_is_deterministic():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 15))
    net = small_net("batchnorm", 0.5, "vanilla")
    s1, s2 = net.loss(X), net.loss(X)
    assert s1.shape == (7, 10)
    np.testing.assert_array_equal(s1, s2)


def test_same_generator_state_gives_same_masks_and_different_state_different_masks():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 15)), rng.integers(10, size=8)
    net = small_net(None, 0.5, "inverted")
    a = net.loss(X, y, rng=np.random.default_rng(5))
    b = net.loss(X, y, rng=np.random.default_rng(5))
    c = net.loss(X, y, rng=np.random.default_rng(6))
    assert a[0] == b[0] and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
    assert a[0] != c[0]


def test_keep_prob_one_draws_no_random_numbers():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 15)), rng.integers(10, size=8)
    gen = np.random.default_rng(9)
    before = gen.bit_generator.state
    small_net("layernorm", 1.0, "vanilla").loss(X, y, rng=gen)
    assert gen.bit_generator.state == before


def test_dropout_does_not_change_initial_weights():
    a = small_net(None, 1.0, "inverted", seed=4)
    b = small_net(None, 0.3, "vanilla", seed=4, input_keep_prob=0.8)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_train_mode_moves_batchnorm_running_stats_and_test_mode_uses_them():
    rng = np.random.default_rng(0)
    X, y = 3 * rng.standard_normal((50, 15)) + 2, rng.integers(10, size=50)
    net = small_net("batchnorm", 1.0, "inverted")
    before = {k: v.copy() for k, v in net.bn_state.items()}
    scores_before = net.loss(X)
    net.loss(X, y)
    assert not np.array_equal(before["running_mean1"], net.bn_state["running_mean1"])
    assert not np.array_equal(scores_before, net.loss(X))


@pytest.mark.parametrize("weight_scale,std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 700)), (0.01, 0.01)])
def test_weight_init(weight_scale, std):
    net = FullyConnectedNet([300], input_dim=400, num_classes=10, weight_scale=weight_scale, dtype=np.float64, seed=0)
    w = net.params["W1"]
    # The sample std of 120,000 normals is within 1% of the true std (its se is 0.2%).
    assert abs(w.std() / std - 1) < 0.01


@pytest.mark.parametrize("kwargs,argument", [
    ({"keep_prob": 0}, "keep_prob"),
    ({"keep_prob": 1.5}, "keep_prob"),
    ({"input_keep_prob": -0.1}, "input_keep_prob"),
    ({"variant": "alexnet"}, "variant"),
    ({"normalization": "groupnorm"}, "normalization"),
    ({"activation": "gelu"}, "activation"),
    ({"hidden_dims": []}, "hidden_dims"),
    ({"hidden_dims": [10, 0]}, "hidden_dims"),
    ({"weight_scale": "lecun"}, "weight_scale"),
    ({"reg": -1.0}, "reg"),
    ({"dtype": np.int32}, "dtype"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, argument):
    args = {"hidden_dims": [10], "input_dim": 5, "num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=argument):
        FullyConnectedNet(**args)


def test_train_mode_dropout_without_rng_uses_the_nets_own_stream():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 15)), rng.integers(10, size=8)
    a, b = small_net(None, 0.5, "inverted", seed=1), small_net(None, 0.5, "inverted", seed=1)
    assert a.loss(X, y)[0] == b.loss(X, y)[0]  # same seed, same masks


def test_float32_path_stays_float32():
    rng = np.random.default_rng(0)
    net = FullyConnectedNet([32], input_dim=15, num_classes=10, keep_prob=0.5, variant="vanilla",
                            normalization="batchnorm", seed=0)
    X, y = rng.standard_normal((8, 15)).astype(np.float32), rng.integers(10, size=8)
    loss, grads = net.loss(X, y, rng=np.random.default_rng(0))
    assert all(g.dtype == np.float32 for g in grads.values())
    assert net.loss(X).dtype == np.float32
    assert all(v.dtype == np.float32 for v in net.bn_state.values())


def test_rel_error_matches_cs231n_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0
    np.testing.assert_allclose(rel_error(np.array([1.0]), np.array([1.1])), 0.1 / 2.1)


def test_the_network_offers_exactly_the_configs_vocabulary():
    """The config's Literals are the one list of names a setting can take; the network's
    tables (which build what those names mean) hold the same names, in the same order."""
    from dropcli import config
    from dropcli.nn import architecture, dropout, layers, optim

    assert tuple(dropout.VARIANTS) == config.VARIANTS
    assert tuple(layers.ACTIVATIONS) == config.ACTIVATIONS
    assert tuple(n or "none" for n in architecture.NORMALIZATIONS) == config.NORMALIZATIONS
    assert tuple(optim.OPTIMIZERS) == config.OPTIMIZERS
    assert architecture.PLACEMENTS == config.PLACEMENTS
