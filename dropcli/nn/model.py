"""The fully-connected network as pure functions over parameter dicts, and a thin holder class.

The layers and their order, and the parameters' names, are in ``dropcli.nn.architecture``.
``forward`` and ``backward`` compose the kernels of ``layers`` and ``dropout`` one hidden
layer at a time (``hidden_forward`` / ``hidden_backward``, a block in the manner of cs231n's
``layer_utils``). ``forward`` takes the batchnorm state and returns it updated; nothing is
mutated in place except by the holder class.

The training step (``dropcli.nn.step``) runs these same two functions with ``buffers``,
arrays allocated once that each kernel writes into (``out=``), and an ``after_layer`` hook
that updates a layer as soon as its gradients exist. Without them every kernel returns new
arrays; the values are the same.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dropcli.nn import layers
from dropcli.nn.architecture import Architecture, init_params
from dropcli.nn.chunks import chunks
from dropcli.nn.dropout import dropconnect_backward, dropconnect_forward, dropout_backward, dropout_forward
from dropcli.nn.seeding import streams


class HiddenCache(NamedTuple):
    """What hidden layer i computed: the values diagnostics read, then each kernel's cache."""

    x: np.ndarray  # (N, D_{i-1}) its input: what the affine layer saw
    pre_norm: np.ndarray  # (N, H) the affine output: what normalisation sees
    act_in: np.ndarray  # (N, H) what the activation saw (pre_norm itself without normalisation)
    act_out: np.ndarray  # (N, H) the activation's output: what dropout sees
    affine: tuple
    norm: tuple | None
    act: object
    drop: tuple


def hidden_forward(arch: Architecture, params, state, i, x, *, train, drop, rng=None, buffers=None):
    """Hidden layer i (1..L-1): x (N, D_{i-1}) -> out (N, H_i), HiddenCache, and the layer's
    updated batchnorm state (a dict, empty without batchnorm).

    affine (DropConnect: with masked weights) - [normalisation] - activation - [dropout].
    ``train`` is batchnorm's mode, ``drop`` whether noise is drawn (train, or Monte-Carlo
    dropout). ``buffers``: arrays to write into by name (see ``dropcli.nn.step``), or None.
    """
    buf = buffers or {}
    w, b = params[f"W{i}"], params[f"b{i}"]
    if (w_keep := arch.weight_keep_prob(i)) < 1:
        pre, affine = dropconnect_forward(x, w, b, w_keep, train=drop, rng=rng, out=buf.get("pre"),
                                          w_out=buf.get("w_used"), noise_out=buf.get("w_noise"))
    else:
        pre, affine = layers.affine_forward(x, w, b, out=buf.get("pre"))
    h, norm, new_state = pre, None, {}
    if arch.normalization == "batchnorm":
        mean, var = f"running_mean{i}", f"running_var{i}"
        h, norm, (new_state[mean], new_state[var]) = layers.batchnorm_forward(
            pre, params[f"gamma{i}"], params[f"beta{i}"], state[mean], state[var], train=train,
            out=buf.get("norm"), xhat_out=buf.get("xhat"))
    elif arch.normalization == "layernorm":
        h, norm = layers.layernorm_forward(pre, params[f"gamma{i}"], params[f"beta{i}"], out=buf.get("norm"),
                                           xhat_out=buf.get("xhat"))
    act_out, act = layers.ACTIVATIONS[arch.activation][0](h, out=buf.get("act"))
    out, drop_cache = dropout_forward(act_out, arch.unit_keep_prob(i), arch.unit_variant, train=drop, rng=rng,
                                      out=buf.get("out"), noise_out=buf.get("noise"))
    return out, HiddenCache(x, pre, h, act_out, affine, norm, act, drop_cache), new_state


def hidden_backward(arch: Architecture, i, dout, cache: HiddenCache, grads, *, buffers=None, dx_out=None):
    """dout: dL/d(output of hidden layer i) (N, H_i), worked on in place -> dL/dx (N, D_{i-1}),
    None for i = 1 (the first layer's input gradient is never used: its product is skipped).

    The layer's gradients (W{i}, b{i}, gamma{i}, beta{i}) go into ``grads``, written into the
    arrays it already holds for them, if any. ``buffers``: as ``hidden_forward``'s ("dnorm":
    dL/d(affine output)); ``dx_out``: an array for dL/dx.
    """
    buf = buffers or {}
    d = dropout_backward(dout, cache.drop, out=dout)
    d = layers.ACTIVATIONS[arch.activation][1](d, cache.act, out=d)
    if arch.normalization is not None:
        norm_backward = layers.batchnorm_backward if arch.normalization == "batchnorm" else layers.layernorm_backward
        gamma, beta = f"gamma{i}", f"beta{i}"
        d, grads[gamma], grads[beta] = norm_backward(d, cache.norm, out=(buf.get("dnorm"), grads.get(gamma),
                                                                         grads.get(beta)))
    affine_backward = dropconnect_backward if arch.weight_keep_prob(i) < 1 else layers.affine_backward
    w, b = f"W{i}", f"b{i}"
    dx, grads[w], grads[b] = affine_backward(d, cache.affine, need_dx=i > 1, out=(dx_out, grads.get(w), grads.get(b)))
    return dx


