"""The training step (dropcli.nn.step) against the reference: loss_and_grads, Optimizer.step
and apply_max_norm on a parameter dict. The step runs the same forward and backward, with
buffers and a per-layer update, so these hold the buffers, the flat layout, the update
order and the optimizers' chunking to the plain functions."""

import itertools

import numpy as np
import pytest

from dropcli.evidence.checks import kink_free_batch
from dropcli.nn import FullyConnectedNet, make_optimizer, numeric_gradient
from dropcli.nn.model import apply_max_norm, loss_and_grads
from dropcli.nn.step import TrainStep

from gradcheck_util import assert_grad_close

TIGHT = {"rtol": 1e-12, "atol": 1e-14}


def tiny_net(norm=None, variant="inverted", keep=0.5, dtype=np.float64, **kw):
    return FullyConnectedNet([9, 7], input_dim=5, num_classes=4, keep_prob=keep, variant=variant,
                             normalization=norm, weight_scale="he", dtype=dtype, seed=0, **kw)


def data(dtype=np.float64, n=30):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 5)).astype(dtype), rng.integers(4, size=n)


def reference_steps(net, X, y, batches, optimizer, max_norm=None, lr=1e-2):
    """loss_and_grads, Optimizer.step and apply_max_norm on copies of net's parameters."""
    params = {k: v.copy() for k, v in net.params.items()}
    state, opt_state, rng, out = dict(net.bn_state), optimizer.init(params), np.random.default_rng(5), []
    for idx in batches:
        loss, grads, state = loss_and_grads(net.arch, params, state, X[idx], y[idx], rng=rng)
        optimizer.step(params, grads, opt_state, lr=lr)
        if max_norm is not None:
            apply_max_norm(net.arch, params, max_norm)
        out.append((loss, grads, {k: v.copy() for k, v in params.items()}, state))
    return out


def fused_steps(net, X, y, batches, optimizer, max_norm=None, lr=1e-2, batch_size=8):
    step = TrainStep(net.arch, net.params, optimizer, batch_size)
    state, rng, out = dict(net.bn_state), np.random.default_rng(5), []
    for idx in batches:
        loss, state = step(X, y, idx, state, rng=rng, lr=lr, max_norm=max_norm)
        out.append((loss, {k: v.copy() for k, v in step.grads.items()},
                    {k: v.copy() for k, v in step.params.items()}, state))
    return out


