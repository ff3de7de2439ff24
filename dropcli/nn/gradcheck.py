"""Numeric gradients by centred differences, and the relative error used to compare them.

Use float64. With h = 1e-5 the centred difference has truncation error O(h^2) ~ 1e-10 and
round-off ~ eps |f| / h ~ 1e-11 |f|: an entry much smaller than that cannot be checked to
1e-8 relative error. The fourth-order stencil with h = 1e-3 has round-off ~ 1e-13 |f| and
truncation O(h^4) ~ 1e-12, and checks smooth layers to ~1e-9 (float32 cannot do either).
"""

from __future__ import annotations

import numpy as np


# Centred-difference stencils as sum_k w_k (f(x + k h) - f(x - k h)) / (divisor h). Order 2
# is cs231n's (f(x+h) - f(x-h)) / 2h; order 4 also cancels the h^2 error term. Both need f
# smooth within the stencil (no relu kink within k h of an input).
_STENCILS = {2: ((1,), (1.0,), 2.0), 4: ((1, 2), (8.0, -1.0), 12.0)}
DEFAULT_H = {2: 1e-5, 4: 1e-3}


def _difference(f, x, reduce, h, order):
    offsets, weights, divisor = _STENCILS[order]
    h = DEFAULT_H[order] if h is None else h
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        total = 0.0
        for k, w in zip(offsets, weights):
            x[i] = old + k * h
            pos = np.array(f(), dtype=np.float64)
            x[i] = old - k * h
            neg = np.array(f(), dtype=np.float64)
            # Subtract before reducing: outputs x[i] does not touch cancel exactly.
            total = total + w * (pos - neg)
        x[i] = old
        grad[i] = reduce(total) / (divisor * h)
    return grad


def numeric_gradient(f, x, h=None, order=2):
    """Gradient of the scalar function ``f()`` with respect to array ``x`` (changed in place
    during the evaluation and restored afterwards). Returns a float64 array shaped like x."""
    return _difference(f, x, float, h, order)


def numeric_gradient_array(f, x, dout, h=None, order=2):
    """Gradient of ``sum(f() * dout)`` with respect to ``x``: the vector-Jacobian product a
    layer's backward pass computes for upstream gradient ``dout``."""
    return _difference(f, x, lambda diff: np.sum(diff * dout), h, order)


def _entry_errors(a, b, atol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.maximum(np.abs(a - b) - atol, 0) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def rel_error(a, b, atol=0.0) -> float:
    """max over entries of (|a - b| - atol)+ / max(|a| + |b|, 1e-8).

    With ``atol=0`` this is cs231n's relative error. A small ``atol`` (the numeric
    gradient's own absolute accuracy, ~1e-9 for a loss near 1) forgives entries whose true
    gradient is zero or too small for finite differences to resolve, such as a bias
    followed by batchnorm.
    """
    return float(np.max(_entry_errors(a, b, atol), initial=0.0))


def worst_index(a, b, atol=0.0):
    """Index of the entry with the largest relative error (for failure messages)."""
    err = _entry_errors(a, b, atol)
    return np.unravel_index(int(np.argmax(err)), err.shape)
