"""The optimised training step: one minibatch's forward pass, backward pass and optimizer
update, fused, in buffers allocated once per run.

``model.loss_and_grads``, ``Optimizer.step`` and ``model.apply_max_norm`` stay the
reference (gradient checks use them; tests/test_fast_path.py holds this step to them).
``TrainStep`` computes the same function with the same operations and draws the same
random numbers in the same order; what differs is where the numbers live and when:

- activations, masks and gradients go into buffers reused by every step (``out=``), and
  the minibatch rows are gathered with ``np.take(..., out=)``;
- parameters, gradients and optimizer slots are views into one flat buffer each, laid out
  layer by layer (W, b, gamma, beta), so updating a layer is one chunked pass over a
  contiguous slice;
- each layer is updated as soon as its gradients exist (top layer first) and max-norm is
  applied to it right after, so its weights are still in cache;
- relu and unit dropout share one mask (the noise, zeroed where the relu input is <= 0):
  the backward pass through both is one multiplication;
- batchnorm and layernorm run forward and backward in place.
"""

from __future__ import annotations

import math

import numpy as np

from dropcli.nn import layers
from dropcli.nn.dropout import VARIANTS, draw_noise
from dropcli.nn.layers import BN_MOMENTUM, NORM_EPS
from dropcli.nn.model import l2_penalty, max_norm_columns
from dropcli.nn.optim import CHUNK

ALIGN = 16  # parameters start on 64-byte boundaries (16 float32s) in the flat buffers