def assert_same_steps(ours, theirs, tol, label):
    for t, ((l1, g1, p1, s1), (l2, g2, p2, s2)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(l1, l2, **tol, err_msg=f"{label} step {t} loss")
        assert set(g1) == set(g2) == set(p1) == set(p2)
        for k in g2:
            np.testing.assert_allclose(g1[k], g2[k], **tol, err_msg=f"{label} step {t} grad {k}")
            np.testing.assert_allclose(p1[k], p2[k], **tol, err_msg=f"{label} step {t} param {k}")
        assert set(s1) == set(s2)
        for k in s2:
            np.testing.assert_allclose(s1[k], s2[k], **tol, err_msg=f"{label} step {t} state {k}")


# Two full batches and a short last one, with rows in shuffled order.
BATCHES = [np.array([3, 17, 0, 9, 22, 5, 11, 28]), np.arange(8, 16), np.array([29, 1, 14])]


@pytest.mark.parametrize("norm,variant,keep", itertools.product(
    [None, "batchnorm", "layernorm"], ["inverted", "vanilla", "gaussian", "dropconnect"], [1.0, 0.5]))
@pytest.mark.parametrize("extras", [{}, {"max_norm": 0.8, "reg": 0.1, "input_keep_prob": 0.8}])
def test_fused_step_matches_the_reference_in_float64(norm, variant, keep, extras):
    extras = dict(extras)
    max_norm = extras.pop("max_norm", None)
    net = tiny_net(norm, variant, keep, **extras)
    X, y = data()
    opt = make_optimizer("adam")
    label = f"{norm} {variant} keep={keep} {extras} max_norm={max_norm}"
    assert_same_steps(fused_steps(net, X, y, BATCHES, opt, max_norm), reference_steps(net, X, y, BATCHES, opt, max_norm),
                      TIGHT, label)


@pytest.mark.parametrize("activation,optimizer", itertools.product(
    ["relu", "tanh", "sigmoid"], ["sgd", "momentum", "rmsprop", "adam"]))
def test_fused_step_matches_the_reference_for_every_activation_and_optimizer(activation, optimizer):
    net = tiny_net("batchnorm", activation=activation)
    X, y = data()
    opt = make_optimizer(optimizer)
    assert_same_steps(fused_steps(net, X, y, BATCHES, opt), reference_steps(net, X, y, BATCHES, opt), TIGHT,
                      f"{activation} {optimizer}")


@pytest.mark.parametrize("norm", [None, "batchnorm", "layernorm"])
def test_float32_step_matches_float64_to_float32_tolerance(norm):
    # keep_prob 1: uniforms drawn in float32 and float64 differ, so masks would differ too.
    net64 = tiny_net(norm, keep=1.0, reg=0.01)
    net32 = tiny_net(norm, keep=1.0, reg=0.01, dtype=np.float32)
    net32.params = {k: v.astype(np.float32) for k, v in net64.params.items()}
    X, y = data()
    opt = make_optimizer("sgd", learning_rate=0.1)  # Adam's first step is lr * sign(dw): too sharp to compare
    ours = fused_steps(net32, X.astype(np.float32), y, BATCHES, opt)
    theirs = fused_steps(net64, X, y, BATCHES, opt)
    assert all(g.dtype == np.float32 for g in ours[-1][1].values())
    assert_same_steps(ours, theirs, {"rtol": 1e-4, "atol": 1e-5}, f"float32 {norm}")


@pytest.mark.parametrize("norm,variant", [(None, "inverted"), ("batchnorm", "gaussian"),
                                          ("layernorm", "dropconnect")])
def test_fused_gradients_pass_a_numeric_check(norm, variant):
    net = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, keep_prob=0.5, variant=variant, normalization=norm,
                            reg=0.5, weight_scale=5e-2, dtype=np.float64, seed=0)
    X, y = kink_free_batch(net, 6, mask_seed=1)
    step = TrainStep(net.arch, net.params, make_optimizer("sgd", learning_rate=0.0), len(X))
    step(X, y, np.arange(len(X)), net.bn_state, rng=np.random.default_rng(1))
    for name, w in net.params.items():  # the net's own arrays, untouched by the step
        num = numeric_gradient(lambda: net.loss(X, y, rng=np.random.default_rng(1))[0], w, h=1e-5, order=4)
        assert_grad_close(f"{norm} {variant} {name}", step.grads[name], num, 1e-6, 5e-10)


def test_step_owns_a_copy_and_skips_the_update_on_a_non_finite_loss():
    net = tiny_net()
    X, y = data()
    before = {k: v.copy() for k, v in net.params.items()}
    step = TrainStep(net.arch, net.params, make_optimizer("adam"), 8)
    step(X, y, BATCHES[0], net.bn_state, rng=np.random.default_rng(0))
    assert all(np.array_equal(net.params[k], before[k]) for k in before)  # the net's arrays are not touched
    assert not np.array_equal(step.params["W1"], before["W1"]) and step.opt_state["t"] == 1
    after = {k: v.copy() for k, v in step.params.items()}
    X[BATCHES[1][0], 0] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        loss, _ = step(X, y, BATCHES[1], net.bn_state, rng=np.random.default_rng(0))
    assert not np.isfinite(loss) and step.opt_state["t"] == 1
    assert all(np.array_equal(step.params[k], after[k]) for k in after)


