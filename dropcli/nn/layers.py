"""Layers as pure forward/backward pairs.

Every ``*_forward`` returns ``(out, cache)``; every ``*_backward(dout, cache)``
returns the gradient with respect to each input, in the order of the forward's
arguments. Nothing here keeps state or draws random numbers: batchnorm's running
statistics go in and come out as arguments, and mode is the explicit ``train`` flag.

``out=`` (optional, keyword) names arrays to write the results into instead of new ones:
the output for a forward, the gradient (or a tuple like the returned one, an entry None
for a new array) for a backward. The training step (``dropcli.nn.step``) passes buffers
it allocated once; the values are the same either way.

Shapes: N examples, D input features, H units.
"""

from __future__ import annotations

import numpy as np

BN_MOMENTUM = 0.9  # running = momentum * running + (1 - momentum) * batch statistic
NORM_EPS = 1e-5  # added to the variance before the square root, batchnorm and layernorm

# --- affine ---------------------------------------------------------------------------


def affine_forward(x, w, b, *, out=None):
    """out = x @ w + b.  x: (N, D), w: (D, H), b: (H,) -> out: (N, H)."""
    out = np.matmul(x, w, out=out)
    out += b
    return out, (x, w)


def affine_backward(dout, cache, *, need_dx=True, out=None):
    """dout: (N, H) -> dx: (N, D), dw: (D, H), db: (H,).

    ``need_dx=False`` skips dx's matrix product (returns None): a first layer's input
    gradient is never used.
    """
    x, w = cache
    dx, dw, db = out or (None, None, None)
    dx = np.matmul(dout, w.T, out=dx) if need_dx else None
    return dx, np.matmul(x.T, dout, out=dw), np.sum(dout, axis=0, out=db)


# --- activations --------------------------------------------------------------------
# Each caches what its derivative needs, computed from the output where that is cheaper.
# Any shape; ``out`` may be the input itself (forward) or dout (backward).


def relu_forward(x, *, out=None):
    """out = max(0, x)."""
    out = np.maximum(x, 0, out=out)
    return out, out


def relu_backward(dout, cache, *, out=None):
    out_forward = cache
    return np.multiply(dout, out_forward > 0, out=out)


def tanh_forward(x, *, out=None):
    out = np.tanh(x, out=out)
    return out, out


def tanh_backward(dout, cache, *, out=None):
    out_forward = cache
    return np.multiply(dout, 1 - out_forward * out_forward, out=out)


def sigmoid_forward(x, *, out=None):
    """Logistic sigmoid, stable for large |x|: exp is only taken of -|x|, and the result is
    1 / (1 + z) for x >= 0, z / (1 + z) below, with z = exp(-|x|)."""
    z = np.exp(-np.abs(x))
    out = np.divide(np.where(x >= 0, 1, z), 1 + z, out=out)
    return out, out


def sigmoid_backward(dout, cache, *, out=None):
    out_forward = cache
    dx = np.multiply(dout, out_forward, out=out)
    dx *= 1 - out_forward
    return dx


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}


# --- normalisation ------------------------------------------------------------------
# ``xhat_out`` may be x itself: normalising in place saves an (N, H) array, and x is then
# overwritten. In the backward passes dx (out[0]) must be another array than dout.


def _sum_of_products(a, b, axis, out=None):
    """sum(a * b, axis) of 2-d a, b in one pass, without the (N, H) product."""
    return np.einsum("ij,ij->j" if axis == 0 else "ij,ij->i", a, b, out=out)