class _Hidden:
    """The buffers of hidden layer i (rows [:n] in use). ``pre`` holds the affine output,
    normalised in place (xhat); ``post`` the normalisation's output; ``out`` what the next
    layer sees; ``grad`` dL/d(out), worked down in place to dL/d(pre); ``mask`` the dropout
    noise, for relu shared with the relu's mask; ``w_noise``, ``w_used`` DropConnect's."""

    def __init__(self, arch, i, batch, dtype):
        fan_in, width = (arch.input_dim, *arch.hidden_dims)[i - 1], arch.hidden_dims[i - 1]
        relu, dropped = arch.activation == "relu", arch.unit_keep_prob(i) < 1
        dropconnect = arch.weight_keep_prob(i) < 1

        def buffer(wanted=True, shape=(batch, width), kind=dtype):
            return np.empty(shape, kind) if wanted else None

        self.pre, self.out, self.grad = buffer(), buffer(), buffer()
        self.post = buffer(arch.normalization is not None)
        self.mask = buffer(relu or dropped)
        self.positive = buffer(relu and dropped, kind=bool)
        self.w_noise, self.w_used = buffer(dropconnect, (fan_in, width)), buffer(dropconnect, (fan_in, width))
        self.inv_std = self.act_cache = None


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
        self.flat, flat_grad = np.zeros(total, dtype), np.zeros(total, dtype)
        self.params, self.grads, self._layer_slices, offset = {}, {}, [], 0
        for layer, layer_sizes in zip(names, sizes):
            start = offset
            for k, size in zip(layer, layer_sizes):
                shape, size_k = params[k].shape, params[k].size
                self.params[k] = self.flat[offset : offset + size_k].reshape(shape)
                self.params[k][...] = params[k]
                self.grads[k] = flat_grad[offset : offset + size_k].reshape(shape)
                offset += size
            self._layer_slices.append(slice(start, offset))
        self._flat_grad = flat_grad
        self._slots = optimizer.slots(self.flat)
        self.opt_state = {"t": 0}
        dims = (arch.input_dim, *arch.hidden_dims, arch.num_classes)
        self._x = np.empty((batch_size, dims[0]), dtype)
        noisy_input = arch.input_keep_prob < 1
        self._x_noise, self._x_drop = (np.empty_like(self._x) for _ in range(2)) if noisy_input else (None, None)
        self._hidden = [_Hidden(arch, i, batch_size, dtype) for i in range(1, L)]
        self._scores = np.empty((batch_size, dims[-1]), dtype)

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
        new_state = dict(state)
        scores = self._forward(x, new_state, state, rng, n)
        loss, dscores = layers.softmax_loss(scores, y)
        loss += l2_penalty(self.arch, self.params)
        if math.isfinite(loss):
            self._backward(dscores, n, self.optimizer.prepare(self.opt_state, lr), max_norm)
        return loss, new_state

    # --- forward --------------------------------------------------------------------------

    def _forward(self, x, new_state, state, rng, n):
        arch, p = self.arch, self.params
        h = x
        if arch.input_keep_prob < 1:
            noise = draw_noise(VARIANTS[arch.unit_variant], None, arch.input_keep_prob, rng, self.dtype,
                               out=self._x_noise[:n])
            h = np.multiply(x, noise, out=self._x_drop[:n])
        self._inputs = []  # what each affine layer saw, for its weight gradient
        for i, lay in enumerate(self._hidden, start=1):
            self._inputs.append(h)
            w = p[f"W{i}"]
            if (keep := arch.weight_keep_prob(i)) < 1:  # DropConnect: the same draw as dropconnect_forward
                draw_noise(VARIANTS["inverted"], None, keep, rng, self.dtype, out=lay.w_noise)
                w = np.multiply(w, lay.w_noise, out=lay.w_used)
            a = np.matmul(h, w, out=lay.pre[:n])
            a += p[f"b{i}"]
            z = self._norm_forward(i, lay, a, new_state, state, n) if arch.normalization else a
            h = self._activation_forward(i, lay, z, rng, n)
        L = arch.num_layers
        self._inputs.append(h)
        scores = np.matmul(h, p[f"W{L}"], out=self._scores[:n])
        scores += p[f"b{L}"]
        return scores

    def _norm_forward(self, i, lay, a, new_state, state, n):
        """``layers.batchnorm_forward`` (train) or ``layernorm_forward``, in place: a becomes xhat."""
        axis = 0 if self.arch.normalization == "batchnorm" else 1
        mean = a.mean(axis=axis, keepdims=axis == 1)
        a -= mean
        var = _sum_of_products(a, a, axis) / a.shape[axis]  # the mean of squares, without a temporary
        if axis == 0:
            rm, rv = f"running_mean{i}", f"running_var{i}"
            new_state[rm] = BN_MOMENTUM * state[rm] + (1 - BN_MOMENTUM) * mean
            new_state[rv] = BN_MOMENTUM * state[rv] + (1 - BN_MOMENTUM) * var
        lay.inv_std = 1 / np.sqrt(var + NORM_EPS)
        a *= lay.inv_std
        z = np.multiply(a, self.params[f"gamma{i}"], out=lay.post[:n])
        z += self.params[f"beta{i}"]
        return z

    def _activation_forward(self, i, lay, z, rng, n):
        """Activation then unit dropout; for relu, ``mask`` ends as the shared mask."""
        keep = self.arch.unit_keep_prob(i)
        mask = None if lay.mask is None else lay.mask[:n]
        if keep < 1:
            draw_noise(VARIANTS[self.arch.unit_variant], None, keep, rng, self.dtype, out=mask)
        out = lay.out[:n]
        if self.arch.activation == "relu":
            np.maximum(z, 0, out=out)
            if keep < 1:
                out *= mask
                mask *= np.greater(z, 0, out=lay.positive[:n])
            else:
                np.greater(z, 0, out=mask)
            return out
        act, lay.act_cache = layers.ACTIVATIONS[self.arch.activation][0](z)
        return act if keep == 1 else np.multiply(act, mask, out=out)

    # --- backward and update -----------------------------------------------------------

    def _backward(self, d, n, coeffs, max_norm):
        arch, p, g = self.arch, self.params, self.grads
        for i in range(arch.num_layers, 0, -1):
            lay = self._hidden[i - 1] if i < arch.num_layers else None
            if lay is not None:
                d = self._hidden_backward(i, lay, d, n)
            h, w_used = self._inputs[i - 1], p[f"W{i}"]
            np.matmul(h.T, d, out=g[f"W{i}"])
            if lay is not None and lay.w_used is not None:  # DropConnect: through the same mask
                w_used = lay.w_used
                g[f"W{i}"] *= lay.w_noise
            np.sum(d, axis=0, out=g[f"b{i}"])
            # The input gradient of the first layer is never used: skip its matrix product.
            d = np.matmul(d, w_used.T, out=self._hidden[i - 2].grad[:n]) if i > 1 else None
            self._update_layer(i, coeffs, max_norm)

    def _hidden_backward(self, i, lay, d, n):
        """dL/d(out of hidden layer i) -> dL/d(its affine output), in place; norm grads to self.grads."""
        keep = self.arch.unit_keep_prob(i)
        if self.arch.activation == "relu":
            d *= lay.mask[:n]
        else:
            if keep < 1:
                d *= lay.mask[:n]
            d = layers.ACTIVATIONS[self.arch.activation][1](d, lay.act_cache)
        if not self.arch.normalization:
            return d
        xhat, gamma = lay.pre[:n], self.params[f"gamma{i}"]
        dbeta = np.sum(d, axis=0, out=self.grads[f"beta{i}"])
        dgamma = _sum_of_products(d, xhat, 0, out=self.grads[f"gamma{i}"])
        if self.arch.normalization == "batchnorm":  # layers.batchnorm_backward, train mode
            xhat *= dgamma / n
            np.subtract(d, xhat, out=d)
            d -= dbeta / n
            d *= gamma * lay.inv_std
            return d
        d *= gamma  # layers.layernorm_backward: d is now the gradient with respect to xhat
        h = d.shape[1]
        xhat *= _sum_of_products(d, xhat, 1) / h
        mean = d.mean(axis=1, keepdims=True)
        np.subtract(d, xhat, out=d)
        d -= mean
        d *= lay.inv_std
        return d

    def _update_layer(self, i, coeffs, max_norm):
        """L2 term, the optimizer's update of layer i's parameters, then max-norm (hidden layers)."""
        w = self.params[f"W{i}"]
        if self.arch.reg:  # dw += reg * w, in cache-sized pieces rather than one full-size temporary
            w_flat, dw_flat = w.reshape(-1), self.grads[f"W{i}"].reshape(-1)
            for lo in range(0, w.size, CHUNK):
                dw_flat[lo : lo + CHUNK] += self.arch.reg * w_flat[lo : lo + CHUNK]
        sl = self._layer_slices[i - 1]
        self.optimizer.update(self.flat[sl], self._flat_grad[sl], {k: s[sl] for k, s in self._slots.items()}, coeffs)
        if max_norm is not None and i < self.arch.num_layers:
            max_norm_columns(w, max_norm)


def _sum_of_products(a, b, axis, out=None):
    """sum(a * b, axis) for 2-d a, b in one pass (kept as a column for axis 1)."""
    if axis == 0:
        return np.einsum("ij,ij->j", a, b, out=out)
    return np.einsum("ij,ij->i", a, b)[:, None]