def test_batch_larger_than_the_buffers_or_wrong_params_are_refused():
    net = tiny_net()
    with pytest.raises(ValueError, match="params do not fit"):
        TrainStep(net.arch, {**net.params, "W9": np.zeros(3)}, make_optimizer("sgd"), 4)
    step = TrainStep(net.arch, net.params, make_optimizer("sgd"), 4)
    X, y = data()
    with pytest.raises(ValueError, match="does not fit"):
        step(X, y, np.arange(5), net.bn_state, rng=np.random.default_rng(0))
    for bad in ([0, 30], [-1, 2]):
        with pytest.raises(IndexError):
            step(X, y, bad, net.bn_state, rng=np.random.default_rng(0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keep", [0.5, 0.8, 1 / 3, np.float32(0.3), np.float64(0.7), 1 - 1e-9, 1e-9])
def test_masks_are_exactly_the_uniform_comparison_and_leave_the_generator_in_step(dtype, keep):
    from dropcli.nn.bernoulli import draw_keep

    for bit_generator in (np.random.PCG64, np.random.MT19937):
        ours, theirs = np.random.Generator(bit_generator(3)), np.random.Generator(bit_generator(3))
        for rng in (ours, theirs):
            rng.standard_normal(3, dtype=np.float32)  # may leave half a 64-bit word pending
        for shape in [(200, 64), (7, 9), (3,), (0,), (1,), (2, 3)]:  # odd sizes too
            np.testing.assert_array_equal(draw_keep(shape, keep, ours, dtype),
                                          theirs.random(shape, dtype=dtype) < keep, err_msg=f"{shape}")
        assert ours.random(dtype=np.float32) == theirs.random(dtype=np.float32)
        assert ours.random() == theirs.random()


def test_fit_trains_as_the_reference_loop_would():
    from dropcli.config import Config
    from dropcli.data.load import load_data
    from dropcli.nn import streams
    from dropcli.train.loop import TrainSettings, fit

    settings = TrainSettings(epochs=2, batch_size=60, lr_decay=0.5, max_norm=1.5, learning_rate=3e-3)
    nets = []
    for fused in (True, False):
        rngs = streams(0)
        data = load_data(Config().data.model_copy(update={"num_train": 150, "num_val": 50}), rngs["data"],
                         dtype=np.float64)
        net = FullyConnectedNet([32, 16], input_dim=data.input_dim, num_classes=10, keep_prob=0.5,
                                normalization="batchnorm", reg=1e-3, weight_scale="he", dtype=np.float64, seed=0)
        if fused:
            history = fit(net, data, settings, order_rng=rngs["order"], dropout_rng=rngs["dropout"],
                          eval_rng=rngs["eval"])
            assert history.best_epoch == 2  # so the net fit leaves behind is the last epoch's
            nets.append(net)
            continue
        opt = make_optimizer("adam", learning_rate=settings.learning_rate)
        state = opt.init(net.params)
        for epoch in (1, 2):  # fit's loop: a fresh permutation, the decayed rate, max-norm after each step
            order = rngs["order"].permutation(len(data.X_train))
            for lo in range(0, len(order), settings.batch_size):
                idx = order[lo : lo + settings.batch_size]
                _, grads, net.bn_state = loss_and_grads(net.arch, net.params, net.bn_state, data.X_train[idx],
                                                        data.y_train[idx], rng=rngs["dropout"])
                opt.step(net.params, grads, state, lr=settings.learning_rate * 0.5 ** (epoch - 1))
                apply_max_norm(net.arch, net.params, settings.max_norm)
        nets.append(net)
    fused, reference = nets
    for k in reference.params:
        np.testing.assert_allclose(fused.params[k], reference.params[k], rtol=1e-10, atol=1e-12, err_msg=k)
    for k in reference.bn_state:
        np.testing.assert_allclose(fused.bn_state[k], reference.bn_state[k], rtol=1e-10, err_msg=k)
