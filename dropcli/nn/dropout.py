"""Dropout: which units are kept, and where the 1/keep_prob correction goes.

``keep_prob`` is the probability of KEEPING a unit (``drop rate = 1 - keep_prob``).
A unit's activation ``a`` is multiplied at train time by ``m * train_scale`` with
``m ~ Bernoulli(keep_prob)``, and at test time by ``test_scale``:

    variant    train_scale     test_scale   E[train output]     test output
    inverted   1 / keep_prob   1            a                   a              (cs231n, PyTorch)
    vanilla    1               keep_prob    keep_prob * a       keep_prob * a  (AlexNet, Hinton 2012)

Either way the test-time output equals the expected train-time output, which is the
point of both corrections; inverted dropout does the work at train time so that
inference code never needs to know keep_prob.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Variant:
    """Where a Bernoulli dropout variant puts its keep_prob correction."""

    name: str
    scale_at: str  # "train" (divide by keep_prob) or "test" (multiply by keep_prob)

    def train_scale(self, keep_prob: float) -> float:
        return 1.0 / keep_prob if self.scale_at == "train" else 1.0

    def test_scale(self, keep_prob: float) -> float:
        return keep_prob if self.scale_at == "test" else 1.0


VARIANTS = {"inverted": Variant("inverted", "train"), "vanilla": Variant("vanilla", "test")}


def check_keep_prob(keep_prob, name="keep_prob") -> float:
    """Return keep_prob as a float, or raise ValueError unless 0 < keep_prob <= 1."""
    if isinstance(keep_prob, bool) or not isinstance(keep_prob, (int, float, np.floating)):
        raise ValueError(f"{name} must be a number in (0, 1], got {keep_prob!r}")
    if not 0 < keep_prob <= 1:
        raise ValueError(
            f"{name} must be in (0, 1] (the probability of keeping a unit), got {keep_prob!r}"
        )
    return float(keep_prob)


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"variant must be one of {', '.join(VARIANTS)}, got {name!r}"
        ) from None


def draw_mask(shape, keep_prob, train_scale, rng, dtype):
    """A mask of ``train_scale`` (kept) and 0 (dropped) entries, in ``dtype``.

    Uniforms are drawn in ``dtype`` itself (float32 or float64), so the float32 path makes
    no float64 temporaries; ``u < keep_prob`` is a Bernoulli(keep_prob) draw.
    """
    mask = rng.random(shape, dtype=dtype)
    keep = mask < keep_prob
    np.multiply(keep, dtype.type(train_scale), out=mask)
    return mask


def dropout_forward(x, keep_prob, variant, *, train, rng=None):
    """Apply dropout to ``x`` (any shape).

    keep_prob: probability of keeping each unit; ``1`` is an exact identity that draws
    no random numbers. variant: ``"inverted"`` or ``"vanilla"``. train: mode.
    rng: a ``numpy.random.Generator``, needed only when masks are drawn.

    Returns ``out, cache``; ``cache`` holds the mask used (``None`` when none was drawn).
    """
    v = get_variant(variant)
    if keep_prob == 1:
        return x, (None, 1.0)
    if not train:
        scale = v.test_scale(keep_prob)
        return (x if scale == 1 else x * x.dtype.type(scale)), (None, scale)
    if rng is None:
        raise ValueError("dropout in train mode needs rng, a numpy.random.Generator")
    mask = draw_mask(x.shape, keep_prob, v.train_scale(keep_prob), rng, x.dtype)
    return x * mask, (mask, None)


def dropout_backward(dout, cache):
    """Gradient through the same mask (train) or the same constant scale (test)."""
    mask, scale = cache
    if mask is not None:
        return dout * mask
    return dout if scale == 1 else dout * dout.dtype.type(scale)
