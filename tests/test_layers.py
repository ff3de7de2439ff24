"""Numeric gradient checks (float64) of every layer, and the layers' forward values."""

import numpy as np
import pytest

from dropcli.nn import layers
from dropcli.nn.dropout import dropconnect_backward, dropconnect_forward, dropout_backward, dropout_forward

from gradcheck_util import check_layer, numeric_gradient, assert_grad_close

LAYER_TOL = 1e-8


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_affine_forward_matches_hand_computed():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 1.0]])
    b = np.array([0.1, 0.2, 0.3])
    out, _ = layers.affine_forward(x, w, b)
    np.testing.assert_allclose(out, [[2.1, 4.2, 1.3], [5.1, 8.2, 1.3]])


def test_affine_gradients(rng):
    x, w, b = rng.standard_normal((10, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    dx, dw, db = layers.affine_backward(dout, layers.affine_forward(x, w, b)[1])
    check_layer("affine", lambda: layers.affine_forward(x, w, b)[0],
                {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, dout, LAYER_TOL)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_gradients(rng, name):
    fwd, bwd = layers.ACTIVATIONS[name]
    x = rng.standard_normal((8, 7))
    x[np.abs(x) < 0.01] = 0.5  # keep the stencil (+-2h) away from relu's kink
    dout = rng.standard_normal(x.shape)
    dx = bwd(dout, fwd(x)[1])
    check_layer(name, lambda: fwd(x)[0], {"x": x}, {"x": dx}, dout, LAYER_TOL)


def test_sigmoid_is_stable_for_large_inputs():
    out, _ = layers.sigmoid_forward(np.array([-1000.0, 0.0, 1000.0]))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradients(rng, train):
    n, h = 12, 5
    x = 4 * rng.standard_normal((n, h)) + 3
    gamma, beta = rng.standard_normal(h), rng.standard_normal(h)
    rm, rv = rng.standard_normal(h), rng.uniform(0.5, 2, h)
    dout = rng.standard_normal((n, h))

    def fwd():
        return layers.batchnorm_forward(x, gamma, beta, rm, rv, train=train)[0]

    _, cache, _ = layers.batchnorm_forward(x, gamma, beta, rm, rv, train=train)
    dx, dgamma, dbeta = layers.batchnorm_backward(dout, cache)
    check_layer("batchnorm", fwd, {"x": x, "gamma": gamma, "beta": beta},
                {"x": dx, "gamma": dgamma, "beta": dbeta}, dout, LAYER_TOL)


def test_batchnorm_train_normalises_and_moves_running_stats(rng):
    x = 5 * rng.standard_normal((200, 3)) + 7
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 1.0])
    rm, rv = np.zeros(3), np.ones(3)
    out, _, (rm2, rv2) = layers.batchnorm_forward(x, gamma, beta, rm, rv, train=True, momentum=0.9)
    np.testing.assert_allclose(out.mean(0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(0), gamma, rtol=1e-4)
    np.testing.assert_allclose(rm2, 0.1 * x.mean(0))
    np.testing.assert_allclose(rv2, 0.9 + 0.1 * x.var(0))
    assert np.all(rm == 0) and np.all(rv == 1), "inputs must not be modified"


def test_batchnorm_test_mode_uses_running_statistics(rng):
    x = rng.standard_normal((4, 3))
    rm, rv = np.array([1.0, -1.0, 0.5]), np.array([4.0, 0.25, 1.0])
    out, _, (rm2, rv2) = layers.batchnorm_forward(x, np.ones(3), np.zeros(3), rm, rv, train=False, eps=0)
    np.testing.assert_allclose(out, (x - rm) / np.sqrt(rv))
    assert rm2 is rm and rv2 is rv
    # A single example works in test mode and does not depend on the rest of the batch.
    one, _, _ = layers.batchnorm_forward(x[:1], np.ones(3), np.zeros(3), rm, rv, train=False, eps=0)
    np.testing.assert_array_equal(one, out[:1])


def test_layernorm_gradients(rng):
    n, h = 6, 9
    x = 3 * rng.standard_normal((n, h)) - 2
    gamma, beta = rng.standard_normal(h), rng.standard_normal(h)
    dout = rng.standard_normal((n, h))
    dx, dgamma, dbeta = layers.layernorm_backward(dout, layers.layernorm_forward(x, gamma, beta)[1])
    check_layer("layernorm", lambda: layers.layernorm_forward(x, gamma, beta)[0],
                {"x": x, "gamma": gamma, "beta": beta}, {"x": dx, "gamma": dgamma, "beta": dbeta},
                dout, LAYER_TOL)


def test_layernorm_normalises_each_row(rng):
    x = rng.standard_normal((5, 40)) * 3 + 1
    out, _ = layers.layernorm_forward(x, np.ones(40), np.zeros(40))
    np.testing.assert_allclose(out.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(1), 1, rtol=1e-4)


@pytest.mark.parametrize("variant", ["inverted", "vanilla"])
@pytest.mark.parametrize("train", [True, False])
def test_dropout_gradients_with_fixed_generator(rng, variant, train):
    x = rng.standard_normal((10, 10)) + 10
    dout = rng.standard_normal(x.shape)

    def fwd():  # the same generator state every call: the same mask
        return dropout_forward(x, 0.6, variant, train=train, rng=np.random.default_rng(7))[0]

    _, cache = dropout_forward(x, 0.6, variant, train=train, rng=np.random.default_rng(7))
    dx = dropout_backward(dout, cache)
    check_layer(f"dropout {variant}", fwd, {"x": x}, {"x": dx}, dout, LAYER_TOL)


def test_softmax_loss_value_and_gradient(rng):
    n, c = 50, 10
    scores = 0.001 * rng.standard_normal((n, c))
    y = rng.integers(c, size=n)
    loss, dscores = layers.softmax_loss(scores, y)
    assert abs(loss - np.log(c)) < 1e-2  # near-uniform scores: loss ~ log(C)
    num = numeric_gradient(lambda: layers.softmax_loss(scores, y)[0], scores)
    assert_grad_close("softmax dscores", dscores, num, 1e-7)


def test_softmax_loss_is_stable_for_huge_scores():
    scores = np.array([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]])
    loss, dscores = layers.softmax_loss(scores, np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    np.testing.assert_allclose(loss, (0 + 1e4) / 2)



def _same(name, got, want, buffers):
    """got (a result or tuple of them) equals want bit for bit, and each was written into its buffer."""
    got, want, buffers = (t if isinstance(t, tuple) else (t,) for t in (got, want, buffers))
    for i, (g, w, b) in enumerate(zip(got, want, buffers)):
        assert g is b, f"{name}: result {i} is not the buffer it was given"
        np.testing.assert_array_equal(g, w, err_msg=f"{name}: result {i}")


def test_kernels_give_the_same_values_into_buffers_and_in_place(rng):
    """The training step calls every kernel with out= buffers, in place where it can (the
    activation over its input, normalisation's xhat over the affine output, the affine,
    activation and dropout backward passes over dout). The values are the plain call's, bit
    for bit, so the gradient checks above hold for that path too."""
    x, w, b = rng.standard_normal((10, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, cache = layers.affine_forward(x, w, b, out=(buf := np.empty((10, 5))))
    _same("affine", out, layers.affine_forward(x, w, b)[0], buf)
    dout = rng.standard_normal((10, 5))
    bufs = (np.empty((10, 6)), np.empty((6, 5)), np.empty(5))
    _same("affine backward", layers.affine_backward(dout, cache, out=bufs), layers.affine_backward(dout, cache), bufs)

    for name, (fwd, bwd) in layers.ACTIVATIONS.items():
        a = rng.standard_normal((8, 7))
        want, want_cache = fwd(a)
        dout = rng.standard_normal(a.shape)
        got, cache = fwd(inplace := a.copy(), out=inplace)
        _same(name, got, want, inplace)
        _same(f"{name} backward", bwd(d := dout.copy(), cache, out=d), bwd(dout, want_cache), d)

    h = 5
    xb = 4 * rng.standard_normal((12, h)) + 3
    gamma, beta = rng.standard_normal(h), rng.standard_normal(h)
    rm, rv = rng.standard_normal(h), rng.uniform(0.5, 2, h)
    dout = rng.standard_normal((12, h))
    for train in (True, False):
        want, want_cache, want_stats = layers.batchnorm_forward(xb, gamma, beta, rm, rv, train=train)
        got, cache, stats = layers.batchnorm_forward(x2 := xb.copy(), gamma, beta, rm, rv, train=train,
                                                     out=(buf := np.empty((12, h))), xhat_out=x2)
        _same(f"batchnorm train={train}", (got, *stats), (want, *want_stats), (buf, *stats))
        bufs = (np.empty((12, h)), np.empty(h), np.empty(h))
        _same(f"batchnorm train={train} backward", layers.batchnorm_backward(dout, cache, out=bufs),
              layers.batchnorm_backward(dout, want_cache), bufs)

    want, want_cache = layers.layernorm_forward(xb, gamma, beta)
    got, cache = layers.layernorm_forward(x2 := xb.copy(), gamma, beta, out=(buf := np.empty((12, h))), xhat_out=x2)
    _same("layernorm", got, want, buf)
    bufs = (np.empty((12, h)), np.empty(h), np.empty(h))
    _same("layernorm backward", layers.layernorm_backward(dout, cache, out=bufs),
          layers.layernorm_backward(dout, want_cache), bufs)


@pytest.mark.parametrize("variant", ["inverted", "vanilla", "gaussian"])
@pytest.mark.parametrize("train", [True, False])
def test_dropout_gives_the_same_values_into_buffers_and_in_place(rng, variant, train):
    x, dout = rng.standard_normal((10, 10)) + 10, rng.standard_normal((10, 10))
    want, want_cache = dropout_forward(x, 0.6, variant, train=train, rng=np.random.default_rng(7))
    out, noise = np.empty_like(x), np.empty_like(x)
    got, cache = dropout_forward(x, 0.6, variant, train=train, rng=np.random.default_rng(7), out=out, noise_out=noise)
    if train or variant == "vanilla":  # inverted and gaussian are the identity at test time: x itself
        _same(f"dropout {variant}", got, want, out)
    if train:
        assert cache[0] is noise
    _same(f"dropout {variant} backward", dropout_backward(d := dout.copy(), cache, out=d),
          dropout_backward(dout, want_cache), d)


def test_dropconnect_gives_the_same_values_into_buffers(rng):
    x, w, b = rng.standard_normal((10, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    want, want_cache = dropconnect_forward(x, w, b, 0.5, train=True, rng=np.random.default_rng(7))
    bufs = (np.empty((10, 5)), np.empty((6, 5)), np.empty((6, 5)))
    got, cache = dropconnect_forward(x, w, b, 0.5, train=True, rng=np.random.default_rng(7), out=bufs[0],
                                     w_out=bufs[1], noise_out=bufs[2])
    _same("dropconnect", got, want, bufs[0])
    assert cache[0][1] is bufs[1] and cache[1][0] is bufs[2]
    dout = rng.standard_normal((10, 5))
    bufs = (np.empty((10, 6)), np.empty((6, 5)), np.empty(5))
    _same("dropconnect backward", dropconnect_backward(dout, cache, out=bufs),
          dropconnect_backward(dout, want_cache), bufs)
