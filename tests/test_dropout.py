"""Dropout's expectations, checked with tolerances from the sample size.

Each check compares a measured mean or fraction with its prediction in units of its
standard error (see dropcli.evidence.expectation); |z| <= 4 fails a correct layer with
probability ~6e-5, and the generators are seeded, so these tests are deterministic.
"""

import numpy as np
import pytest

from dropcli.evidence.expectation import Z_TOL, check_dropout
from dropcli.nn.dropout import dropout_backward, dropout_forward


@pytest.fixture(scope="module")
def x():
    # The cs231n notebook's input: standard normal + 10, 500 x 500.
    return np.random.default_rng(231).standard_normal((500, 500)) + 10


@pytest.mark.parametrize("keep", [0.25, 0.4, 0.7])
def test_inverted_train_mean_equals_input_mean(x, keep):
    out, _ = dropout_forward(x, keep, "inverted", train=True, rng=np.random.default_rng(0))
    n = x.size
    se = np.sqrt((1 - keep) / keep * np.mean(x**2) / n)  # sd of mean(x * (m / k - 1))
    assert abs(out.mean() - x.mean()) <= Z_TOL * se


@pytest.mark.parametrize("keep", [0.25, 0.4, 0.7])
def test_vanilla_train_mean_is_keep_times_input_mean_and_test_output_is_keep_times_input(x, keep):
    out, _ = dropout_forward(x, keep, "vanilla", train=True, rng=np.random.default_rng(0))
    se = np.sqrt(keep * (1 - keep) * np.mean(x**2) / x.size)
    assert abs(out.mean() - keep * x.mean()) <= Z_TOL * se
    test_out, _ = dropout_forward(x, keep, "vanilla", train=False)
    np.testing.assert_allclose(test_out, keep * x, rtol=1e-15)


@pytest.mark.parametrize("variant", ["inverted", "vanilla"])
@pytest.mark.parametrize("keep", [0.25, 0.4, 0.7])
def test_zero_fraction_is_drop_rate(x, variant, keep):
    out, _ = dropout_forward(x, keep, variant, train=True, rng=np.random.default_rng(1))
    se = np.sqrt(keep * (1 - keep) / x.size)
    assert abs(np.mean(out == 0) - (1 - keep)) <= Z_TOL * se


@pytest.mark.parametrize("variant", ["inverted", "vanilla"])
def test_test_mode_is_deterministic_and_zeroes_nothing(x, variant):
    a, _ = dropout_forward(x, 0.5, variant, train=False)
    b, _ = dropout_forward(x, 0.5, variant, train=False)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a == 0) == 0
    if variant == "inverted":
        assert a is x  # the identity: inverted dropout costs nothing at test time


@pytest.mark.parametrize("variant", ["inverted", "vanilla"])
def test_keep_prob_one_is_an_exact_identity_without_draws(x, variant):
    gen = np.random.default_rng(0)
    state = gen.bit_generator.state
    for train in (True, False):
        out, cache = dropout_forward(x, 1.0, variant, train=train, rng=gen)
        assert out is x
        assert dropout_backward(x, cache) is x
    assert gen.bit_generator.state == state


def test_backward_uses_the_forward_mask(x):
    out, cache = dropout_forward(x, 0.5, "inverted", train=True, rng=np.random.default_rng(0))
    dx = dropout_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx == 0, out == 0)
    np.testing.assert_array_equal(dx[dx != 0], 2.0)


def test_float32_masks_stay_float32():
    x = np.ones((100, 100), np.float32)
    out, (mask, _) = dropout_forward(x, 0.5, "inverted", train=True, rng=np.random.default_rng(0))
    assert out.dtype == np.float32 and mask.dtype == np.float32


def test_train_mode_without_rng_is_an_error(x):
    with pytest.raises(ValueError, match="rng"):
        dropout_forward(x, 0.5, "inverted", train=True)


@pytest.mark.parametrize("variant", ["inverted", "vanilla"])
@pytest.mark.parametrize("keep", [0.25, 0.4, 0.7, 1.0])
def test_check_dropout_passes_for_correct_layers(x, variant, keep):
    result = check_dropout(x, keep, variant, np.random.default_rng(2))
    assert result["pass"], result
    assert result["drop_rate"] == pytest.approx(1 - keep)


def test_check_dropout_catches_the_wrong_scaling(x):
    """A layer that forgets to divide by keep_prob fails the inverted check."""
    def forgot_to_scale(x, keep_prob, variant, *, train, rng=None):
        return dropout_forward(x, keep_prob, "vanilla", train=train, rng=rng)[0], None

    result = check_dropout(x, 0.5, "inverted", np.random.default_rng(2), dropout=forgot_to_scale)
    assert not result["train_mean"]["pass"]
    assert not result["test_mean"]["pass"]
    assert not result["pass"]


@pytest.mark.parametrize("variant", ["inverted", "vanilla"])
def test_check_dropout_on_all_zero_inputs_passes_with_nothing_to_drop(variant):
    """A dead relu layer: every input is zero, so no dropped fraction can be measured."""
    result = check_dropout(np.zeros((20, 30), np.float32), 0.5, variant, np.random.default_rng(0), draws=20)
    assert result["pass"]
    assert result["dropped_fraction"]["applicable"] is False
    assert "nothing could be dropped" in result["dropped_fraction"]["note"]
    assert result["train_mean"]["pass"] and result["test_mean"]["pass"]


def test_check_dropout_catches_p_read_as_drop_rate(x):
    """The seed's bug: cs231n code that reads p as the drop rate zeroes 1 - keep."""
    def swapped(x, keep_prob, variant, *, train, rng=None):
        return dropout_forward(x, 1 - keep_prob, variant, train=train, rng=rng)[0], None

    result = check_dropout(x, 0.25, "inverted", np.random.default_rng(2), dropout=swapped)
    assert not result["dropped_fraction"]["pass"]
