"""The training step: one minibatch's forward pass, backward pass and optimizer update,
in buffers allocated once per run.

It runs ``model.forward`` and ``model.backward``, the functions a reader follows and the
gradient checks test, with two additions that make it fast:

- ``buffers``: every activation, mask and gradient is written (``out=``) into arrays
  reused by every step, and the minibatch rows are gathered with ``np.take(..., out=)``.
  Normalisation works in place on the affine output (xhat overwrites it), the activation
  in place on its input, and normalisation's backward pass writes into the activation's
  array, read by then;
- parameters, gradients and optimizer slots are views into one flat buffer each, laid out
  layer by layer (W, b, gamma, beta), and ``backward``'s ``after_layer`` hook updates each
  layer as soon as its gradients exist (top layer first), one chunked pass over a
  contiguous slice, then applies max-norm to it while its weights are still in cache.

``Optimizer.step`` and ``model.apply_max_norm`` are what the update does to a whole
parameter dict; tests/test_fast_path.py holds this step to them.
"""

from __future__ import annotations

import math

import numpy as np

from dropcli.nn import layers
from dropcli.nn.model import backward, forward, l2_penalty, max_norm_columns

ALIGN = 16  # parameters start on 64-byte boundaries (16 float32s) in the flat buffers


def _buffers(arch, rows, dtype):
    """For each layer 0..L, the arrays ``forward`` and ``backward`` write into, by name (see
    ``model.hidden_forward``); a step of n rows uses their first n rows. Some names share
    an array: the kernels work in place there."""
    def rows_of(width):
        return np.empty((rows, width), dtype)

    dims = (arch.input_dim, *arch.hidden_dims, arch.num_classes)
    found = [{"out": rows_of(dims[0]), "noise": rows_of(dims[0])} if arch.input_keep_prob < 1 else {}]
    for i in range(1, arch.num_layers):
        pre = rows_of(dims[i])
        act = rows_of(dims[i]) if arch.normalization else pre  # the activation overwrites what it reads
        # backward: dL/d(affine output) goes where the activation's output was (read by then)
        layer = {"pre": pre, "xhat": pre, "norm": act, "act": act, "dnorm": act, "grad": rows_of(dims[i])}
        if arch.unit_keep_prob(i) < 1:
            layer.update(out=rows_of(dims[i]), noise=rows_of(dims[i]))
        if arch.weight_keep_prob(i) < 1:  # DropConnect's (D, H) weights and mask: not per row
            w_shape = (dims[i - 1], dims[i])
            layer.update(w_used=np.empty(w_shape, dtype), w_noise=np.empty(w_shape, dtype))
        found.append(layer)
    found.append({"out": rows_of(dims[-1])})
    return found


class TrainStep:
    """``loss, state = step(X, y, idx, state, rng=..., lr=...)``: one training step on rows
    ``idx`` of (X, y), at most ``batch_size`` of them.

    The step owns the parameters: ``step.params`` are views into its flat buffer, with the
    keys and values of the ``params`` it was built from (give them to the net). After a
    call, ``step.grads`` holds that step's gradients (L2 term included), keyed like params.
    The optimizer's state lives here too. If the loss is not finite nothing is updated.
    """

    def __init__(self, arch, params, optimizer, batch_size: int):
        self.arch, self.optimizer = arch, optimizer
        self.dtype = dtype = params["W1"].dtype
        L = arch.num_layers
        names = [[k for k in (f"W{i}", f"b{i}", f"gamma{i}", f"beta{i}") if k in params] for i in range(1, L + 1)]
        if sorted(k for layer in names for k in layer) != sorted(params):
            raise ValueError(f"params do not fit the architecture: {sorted(params)}")
        sizes = [[-(-params[k].size // ALIGN) * ALIGN for k in layer] for layer in names]
        total = sum(map(sum, sizes))
        self.flat, self._flat_grad = np.zeros(total, dtype), np.zeros(total, dtype)
        self.params, self.grads, self._layer_slices, offset = {}, {}, [], 0
        for layer, layer_sizes in zip(names, sizes):
            start = offset
            for k, size in zip(layer, layer_sizes):
                shape, size_k = params[k].shape, params[k].size
                self.params[k] = self.flat[offset : offset + size_k].reshape(shape)
                self.params[k][...] = params[k]
                self.grads[k] = self._flat_grad[offset : offset + size_k].reshape(shape)
                offset += size
            self._layer_slices.append(slice(start, offset))
        self._slots = optimizer.slots(self.flat)
        self.opt_state = {"t": 0}
        self._x = np.empty((batch_size, arch.input_dim), dtype)
        self._buffers = _buffers(arch, batch_size, dtype)
        self._views = {}  # batch rows n -> the buffers' first n rows (an epoch has one or two sizes)

    def __call__(self, X, y, idx, state, *, rng, lr=None, max_norm=None):
        """Train on rows ``idx`` of X (N, D) and y (N,); return (loss, updated batchnorm state).

        The rows are gathered into the parameters' dtype; ``lr`` defaults to the optimizer's."""
        idx = np.asarray(idx)
        n = len(idx)
        if n > len(self._x):
            raise ValueError(f"a batch of {n} rows does not fit this step's buffers ({len(self._x)} rows)")
        if n and not (0 <= idx.min() and idx.max() < len(X)):  # mode="clip" below would not catch it
            raise IndexError(f"row indices must be in [0, {len(X)})")
        x = self._x[:n]
        if X.dtype == self.dtype:
            np.take(X, idx, axis=0, out=x, mode="clip")  # "clip": out= without a buffered copy
        else:
            x[...] = X[idx]
        y = y.take(idx)
        if (buffers := self._views.get(n)) is None:  # the first n rows (DropConnect's "w_" arrays are not rows)
            buffers = self._views[n] = [{k: a if k.startswith("w_") else a[:n] for k, a in layer.items()}
                                        for layer in self._buffers]
        scores, caches, new_state = forward(self.arch, self.params, state, x, train=True, rng=rng, buffers=buffers)
        loss, dscores = layers.softmax_loss(scores, y)
        loss += l2_penalty(self.arch, self.params)
        if math.isfinite(loss):
            coeffs = self.optimizer.prepare(self.opt_state, lr)
            backward(self.arch, self.params, dscores, caches, grads=self.grads, buffers=buffers,
                     after_layer=lambda i: self._update_layer(i, coeffs, max_norm))
        return loss, new_state

    def _update_layer(self, i, coeffs, max_norm):
        """The optimizer's update of layer i's parameters, then max-norm (hidden layers)."""
        sl = self._layer_slices[i - 1]
        self.optimizer.update(self.flat[sl], self._flat_grad[sl], {k: s[sl] for k, s in self._slots.items()}, coeffs)
        if max_norm is not None and i < self.arch.num_layers:
            max_norm_columns(self.params[f"W{i}"], max_norm)