def batchnorm_forward(
    x, gamma, beta, running_mean, running_var, *, train, momentum=BN_MOMENTUM, eps=NORM_EPS, out=None, xhat_out=None
):
    """Batch normalisation over the batch axis.

    x: (N, H); gamma, beta, running_mean, running_var: (H,).
    Train: normalise with this batch's mean and (biased) variance, and return running
    statistics moved towards them: ``running = momentum * running + (1 - momentum) * batch``.
    Test: normalise with the running statistics, which come back unchanged.

    Returns ``out, cache, (running_mean, running_var)``; the statistics passed in are not
    modified.
    """
    if train:
        mean = x.mean(axis=0)
        xc = np.subtract(x, mean, out=xhat_out)
        var = _sum_of_products(xc, xc, 0) / x.shape[0]
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        xc = np.subtract(x, running_mean, out=xhat_out)
        var = running_var
    inv_std = 1 / np.sqrt(var + eps)
    xhat = xc
    xhat *= inv_std  # xc is not needed again: normalise in place
    out = np.multiply(xhat, gamma, out=out)
    out += beta
    return out, (xhat, gamma, inv_std, train), (running_mean, running_var)


def batchnorm_backward(dout, cache, *, out=None):
    """dout: (N, H) -> dx: (N, H), dgamma: (H,), dbeta: (H,).

    Train mode uses the simplified form of the chain rule through the batch mean and
    variance: dx = gamma * inv_std * (dout - mean(dout) - xhat * mean(dout * xhat)).
    Test mode is an affine map per unit, so dx = gamma * inv_std * dout.
    """
    xhat, gamma, inv_std, train = cache
    dx, dgamma, dbeta = out or (None, None, None)
    dbeta = np.sum(dout, axis=0, out=dbeta)
    dgamma = _sum_of_products(dout, xhat, 0, out=dgamma)
    scale = gamma * inv_std
    if not train:
        return np.multiply(dout, scale, out=dx), dgamma, dbeta
    n = dout.shape[0]
    dx = np.multiply(xhat, dgamma / n, out=dx)
    np.subtract(dout, dx, out=dx)
    dx -= dbeta / n
    dx *= scale
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, *, eps=NORM_EPS, out=None, xhat_out=None):
    """Layer normalisation over the feature axis; identical in train and test.

    x: (N, H); gamma, beta: (H,) -> out: (N, H).
    """
    mean = x.mean(axis=1, keepdims=True)
    xc = np.subtract(x, mean, out=xhat_out)
    var = _sum_of_products(xc, xc, 1)[:, None] / x.shape[1]
    inv_std = 1 / np.sqrt(var + eps)
    xhat = xc
    xhat *= inv_std
    out = np.multiply(xhat, gamma, out=out)
    out += beta
    return out, (xhat, gamma, inv_std)


def layernorm_backward(dout, cache, *, out=None):
    """dout: (N, H) -> dx: (N, H), dgamma: (H,), dbeta: (H,).

    The batchnorm formula with the roles of the axes swapped: statistics are per row.
    """
    xhat, gamma, inv_std = cache
    dx, dgamma, dbeta = out or (None, None, None)
    dbeta = np.sum(dout, axis=0, out=dbeta)
    dgamma = _sum_of_products(dout, xhat, 0, out=dgamma)
    g = np.multiply(dout, gamma, out=dx)  # the gradient with respect to xhat
    h = g.shape[1]
    g_mean = g.mean(axis=1, keepdims=True)
    dx = np.subtract(g, xhat * (_sum_of_products(g, xhat, 1)[:, None] / h), out=g)
    dx -= g_mean
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


def log_softmax(scores):
    """Row-wise log-probabilities, stable for any scores: scores: (N, C) -> (N, C).

    log softmax = shifted - log(sum(exp(shifted))) with shifted = scores - row maximum, so
    a probability too small for a float still has a finite log (softmax's would be log 0).
    """
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_loss(scores, y):
    """Mean softmax cross-entropy, stable for any scores.

    scores: (N, C), y: (N,) integer labels in [0, C) -> loss (float), dscores: (N, C).
    loss = -mean(log_softmax(scores)[n, y_n]); dscores = (softmax(scores) - onehot(y)) / N.
    """
    n = scores.shape[0]
    rows = np.arange(n)
    loss = -float(np.mean(log_softmax(scores)[rows, y]))
    dscores = softmax(scores)
    dscores[rows, y] -= 1
    dscores /= n
    return loss, dscores
