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

import math
from dataclasses import dataclass

import numpy as np

from dropcli.nn import layers


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
    if given), kept where ``rng.random(shape, dtype=dtype) < keep_prob`` (see ``draw_keep``)."""
    keep = draw_keep(shape if out is None else out.shape, keep_prob, rng, dtype)
    return np.multiply(keep, dtype.type(train_scale), out=out)


def draw_keep(shape, keep_prob, rng, dtype):
    """Bernoulli(keep_prob) draws as booleans: exactly ``rng.random(shape, dtype=dtype) <
    keep_prob``, with the generator left in the same state, in about half the time.

    ``random`` makes a float32 uniform from a 32-bit word w as (w >> 8) / 2**24 and a
    float64 one from a 64-bit word as (w >> 11) / 2**53, so ``u < keep_prob`` is ``w < T``
    for an integer T; the words come straight from the bit generator (PCG64 hands out
    64-bit words, a 32-bit request takes the low half and keeps the high half for the next
    one, which ``_words32`` reproduces). Other bit generators take the plain route.
    """
    dtype = np.dtype(dtype)
    if not isinstance(rng.bit_generator, np.random.PCG64) or dtype not in (np.float32, np.float64):
        return rng.random(shape, dtype=dtype) < keep_prob
    bits, size = (24, 32) if dtype == np.float32 else (53, 64)
    # T = how many of the 2**bits uniforms are < keep_prob, with NumPy's own comparison.
    guess = math.ceil(float(keep_prob) * 2**bits)
    near = (np.arange(guess - 1, guess + 2, dtype=np.float64) / 2**bits).astype(dtype)
    threshold = guess - 1 + int(np.count_nonzero(near < keep_prob))
    n = math.prod(shape)
    words = _words32(rng.bit_generator, n) if size == 32 else rng.bit_generator.random_raw(n)
    if threshold == 2**bits:  # every uniform is below keep_prob (which rounds to 1 in dtype)
        return np.ones(shape, bool)
    return (words < threshold << (size - bits)).reshape(shape)


def _words32(bit_generator, n):
    """The next n 32-bit words of a PCG64 generator, in the order ``next_uint32`` gives them."""
    if n == 0:
        return np.zeros(0, np.uint32)
    state = bit_generator.state
    pending = state["has_uint32"]
    rest = n - pending
    raw = bit_generator.random_raw((rest + 1) // 2)
    words = raw.view(np.uint32)[:rest]  # low half first (little-endian view)
    if pending:
        words = np.concatenate(([state["uinteger"]], words)).astype(np.uint32)
    if pending or rest % 2:  # what next_uint32 would have kept for the next request
        state = bit_generator.state
        state["has_uint32"], state["uinteger"] = rest % 2, int(raw[-1] >> 32) if rest % 2 else 0
        bit_generator.state = state
    return words


def draw_gaussian(shape, keep_prob, rng, dtype, out=None):
    """Multiplicative noise ~ N(1, (1 - keep_prob) / keep_prob) in ``dtype``, drawn in place
    (into ``out`` if given)."""
    noise = rng.standard_normal(None if out is not None else shape, dtype=dtype, out=out)
    noise *= dtype.type(np.sqrt((1 - keep_prob) / keep_prob))
    noise += dtype.type(1)
    return noise


def dropout_forward(x, keep_prob, variant, *, train, rng=None):
    """Apply unit dropout to ``x`` (any shape).

    keep_prob: probability of keeping each unit; ``1`` is an exact identity that draws
    no random numbers. variant: ``"inverted"``, ``"vanilla"`` or ``"gaussian"``
    (``"dropconnect"`` masks weights: see ``dropconnect_forward``). train: mode.
    rng: a ``numpy.random.Generator``, needed only when noise is drawn.

    Returns ``out, cache``; ``cache`` holds the multiplier used (``None`` when none was drawn).
    """
    v = get_variant(variant)
    if v.masks != "units":
        raise ValueError(f"{variant} masks weights, not units: use dropconnect_forward")
    if keep_prob == 1:
        return x, (None, 1.0)
    if not train:
        scale = v.test_scale(keep_prob)
        return (x if scale == 1 else x * x.dtype.type(scale)), (None, scale)
    if rng is None:
        raise ValueError("dropout in train mode needs rng, a numpy.random.Generator")
    mask = draw_noise(v, x.shape, keep_prob, rng, x.dtype)
    return x * mask, (mask, None)


def draw_noise(variant: Variant, shape, keep_prob, rng, dtype, out=None):
    """The train-time multiplier of a unit variant (its Bernoulli mask or Gaussian noise)."""
    if variant.noise == "gaussian":
        return draw_gaussian(shape, keep_prob, rng, dtype, out)
    return draw_mask(shape, keep_prob, variant.train_scale(keep_prob), rng, dtype, out)


def dropout_backward(dout, cache):
    """Gradient through the same mask (train) or the same constant scale (test)."""
    mask, scale = cache
    if mask is not None:
        return dout * mask
    return dout if scale == 1 else dout * dout.dtype.type(scale)


def dropconnect_forward(x, w, b, keep_prob, *, train, rng=None):
    """An affine layer with DropConnect: x: (N, D), w: (D, H), b: (H,) -> out: (N, H).

    Train: ``out = x @ (M * w / keep_prob) + b`` with one mask ``M ~ Bernoulli(keep_prob)``
    of shape (D, H) per call, shared by the N rows. Test: ``x @ w + b`` (the mean weights).
    ``keep_prob = 1`` is the plain affine layer and draws nothing.
    """
    w_used, mask_cache = dropout_forward(w, keep_prob, "inverted", train=train, rng=rng)
    out, affine_cache = layers.affine_forward(x, w_used, b)
    return out, (affine_cache, mask_cache)


def dropconnect_backward(dout, cache, *, need_dx=True):
    """dout: (N, H) -> dx: (N, D) (None unless ``need_dx``), dw: (D, H), db: (H,).

    The gradient reaches w through the same mask: dw = (x.T @ dout) * M / keep_prob."""
    (x, w_used), mask_cache = cache
    dx = dout @ w_used.T if need_dx else None
    return dx, dropout_backward(x.T @ dout, mask_cache), dout.sum(axis=0)
