"""Layers as pure forward/backward pairs.

Every ``*_forward`` returns ``(out, cache)``; every ``*_backward(dout, cache)``
returns the gradient with respect to each input, in the order of the forward's
arguments. Nothing here keeps state or draws random numbers: batchnorm's running
statistics go in and come out as arguments, and mode is the explicit ``train`` flag.

Shapes: N examples, D input features, H units.
"""

from __future__ import annotations

import numpy as np

BN_MOMENTUM = 0.9  # running = momentum * running + (1 - momentum) * batch statistic
NORM_EPS = 1e-5  # added to the variance before the square root, batchnorm and layernorm

# --- affine ---------------------------------------------------------------------------


def affine_forward(x, w, b):
    """out = x @ w + b.  x: (N, D), w: (D, H), b: (H,) -> out: (N, H)."""
    out = x @ w
    out += b
    return out, (x, w)


def affine_backward(dout, cache):
    """dout: (N, H) -> dx: (N, D), dw: (D, H), db: (H,)."""
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


# --- activations --------------------------------------------------------------------
# Each caches what its derivative needs, computed from the output where that is cheaper.


def relu_forward(x):
    """out = max(0, x), any shape."""
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    out = cache
    return dout * (out > 0)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    out = cache
    return dout * (1 - out * out)


def sigmoid_forward(x):
    """Logistic sigmoid, stable for large |x|: exp is only taken of -|x|."""
    z = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))
    return out, out


def sigmoid_backward(dout, cache):
    out = cache
    return dout * out * (1 - out)


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}


# --- normalisation ------------------------------------------------------------------


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, train, momentum=BN_MOMENTUM, eps=NORM_EPS):
    """Batch normalisation over the batch axis.

    x: (N, H); gamma, beta, running_mean, running_var: (H,).
    Train: normalise with this batch's mean and (biased) variance, and return running
    statistics moved towards them: ``running = momentum * running + (1 - momentum) * batch``.
    Test: normalise with the running statistics, which come back unchanged.

    Returns ``out, cache, (running_mean, running_var)``; the inputs are not modified.
    """
    if train:
        mean = x.mean(axis=0)
        xc = x - mean
        var = np.mean(xc * xc, axis=0)
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        xc = x - running_mean
        var = running_var
    inv_std = 1 / np.sqrt(var + eps)
    xhat = xc
    xhat *= inv_std  # xc is not needed again: normalise in place
    out = xhat * gamma
    out += beta
    return out, (xhat, gamma, inv_std, train), (running_mean, running_var)


def batchnorm_backward(dout, cache):
    """dout: (N, H) -> dx: (N, H), dgamma: (H,), dbeta: (H,).

    Train mode uses the simplified form of the chain rule through the batch mean and
    variance: dx = gamma * inv_std * (dout - mean(dout) - xhat * mean(dout * xhat)).
    Test mode is an affine map per unit, so dx = gamma * inv_std * dout.
    """
    xhat, gamma, inv_std, train = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    scale = gamma * inv_std
    if not train:
        return dout * scale, dgamma, dbeta
    n = dout.shape[0]
    dx = xhat * (dgamma / n)
    np.subtract(dout, dx, out=dx)
    dx -= dbeta / n
    dx *= scale
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, *, eps=NORM_EPS):
    """Layer normalisation over the feature axis; identical in train and test.

    x: (N, H); gamma, beta: (H,) -> out: (N, H).
    """
    mean = x.mean(axis=1, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = xc
    xhat *= inv_std
    out = xhat * gamma
    out += beta
    return out, (xhat, gamma, inv_std)


def layernorm_backward(dout, cache):
    """dout: (N, H) -> dx: (N, H), dgamma: (H,), dbeta: (H,).

    The batchnorm formula with the roles of the axes swapped: statistics are per row.
    """
    xhat, gamma, inv_std = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    g = dout * gamma  # gradient with respect to xhat
    h = g.shape[1]
    dx = xhat * (np.sum(g * xhat, axis=1, keepdims=True) / h)
    np.subtract(g, dx, out=dx)
    dx -= g.mean(axis=1, keepdims=True)
    dx *= inv_std
    return dx, dgamma, dbeta


# --- loss -----------------------------------------------------------------------------


def softmax(scores):
    """Row-wise softmax probabilities, stable for any scores.

    scores: (N, C) -> probs: (N, C), each row summing to 1. Subtracting the row maximum
    leaves the softmax unchanged and keeps exp() <= 1.
    """
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def softmax_loss(scores, y):
    """Mean softmax cross-entropy, stable for any scores.

    scores: (N, C), y: (N,) integer labels in [0, C) -> loss (float), dscores: (N, C).
    Subtracting the row maximum leaves the softmax unchanged and keeps exp() <= 1.
    """
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    sums = probs.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, y]))
    probs /= sums
    probs[rows, y] -= 1
    probs /= n
    return loss, probs