def forward(arch: Architecture, params, state, x, *, train: bool, rng=None, mc_dropout=False, buffers=None):
    """Scores for x: (N, D) -> scores (N, C), caches, new state.

    Dropout masks are drawn from ``rng`` in a fixed order (input, then hidden layers
    1..L-1: the weight mask of W{i} for DropConnect, else the unit mask after layer i), so
    generators in the same state give the same masks. ``mc_dropout`` draws
    masks in test mode too (batchnorm still uses its running statistics): one sample of
    Monte-Carlo dropout. ``caches`` is (input dropout's cache, [HiddenCache of layers
    1..L-1], the output layer's cache). ``buffers``: for each layer 0..L (0: input dropout,
    L: the scores) a dict of arrays to write into, or None.
    """
    L = arch.num_layers
    drop = train or mc_dropout
    buf = buffers or [{}] * (L + 1)
    new_state = dict(state)
    out, input_cache = dropout_forward(x, arch.input_keep_prob, arch.unit_variant, train=drop, rng=rng,
                                       out=buf[0].get("out"), noise_out=buf[0].get("noise"))
    hidden = []
    for i in range(1, L):
        out, cache, layer_state = hidden_forward(arch, params, state, i, out, train=train, drop=drop, rng=rng,
                                                 buffers=buf[i])
        hidden.append(cache)
        new_state.update(layer_state)
    scores, out_cache = layers.affine_forward(out, params[f"W{L}"], params[f"b{L}"], out=buf[L].get("out"))
    return scores, (input_cache, hidden, out_cache), new_state


def backward(arch: Architecture, params, dscores, caches, *, grads=None, buffers=None, after_layer=None):
    """Gradients of the loss for every parameter (L2 term included), keyed like params.

    Layers go top first, and ``after_layer(i)``, if given, runs as soon as layer i's
    gradients are complete (the training step updates layer i there). ``grads``: arrays to
    write the gradients into, keyed like params; ``buffers``: as ``forward``'s, where each
    hidden layer's "grad" receives dL/d(its output).
    """
    L = arch.num_layers
    grads = {} if grads is None else grads
    buf = buffers or [{}] * (L + 1)
    _, hidden, out_cache = caches

    def done(i):
        if arch.reg:
            add_l2_gradient(grads[f"W{i}"], params[f"W{i}"], arch.reg)
        if after_layer is not None:
            after_layer(i)

    d, grads[f"W{L}"], grads[f"b{L}"] = layers.affine_backward(
        dscores, out_cache, out=(buf[L - 1].get("grad"), grads.get(f"W{L}"), grads.get(f"b{L}")))
    done(L)
    for i in range(L - 1, 0, -1):
        d = hidden_backward(arch, i, d, hidden[i - 1], grads, buffers=buf[i], dx_out=buf[i - 1].get("grad"))
        done(i)
    return grads


def add_l2_gradient(dw, w, reg: float) -> None:
    """dw += reg * w, in place (dw contiguous), chunk by chunk rather than one full-size temporary."""
    dw_flat, w_flat = dw.reshape(-1), w.reshape(-1)
    for piece in chunks(w.size):
        dw_flat[piece] += reg * w_flat[piece]


def l2_penalty(arch: Architecture, params) -> float:
    """0.5 * reg * sum of squared weights (biases, gamma and beta are not regularised)."""
    if not arch.reg:
        return 0.0
    w = (params[f"W{i}"].ravel() for i in range(1, arch.num_layers + 1))
    return 0.5 * arch.reg * float(sum(np.dot(v, v) for v in w))


def loss_and_grads(arch: Architecture, params, state, x, y, *, rng=None):
    """Train-mode loss, gradients and updated state for one minibatch."""
    scores, caches, new_state = forward(arch, params, state, x, train=True, rng=rng)
    loss, dscores = layers.softmax_loss(scores, y)
    grads = backward(arch, params, dscores, caches)
    return loss + l2_penalty(arch, params), grads, new_state


def hidden_activations(arch: Architecture, params, state, x):
    """Test-mode values of each hidden layer i = 1..L-1, in order (see ``layer_values``)."""
    return layer_values(forward(arch, params, state, x, train=False)[1])


def layer_values(caches):
    """What each hidden layer of a forward pass computed, read from its caches: dicts with
    ``layer`` (i), ``in`` (what its affine layer saw), ``pre_norm`` (the affine output, what
    a normalisation layer sees), ``act_in`` (what the activation saw) and ``out`` (after the
    activation: what its dropout sees)."""
    return [{"layer": i, "in": c.x, "pre_norm": c.pre_norm, "act_in": c.act_in, "out": c.act_out}
            for i, c in enumerate(caches[1], start=1)]


