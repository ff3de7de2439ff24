"""Each optimizer's update against values worked by hand."""

import numpy as np
import pytest

from dropcli.nn import make_optimizer


def one(name, steps=1, **settings):
    opt = make_optimizer(name, **settings)
    params = {"w": np.array([1.0, 2.0])}
    grads = {"w": np.array([0.5, -1.0])}
    state = opt.init(params)
    for _ in range(steps):
        opt.step(params, grads, state)
    return params["w"]


def test_sgd_step():
    np.testing.assert_allclose(one("sgd", learning_rate=0.1), [0.95, 2.1])


def test_momentum_two_steps():
    # v1 = -0.1 dw = [-0.05, 0.1];  v2 = 0.9 v1 - 0.1 dw = [-0.095, 0.19]
    np.testing.assert_allclose(one("momentum", learning_rate=0.1), [0.95, 2.1])
    np.testing.assert_allclose(one("momentum", steps=2, learning_rate=0.1), [1 - 0.05 - 0.095, 2 + 0.1 + 0.19])


def test_rmsprop_step():
    # cache = 0.01 dw^2 = [0.0025, 0.01]; dw / sqrt(cache) = [10, -10]
    np.testing.assert_allclose(one("rmsprop", learning_rate=0.1), [1 - 1.0, 2 + 1.0], atol=1e-6)


def test_adam_first_step_moves_each_weight_by_lr():
    # With bias correction, mhat = dw and vhat = dw^2 at t = 1: the step is lr * sign(dw).
    np.testing.assert_allclose(one("adam", learning_rate=0.1), [0.9, 2.1], rtol=1e-7)


def test_adam_two_steps_against_the_formula():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    dw = np.array([0.5, -1.0])
    w = np.array([1.0, 2.0])
    m = v = np.zeros(2)
    for t in (1, 2):
        m = b1 * m + (1 - b1) * dw
        v = b2 * v + (1 - b2) * dw * dw
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(one("adam", steps=2, learning_rate=lr), w, rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_defaults_and_float32_in_place(name):
    opt = make_optimizer(name)
    assert opt.learning_rate == {"sgd": 1e-2, "momentum": 1e-2, "rmsprop": 1e-2, "adam": 1e-3}[name]
    w = np.ones(4, np.float32)
    params = {"w": w}
    opt.step(params, {"w": np.ones(4, np.float32)}, opt.init(params))
    assert params["w"] is w and w.dtype == np.float32 and np.all(w < 1)


def test_settings_are_frozen_and_apart_from_state():
    opt = make_optimizer("adam")
    with pytest.raises(AttributeError):
        opt.beta1 = 0.5
    params = {"w": np.zeros(3)}
    assert opt.init(params) is not opt.init(params)


def test_unknown_optimizer_or_setting():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("adagrad")
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer("sgd", momentum=0.9)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_chunked_update_equals_the_formula_on_the_whole_array(name):
    """``update`` works chunk by chunk; over several chunks and a short last one it gives
    exactly the formula applied to the whole array at once."""
    from dropcli.nn.chunks import CHUNK

    opt, rng = make_optimizer(name), np.random.default_rng(0)
    n = 2 * CHUNK + 3
    w, dw = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    whole_w, slots, whole_slots = w.copy(), opt.slots(w), opt.slots(w)
    for t in (1, 2):
        coeffs = opt.coefficients(t, 1e-3)
        opt.update(w, dw, slots, coeffs)
        opt.update_chunk(whole_w, dw, *whole_slots.values(), tmp=np.empty(n, np.float32), coeffs=coeffs)
    np.testing.assert_array_equal(w, whole_w)
    for k in slots:
        np.testing.assert_array_equal(slots[k], whole_slots[k], err_msg=k)
