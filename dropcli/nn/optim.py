"""First-order optimizers with one interface; settings kept apart from state.

    opt = make_optimizer("adam", learning_rate=1e-3)   # frozen settings
    state = opt.init(params)                            # per-parameter buffers ("slots")
    opt.step(params, grads, state, lr=...)              # updates params in place

``lr`` defaults to ``opt.learning_rate``; the training loop passes the decayed rate.
A step is ``coeffs = opt.prepare(state, lr)`` once, then ``opt.update(w, dw, slots,
coeffs)`` for each parameter: the training step (``dropcli.nn.step``) calls the same two
to update each layer as soon as its gradient exists.

Each ``update_chunk`` is its optimizer's textbook formula, each line of it a comment over
the NumPy in-place operations that compute it, with one scratch buffer ``tmp``.
``update`` applies it chunk by chunk (``dropcli.nn.chunks``), so a step makes no
full-size temporaries and each array streams from memory once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from dropcli.nn.chunks import CHUNK, chunks


class Optimizer:
    """The interface: ``init``, ``step``; and the two halves of a step, ``prepare`` and ``update``."""

    learning_rate: float
    slot_names: tuple[str, ...] = ()

    def init(self, params):
        """Fresh state: zeroed slots for every parameter, and the step count ``t``."""
        state = {k: self.slots(w) for k, w in params.items()}
        state["t"] = 0
        return state

    def slots(self, w):
        return {name: np.zeros_like(w) for name in self.slot_names}

    def prepare(self, state, lr=None):
        """Advance the step count; return the coefficients ``update`` needs this step."""
        state["t"] += 1
        return self.coefficients(state["t"], self.learning_rate if lr is None else lr)

    def coefficients(self, t, lr):
        return (lr,)

    def update(self, w, dw, slots, coeffs):
        """Update one parameter array ``w`` (contiguous) in place from its gradient ``dw``."""
        flat = [a.reshape(-1) for a in (w, dw, *(slots[name] for name in self.slot_names))]
        scratch = np.empty(min(w.size, CHUNK), w.dtype)
        for piece in chunks(w.size):
            self.update_chunk(*(a[piece] for a in flat), tmp=scratch[: piece.stop - piece.start], coeffs=coeffs)

    def step(self, params, grads, state, lr=None):
        coeffs = self.prepare(state, lr)
        for k, w in params.items():
            self.update(w, grads[k], state[k], coeffs)


@dataclass(frozen=True)
class SGD(Optimizer):
    """w -= lr * dw."""

    learning_rate: float = 1e-2

    def update_chunk(self, w, dw, *, tmp, coeffs):
        (lr,) = coeffs
        w -= np.multiply(lr, dw, out=tmp)


@dataclass(frozen=True)
class Momentum(Optimizer):
    """v = momentum * v - lr * dw;  w += v  (cs231n's sgd_momentum)."""

    learning_rate: float = 1e-2
    momentum: float = 0.9
    slot_names = ("v",)

    def update_chunk(self, w, dw, v, *, tmp, coeffs):
        (lr,) = coeffs
        v *= self.momentum
        v -= np.multiply(lr, dw, out=tmp)
        w += v


@dataclass(frozen=True)
class RMSProp(Optimizer):
    """cache = decay * cache + (1 - decay) * dw^2;  w -= lr * dw / (sqrt(cache) + eps)."""

    learning_rate: float = 1e-2
    decay_rate: float = 0.99
    epsilon: float = 1e-8
    slot_names = ("cache",)

    def update_chunk(self, w, dw, cache, *, tmp, coeffs):
        (lr,) = coeffs
        decay = self.decay_rate
        # cache = decay * cache + (1 - decay) * dw^2
        cache *= decay
        dw2 = np.multiply(dw, dw, out=tmp)
        cache += np.multiply(1 - decay, dw2, out=tmp)
        # w -= lr * dw / (sqrt(cache) + eps)
        denom = np.sqrt(cache, out=tmp)
        denom += self.epsilon
        step = np.divide(dw, denom, out=tmp)
        step *= lr
        w -= step


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, the same update as PyTorch's:

    m = b1 * m + (1 - b1) * dw;  v = b2 * v + (1 - b2) * dw^2
    w -= lr * mhat / (sqrt(vhat) + eps)  with  mhat = m / (1 - b1^t),  vhat = v / (1 - b2^t)

    The last line is computed in the paper's own rearrangement (end of its section 2),
    w -= lr_t * m / (sqrt(v) + eps_t) with lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) and
    eps_t = eps sqrt(1 - b2^t): the same number, without a pass for mhat or vhat.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    slot_names = ("m", "v")

    def coefficients(self, t, lr):
        root = math.sqrt(1 - self.beta2**t)
        return lr * root / (1 - self.beta1**t), self.epsilon * root

    def update_chunk(self, w, dw, m, v, *, tmp, coeffs):
        lr_t, eps_t = coeffs
        b1, b2 = self.beta1, self.beta2
        # m = b1 * m + (1 - b1) * dw
        m *= b1
        m += np.multiply(1 - b1, dw, out=tmp)
        # v = b2 * v + (1 - b2) * dw^2
        v *= b2
        dw2 = np.multiply(dw, dw, out=tmp)
        v += np.multiply(1 - b2, dw2, out=tmp)
        # w -= lr_t * m / (sqrt(v) + eps_t)
        denom = np.sqrt(v, out=tmp)
        denom += eps_t
        step = np.divide(m, denom, out=tmp)
        step *= lr_t
        w -= step


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name: str, **settings):
    """The optimizer called ``name`` with the given settings (others take their defaults)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}") from None
    known = {f.name for f in fields(cls)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"{name} has no setting {', '.join(sorted(unknown))}; it has {', '.join(sorted(known))}")
    return cls(**settings)