def dropout_inputs(arch: Architecture, params, state, x):
    """What enters each active unit-dropout layer in test mode, in network order.

    Returns ``[(layer, keep_prob, activations)]`` with ``layer`` "input" or "hidden{i}";
    layers with keep_prob 1 (no dropout) are left out. Used by the expectation checks.
    """
    found = [("input", arch.input_keep_prob, x)] if arch.input_keep_prob < 1 else []
    for h in hidden_activations(arch, params, state, x):
        keep = arch.unit_keep_prob(h["layer"])
        if keep < 1:
            found.append((f"hidden{h['layer']}", keep, h["out"]))
    return found


def dropconnect_inputs(arch: Architecture, params, state, x):
    """For each DropConnect layer in test mode: ``[(layer, keep_prob, inputs, W, b)]`` with
    ``layer`` "affine{i}" (the weights into hidden layer i). Empty unless DropConnect."""
    if arch.variant != "dropconnect":
        return []
    return [
        (f"affine{h['layer']}", keep, h["in"], params[f"W{h['layer']}"], params[f"b{h['layer']}"])
        for h in hidden_activations(arch, params, state, x)
        if (keep := arch.weight_keep_prob(h["layer"])) < 1
    ]


def apply_max_norm(arch: Architecture, params, max_norm: float) -> None:
    """Rescale, in place, each hidden unit's incoming weight vector (a column of W1..W{L-1})
    whose norm exceeds ``max_norm`` to norm ``max_norm`` (Srivastava et al. 2014, sec. 5.1).

    Columns end a hair below max_norm (relative (D + 2) eps, 1e-4 for 784 float32 inputs)
    so that float rounding never leaves one above it; the output layer and biases are not
    constrained."""
    for i in range(1, arch.num_layers):
        max_norm_columns(params[f"W{i}"], max_norm)


def max_norm_columns(w, max_norm: float) -> None:
    """``apply_max_norm`` for one weight matrix w: (D, H), in place."""
    # Norms in w's own precision are off by at most (D + 2) eps relative (with sqrt and
    # the rescaling): aim that far below max_norm and no column ends above it.
    limit = max_norm * (1 - (w.shape[0] + 2) * np.finfo(w.dtype).eps)
    norms = np.sqrt(np.einsum("ij,ij->j", w, w))
    over = norms > limit
    if over.any():
        w[:, over] *= (limit / norms[over]).astype(w.dtype)


def predict_scores(arch: Architecture, params, state, x, *, batch_size: int = 1000, rng=None):
    """Test-mode scores for any number of rows, computed in bounded batches.

    With ``rng``, dropout masks are drawn (one Monte-Carlo dropout sample per row)."""
    parts = [
        forward(arch, params, state, x[i : i + batch_size], train=False, rng=rng, mc_dropout=rng is not None)[0]
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, arch.num_classes), x.dtype)


class FullyConnectedNet:
    """A holder for parameters and batchnorm state over the pure functions above.

    The API keeps the names of the cs231n assignment, so its numbers can be compared::

        net = FullyConnectedNet([100, 100], input_dim=64, num_classes=10, keep_prob=0.5,
                                normalization="batchnorm", dtype=np.float64, seed=0)
        scores = net.loss(X)                      # test mode: (N, C) scores
        loss, grads = net.loss(X, y, rng=rng)     # train mode; grads has the keys of params

    Unlike cs231n, ``keep_prob`` is always the probability of KEEPING a unit, and the
    dropout masks come from ``rng`` (or, if none is given, from the net's own dropout
    stream, derived from ``seed`` independently of the initial weights).
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        keep_prob=1.0,
        input_keep_prob=1.0,
        variant="inverted",
        normalization=None,
        activation="relu",
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
        placement="all",
    ):
        self.arch = Architecture(
            hidden_dims=tuple(hidden_dims) if not isinstance(hidden_dims, (str, bytes)) else hidden_dims,
            input_dim=input_dim,
            num_classes=num_classes,
            activation=activation,
            normalization=normalization,
            keep_prob=keep_prob,
            input_keep_prob=input_keep_prob,
            variant=variant,
            reg=reg,
            placement=placement,
        )
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        rngs = streams(seed)
        self.params, self.bn_state = init_params(self.arch, weight_scale, rngs["init"], self.dtype)
        self.dropout_rng = rngs["dropout"]

    # Attribute names a cs231n student will look for.
    num_layers = property(lambda self: self.arch.num_layers)
    reg = property(lambda self: self.arch.reg)
    normalization = property(lambda self: self.arch.normalization)

    def loss(self, X, y=None, rng=None):
        """Test mode without ``y``: scores (N, C). Train mode with ``y``: (loss, grads).

        Train mode moves the batchnorm running statistics, as cs231n's Solver expects.
        """
        X = np.asarray(X, dtype=self.dtype)
        if y is None:
            return forward(self.arch, self.params, self.bn_state, X, train=False)[0]
        loss, grads, self.bn_state = loss_and_grads(
            self.arch, self.params, self.bn_state, X, np.asarray(y),
            rng=self.dropout_rng if rng is None else rng,
        )
        return loss, grads

    def predict(self, X, batch_size: int = 1000):
        """Predicted class of each row of X, in test mode."""
        X = np.asarray(X, dtype=self.dtype)
        return predict_scores(self.arch, self.params, self.bn_state, X, batch_size=batch_size).argmax(1)
