"""Dropout and its relatives: which noise, on what, and where the keep_prob correction goes.

``keep_prob`` (k) is the probability of KEEPING a unit (``drop rate = 1 - keep_prob``).
Unit variants multiply a unit's activation ``a`` at train time by noise with mean
``E[noise]`` and at test time by ``test_scale``:

    variant      train-time noise on a unit           E[train output]  test output
    inverted     m / k,  m ~ Bernoulli(k)             a                a          (cs231n, PyTorch)
    vanilla      m,      m ~ Bernoulli(k)             k a              k a        (AlexNet, Hinton 2012)
    gaussian     g,      g ~ N(1, (1 - k) / k)        a                a          (Srivastava et al. 2014, sec. 10)

Either way the test-time output equals the expected train-time output. Gaussian noise has
the mean and variance of inverted Bernoulli noise, ``Var[noise] = (1 - k) / k``, but drops
nothing. ``dropconnect`` (Wan et al. 2013) masks weights instead of units: an affine layer
``x @ W + b`` becomes ``x @ (M * W / k) + b`` with ``M ~ Bernoulli(k)`` of W's shape, one
mask per call (shared by every row of the minibatch, the cheap common form; Wan et al.
draw one per example), and ``x @ W + b`` at test time: the mean weights, since E[M W / k]
= W. (Wan et al. train with ``M * W`` and test with ``k W``; that is the same function
with W rescaled by k, but it changes what L2, max-norm and He/Xavier initialisation see.)
DropConnect is inverted dropout applied to the weight matrix, which is how it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropcli.nn import layers
from dropcli.nn.bernoulli import draw_keep


@dataclass(frozen=True)
class Variant:
    """A dropout variant: its noise, what it masks, where its keep_prob correction goes,
    and which quantities its expectation check predicts (see ``dropcli.evidence.expectation``)."""

    name: str
    scale_at: str  # "train" (divide by keep_prob), "test" (multiply by keep_prob) or "none"
    noise: str = "bernoulli"  # "bernoulli" or "gaussian"
    masks: str = "units"  # "units", or "weights" (DropConnect)
    predicts: tuple[str, ...] = ("train_mean", "dropped_fraction", "test_mean")

    def train_scale(self, keep_prob: float) -> float:
        return 1.0 / keep_prob if self.scale_at == "train" else 1.0

    def test_scale(self, keep_prob: float) -> float:
        return keep_prob if self.scale_at == "test" else 1.0

    # Moments of the train-time noise multiplier (per unit, or per weight for DropConnect).
    def noise_mean(self, keep_prob: float) -> float:
        return 1.0 if self.noise == "gaussian" else self.train_scale(keep_prob) * keep_prob

    def noise_var(self, keep_prob: float) -> float:
        k = keep_prob
        return (1 - k) / k if self.noise == "gaussian" else self.train_scale(k) ** 2 * k * (1 - k)

    def noise_fourth(self, keep_prob: float) -> float:
        """E[(noise - mean)^4]: 3 var^2 for a normal; s^4 k (1-k) ((1-k)^3 + k^3) for s * Bernoulli(k)."""
        k = keep_prob
        if self.noise == "gaussian":
            return 3 * self.noise_var(k) ** 2
        return self.train_scale(k) ** 4 * k * (1 - k) * ((1 - k) ** 3 + k**3)


# A Bernoulli mask's variance follows from its mean and the fraction it drops, so those are
# what the Bernoulli variants are checked on; Gaussian noise drops nothing and is checked on
# its mean and variance; DropConnect drops weights, not units, and shows its mask in the
# mean and variance of the layer's output.
VARIANTS = {
    "inverted": Variant("inverted", "train"),
    "vanilla": Variant("vanilla", "test"),
    "gaussian": Variant("gaussian", "none", noise="gaussian", predicts=("train_mean", "train_var", "test_mean")),
    "dropconnect": Variant("dropconnect", "train", masks="weights", predicts=("train_mean", "train_var", "test_mean")),
}


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


def draw_mask(shape, keep_prob, train_scale, rng, dtype, out=None):
    """A mask of ``train_scale`` (kept) and 0 (dropped) entries, in ``dtype`` (into ``out``
    if given), kept where ``rng.random(shape, dtype=dtype) < keep_prob`` (drawn by
    ``bernoulli.draw_keep``, the same decisions in about half the time)."""
    keep = draw_keep(shape if out is None else out.shape, keep_prob, rng, dtype)
    return np.multiply(keep, dtype.type(train_scale), out=out)


def draw_gaussian(shape, keep_prob, rng, dtype, out=None):
    """Multiplicative noise ~ N(1, (1 - keep_prob) / keep_prob) in ``dtype``, drawn in place
    (into ``out`` if given)."""
    noise = rng.standard_normal(None if out is not None else shape, dtype=dtype, out=out)
    noise *= dtype.type(np.sqrt((1 - keep_prob) / keep_prob))
    noise += dtype.type(1)
    return noise


def draw_noise(variant: Variant, shape, keep_prob, rng, dtype, out=None):
    """The train-time multiplier of a unit variant (its Bernoulli mask or Gaussian noise)."""
    if variant.noise == "gaussian":
        return draw_gaussian(shape, keep_prob, rng, dtype, out)
    return draw_mask(shape, keep_prob, variant.train_scale(keep_prob), rng, dtype, out)


def dropout_forward(x, keep_prob, variant, *, train, rng=None, out=None, noise_out=None):
    """Apply unit dropout to ``x`` (any shape).

    keep_prob: probability of keeping each unit; ``1`` is an exact identity that draws
    no random numbers. variant: ``"inverted"``, ``"vanilla"`` or ``"gaussian"``
    (``"dropconnect"`` masks weights: see ``dropconnect_forward``). train: mode.
    rng: a ``numpy.random.Generator``, needed only when noise is drawn.
    out, noise_out: arrays shaped like x for the result and the noise (else new ones).

    Returns ``out, cache``; ``out`` is x itself when nothing is applied, and ``cache``
    holds the multiplier used (``None`` when none was drawn).
    """
    v = get_variant(variant)
    if v.masks != "units":
        raise ValueError(f"{variant} masks weights, not units: use dropconnect_forward")
    if keep_prob == 1:
        return x, (None, 1.0)
    if not train:
        scale = v.test_scale(keep_prob)
        return (x if scale == 1 else np.multiply(x, x.dtype.type(scale), out=out)), (None, scale)
    if rng is None:
        raise ValueError("dropout in train mode needs rng, a numpy.random.Generator")
    noise = draw_noise(v, x.shape, keep_prob, rng, x.dtype, out=noise_out)
    return np.multiply(x, noise, out=out), (noise, None)


def dropout_backward(dout, cache, *, out=None):
    """Gradient through the same mask (train) or the same constant scale (test); ``out``
    may be dout itself."""
    mask, scale = cache
    if mask is not None:
        return np.multiply(dout, mask, out=out)
    return dout if scale == 1 else np.multiply(dout, dout.dtype.type(scale), out=out)


def dropconnect_forward(x, w, b, keep_prob, *, train, rng=None, out=None, w_out=None, noise_out=None):
    """An affine layer with DropConnect: x: (N, D), w: (D, H), b: (H,) -> out: (N, H).

    Train: ``out = x @ (M * w / keep_prob) + b`` with one mask ``M ~ Bernoulli(keep_prob)``
    of shape (D, H) per call, shared by the N rows. Test: ``x @ w + b`` (the mean weights).
    ``keep_prob = 1`` is the plain affine layer and draws nothing. ``w_out``, ``noise_out``:
    (D, H) arrays for the masked weights and the mask M / keep_prob.
    """
    w_used, mask_cache = dropout_forward(w, keep_prob, "inverted", train=train, rng=rng, out=w_out, noise_out=noise_out)
    out, affine_cache = layers.affine_forward(x, w_used, b, out=out)
    return out, (affine_cache, mask_cache)


def dropconnect_backward(dout, cache, *, need_dx=True, out=None):
    """dout: (N, H) -> dx: (N, D) (None unless ``need_dx``), dw: (D, H), db: (H,).

    The gradient reaches w through the same mask: dw = (x.T @ dout) * M / keep_prob."""
    affine_cache, mask_cache = cache
    dx, dw, db = layers.affine_backward(dout, affine_cache, need_dx=need_dx, out=out)
    return dx, dropout_backward(dw, mask_cache, out=dw), db
