"""First-order optimizers with one interface; settings kept apart from state.

    opt = make_optimizer("adam", learning_rate=1e-3)   # frozen settings
    state = opt.init(params)                            # per-parameter buffers ("slots")
    opt.step(params, grads, state, lr=...)              # updates params in place

``lr`` defaults to ``opt.learning_rate``; the training loop passes the decayed rate.
A step is ``coeffs = opt.prepare(state, lr)`` once, then ``opt.update(w, dw, slots,
coeffs)`` for each parameter: the fused training step (``dropcli.nn.step``) calls the
same two to update each layer as soon as its gradient exists. Updates work in place, in
cache-sized chunks with one scratch buffer, so a step makes no full-size temporaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

# Chunks of this many elements keep an update's working set (w, dw, its slots and a
# scratch buffer) in a core's L2 cache, so each array streams from memory once per step
# instead of once per arithmetic pass.
CHUNK = 1 << 15


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
        """Update one parameter array ``w`` in place from its gradient ``dw``."""
        flat = [a.reshape(-1) for a in (w, dw, *(slots[name] for name in self.slot_names))]
        scratch = np.empty(min(w.size, CHUNK), w.dtype)
        for lo in range(0, w.size, CHUNK):
            hi = min(w.size, lo + CHUNK)
            self.update_chunk(*(a[lo:hi] for a in flat), tmp=scratch[: hi - lo], coeffs=coeffs)

    def step(self, params, grads, state, lr=None):
        coeffs = self.prepare(state, lr)
        for k, w in params.items():
            self.update(w, grads[k], state[k], coeffs)


@dataclass(frozen=True)
class SGD(Optimizer):
    """w -= lr * dw."""

    learning_rate: float = 1e-2

    def update_chunk(self, w, dw, *, tmp, coeffs):
        np.multiply(dw, coeffs[0], out=tmp)
        w -= tmp


@dataclass(frozen=True)
class Momentum(Optimizer):
    """v = momentum * v - lr * dw; w += v  (cs231n's sgd_momentum)."""

    learning_rate: float = 1e-2
    momentum: float = 0.9
    slot_names = ("v",)

    def update_chunk(self, w, dw, v, *, tmp, coeffs):
        v *= self.momentum
        np.multiply(dw, coeffs[0], out=tmp)
        v -= tmp
        w += v


@dataclass(frozen=True)
class RMSProp(Optimizer):
    """cache = decay * cache + (1 - decay) * dw^2; w -= lr * dw / (sqrt(cache) + eps)."""

    learning_rate: float = 1e-2
    decay_rate: float = 0.99
    epsilon: float = 1e-8
    slot_names = ("cache",)

    def update_chunk(self, w, dw, cache, *, tmp, coeffs):
        np.multiply(dw, dw, out=tmp)
        cache -= tmp  # cache = decay * (cache - dw^2) + dw^2, without temporaries
        cache *= self.decay_rate
        cache += tmp
        np.sqrt(cache, out=tmp)
        tmp += self.epsilon
        np.divide(dw, tmp, out=tmp)
        tmp *= coeffs[0]
        w -= tmp


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, the same update as PyTorch's:

    m = b1 m + (1-b1) dw;  v = b2 v + (1-b2) dw^2
    w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    The slots keep M = m / (1-b1) and V = v / (1-b2), which need one pass less each
    (M = b1 M + dw), and the constants fold into two scalars; per element a step is ten
    in-place passes over cache-sized chunks.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    slot_names = ("M", "V")

    def coefficients(self, t, lr):
        b1, b2 = self.beta1, self.beta2
        # sqrt(v) / sqrt(1 - b2^t) = c * sqrt(V) with c = sqrt((1 - b2) / (1 - b2^t)), so
        # w -= [lr (1 - b1) / ((1 - b1^t) c)] * M / (sqrt(V) + eps / c).
        c = math.sqrt((1 - b2) / (1 - b2**t))
        return lr * (1 - b1) / ((1 - b1**t) * c), self.epsilon / c

    def update_chunk(self, w, dw, M, V, *, tmp, coeffs):
        scale, eps = coeffs
        M *= self.beta1
        M += dw
        np.multiply(dw, dw, out=tmp)
        V *= self.beta2
        V += tmp
        np.sqrt(V, out=tmp)
        tmp += eps
        np.divide(M, tmp, out=tmp)
        tmp *= scale
        w -= tmp


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
