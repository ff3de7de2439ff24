"""First-order optimizers with one interface; settings kept apart from state.

    opt = make_optimizer("adam", learning_rate=1e-3)   # frozen settings
    state = opt.init(params)                            # per-parameter buffers
    opt.step(params, grads, state, lr=...)              # updates params in place

``lr`` defaults to ``opt.learning_rate``; the training loop passes the decayed rate.
Updates work in place on the parameter arrays and reuse a scratch buffer per parameter,
so a step makes no full-size temporaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class SGD:
    """w -= lr * dw."""

    learning_rate: float = 1e-2

    def init(self, params):
        return {}

    def step(self, params, grads, state, lr=None):
        lr = self.learning_rate if lr is None else lr
        for k, w in params.items():
            w -= lr * grads[k]


@dataclass(frozen=True)
class Momentum:
    """v = momentum * v - lr * dw; w += v  (cs231n's sgd_momentum)."""

    learning_rate: float = 1e-2
    momentum: float = 0.9

    def init(self, params):
        return {k: {"v": np.zeros_like(w)} for k, w in params.items()}

    def step(self, params, grads, state, lr=None):
        lr = self.learning_rate if lr is None else lr
        for k, w in params.items():
            v = state[k]["v"]
            v *= self.momentum
            v -= lr * grads[k]
            w += v


@dataclass(frozen=True)
class RMSProp:
    """cache = decay * cache + (1 - decay) * dw^2; w -= lr * dw / (sqrt(cache) + eps)."""

    learning_rate: float = 1e-2
    decay_rate: float = 0.99
    epsilon: float = 1e-8

    def init(self, params):
        return {k: {"cache": np.zeros_like(w), "tmp": np.empty_like(w)} for k, w in params.items()}

    def step(self, params, grads, state, lr=None):
        lr = self.learning_rate if lr is None else lr
        for k, w in params.items():
            dw, cache, tmp = grads[k], state[k]["cache"], state[k]["tmp"]
            np.multiply(dw, dw, out=tmp)
            _lerp_into(cache, tmp, self.decay_rate)
            np.sqrt(cache, out=tmp)
            tmp += self.epsilon
            np.divide(dw, tmp, out=tmp)
            tmp *= lr
            w -= tmp


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, the same update as PyTorch's:

    m = b1 m + (1-b1) dw;  v = b2 v + (1-b2) dw^2
    w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    The state keeps M = m / (1-b1) and V = v / (1-b2), which need one pass less each
    (M = b1 M + dw), and the constants fold into two scalars; per element a step is ten
    in-place passes over cache-sized chunks.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def init(self, params):
        state = {k: {"M": np.zeros_like(w), "V": np.zeros_like(w)} for k, w in params.items()}
        state["t"] = 0
        return state

    def step(self, params, grads, state, lr=None):
        lr = self.learning_rate if lr is None else lr
        state["t"] = t = state["t"] + 1
        b1, b2 = self.beta1, self.beta2
        # sqrt(v) / sqrt(1 - b2^t) = c * sqrt(V) with c = sqrt((1 - b2) / (1 - b2^t)), so
        # w -= [lr (1 - b1) / ((1 - b1^t) c)] * M / (sqrt(V) + eps / c).
        c = math.sqrt((1 - b2) / (1 - b2**t))
        scale = lr * (1 - b1) / ((1 - b1**t) * c)
        eps = self.epsilon / c
        for k, w in params.items():
            flat = [a.reshape(-1) for a in (w, grads[k], state[k]["M"], state[k]["V"])]
            for sl, tmp in _chunks(w):
                w_, dw, M, V = (a[sl] for a in flat)
                M *= b1
                M += dw
                np.multiply(dw, dw, out=tmp)
                V *= b2
                V += tmp
                np.sqrt(V, out=tmp)
                tmp += eps
                np.divide(M, tmp, out=tmp)
                tmp *= scale
                w_ -= tmp


# Chunks of this many elements keep an update's working set (w, dw, m, v and a scratch
# buffer) in a core's L2 cache, so each array streams from memory once per step
# instead of once per arithmetic pass.
CHUNK = 1 << 15


def _chunks(w):
    """(slice, scratch) pairs covering ``w.ravel()`` in cache-sized pieces."""
    n = w.size
    scratch = np.empty(min(n, CHUNK), w.dtype)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        yield slice(lo, hi), scratch[: hi - lo]


def _lerp_into(avg, x, decay):
    """avg = decay * avg + (1 - decay) * x, in place and without temporaries."""
    avg -= x
    avg *= decay
    avg += x


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
