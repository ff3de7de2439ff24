"""The fully-connected network, as pure functions plus a thin holder class.

Architecture, for L = len(hidden_dims) + 1 layers:

    [input dropout] - {affine - [batchnorm | layernorm] - activation - [dropout]} x (L-1)
                    - affine - softmax

With ``variant="dropconnect"`` the hidden dropout moves into the weights: the affine layer
INTO each hidden layer that would have dropout after it (all of them, or only the last with
``placement="last"``) masks its weights instead (``dropout.dropconnect_forward``); no unit
of a hidden layer is dropped, and input dropout (``input_keep_prob``) stays inverted unit
dropout. The output layer's weights are never masked.

Parameters use the cs231n names: ``W1, b1, gamma1, beta1, ..., WL, bL`` with
``W{i}: (D_{i-1}, D_i)``. Batchnorm running statistics are *state*, not parameters:
``running_mean{i}, running_var{i}``. ``forward`` takes the state and returns it updated;
nothing is mutated in place except by the holder class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropcli.nn import layers
from dropcli.nn.dropout import (
    check_keep_prob, dropconnect_backward, dropconnect_forward, dropout_backward, dropout_forward, get_variant,
)
from dropcli.nn.seeding import streams

NORMALIZATIONS = (None, "batchnorm", "layernorm")
WEIGHT_INITS = ("he", "xavier")


@dataclass(frozen=True)
class Architecture:
    """Everything that fixes the function a set of parameters computes."""

    hidden_dims: tuple[int, ...]
    input_dim: int
    num_classes: int
    activation: str = "relu"
    normalization: str | None = None  # None | "batchnorm" | "layernorm"
    keep_prob: float = 1.0  # hidden units
    input_keep_prob: float = 1.0
    variant: str = "inverted"
    reg: float = 0.0  # L2 on weights only: 0.5 * reg * sum(W**2)
    placement: str = "all"  # hidden dropout after every hidden layer, or only the "last"

    def __post_init__(self):
        dims = self.hidden_dims
        if (
            isinstance(dims, (str, bytes))
            or len(dims) == 0
            or not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in dims)
        ):
            raise ValueError(f"hidden_dims must be a non-empty list of positive integers, got {dims!r}")
        object.__setattr__(self, "hidden_dims", tuple(int(h) for h in dims))
        for name in ("input_dim", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.activation not in layers.ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(layers.ACTIVATIONS)}, got {self.activation!r}"
            )
        normalization = None if self.normalization == "none" else self.normalization
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be None, 'batchnorm' or 'layernorm', got {self.normalization!r}"
            )
        object.__setattr__(self, "normalization", normalization)
        object.__setattr__(self, "keep_prob", check_keep_prob(self.keep_prob, "keep_prob"))
        object.__setattr__(
            self, "input_keep_prob", check_keep_prob(self.input_keep_prob, "input_keep_prob")
        )
        get_variant(self.variant)
        if self.placement not in ("all", "last"):
            raise ValueError(f"placement must be 'all' or 'last', got {self.placement!r}")
        if not self.reg >= 0:
            raise ValueError(f"reg must be >= 0, got {self.reg!r}")

    @property
    def num_layers(self) -> int:
        return len(self.hidden_dims) + 1

    def hidden_keep_prob(self, i: int) -> float:
        """keep_prob of the dropout after hidden layer i (1 = no dropout there); for
        DropConnect, of the weights into hidden layer i."""
        return self.keep_prob if self.placement == "all" or i == self.num_layers - 1 else 1.0

    @property
    def unit_variant(self) -> str:
        """The variant of unit dropout: DropConnect nets drop input units the inverted way."""
        return "inverted" if self.variant == "dropconnect" else self.variant

    def unit_keep_prob(self, i: int) -> float:
        """keep_prob of the unit dropout after hidden layer i (1 for DropConnect nets)."""
        return 1.0 if self.variant == "dropconnect" else self.hidden_keep_prob(i)

    def weight_keep_prob(self, i: int) -> float:
        """keep_prob of the DropConnect mask on W{i} (1 = not masked)."""
        return self.hidden_keep_prob(i) if self.variant == "dropconnect" and i < self.num_layers else 1.0


def weight_std(weight_scale, fan_in: int, fan_out: int) -> float:
    """The standard deviation of a layer's initial weights."""
    if weight_scale == "he":  # keeps the variance of relu activations constant
        return float(np.sqrt(2.0 / fan_in))
    if weight_scale == "xavier":  # Glorot & Bengio 2010, normal form
        return float(np.sqrt(2.0 / (fan_in + fan_out)))
    if isinstance(weight_scale, (int, float)) and not isinstance(weight_scale, bool) and weight_scale > 0:
        return float(weight_scale)
    raise ValueError(f"weight_scale must be 'he', 'xavier' or a positive number, got {weight_scale!r}")


def init_params(arch: Architecture, weight_scale, rng: np.random.Generator, dtype=np.float32):
    """Fresh parameters and batchnorm state. Weights ~ N(0, std^2), biases 0, gamma 1, beta 0."""
    dtype = np.dtype(dtype)
    params, state = {}, {}
    dims = (arch.input_dim, *arch.hidden_dims, arch.num_classes)
    for i in range(1, arch.num_layers + 1):
        fan_in, fan_out = dims[i - 1], dims[i]
        std = weight_std(weight_scale, fan_in, fan_out)
        params[f"W{i}"] = (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)
        params[f"b{i}"] = np.zeros(fan_out, dtype)
        if i < arch.num_layers and arch.normalization is not None:
            params[f"gamma{i}"] = np.ones(fan_out, dtype)
            params[f"beta{i}"] = np.zeros(fan_out, dtype)
            if arch.normalization == "batchnorm":
                state[f"running_mean{i}"] = np.zeros(fan_out, dtype)
                state[f"running_var{i}"] = np.ones(fan_out, dtype)
    return params, state


def forward(arch: Architecture, params, state, x, *, train: bool, rng=None, mc_dropout=False):
    """Scores for x: (N, D) -> scores (N, C), caches, new state.

    Dropout masks are drawn from ``rng`` in a fixed order (input, then hidden layers
    1..L-1: the weight mask of W{i} for DropConnect, else the unit mask after layer i), so
    generators in the same state give the same masks. ``mc_dropout`` draws
    masks in test mode too (batchnorm still uses its running statistics): one sample of
    Monte-Carlo dropout.
    """
    drop = train or mc_dropout
    act_forward = layers.ACTIVATIONS[arch.activation][0]
    new_state = dict(state)
    caches = []
    out, input_cache = dropout_forward(x, arch.input_keep_prob, arch.unit_variant, train=drop, rng=rng)
    for i in range(1, arch.num_layers):
        if (w_keep := arch.weight_keep_prob(i)) < 1:  # DropConnect: one weight mask per call
            out, affine_cache = dropconnect_forward(
                out, params[f"W{i}"], params[f"b{i}"], w_keep, train=drop, rng=rng)
        else:
            out, affine_cache = layers.affine_forward(out, params[f"W{i}"], params[f"b{i}"])
        norm_cache = None
        if arch.normalization == "batchnorm":
            out, norm_cache, (new_state[f"running_mean{i}"], new_state[f"running_var{i}"]) = (
                layers.batchnorm_forward(
                    out, params[f"gamma{i}"], params[f"beta{i}"],
                    state[f"running_mean{i}"], state[f"running_var{i}"], train=train,
                )
            )
        elif arch.normalization == "layernorm":
            out, norm_cache = layers.layernorm_forward(out, params[f"gamma{i}"], params[f"beta{i}"])
        out, act_cache = act_forward(out)
        out, drop_cache = dropout_forward(out, arch.unit_keep_prob(i), arch.unit_variant, train=drop, rng=rng)
        caches.append((affine_cache, norm_cache, act_cache, drop_cache))
    L = arch.num_layers
    scores, out_cache = layers.affine_forward(out, params[f"W{L}"], params[f"b{L}"])
    return scores, (input_cache, caches, out_cache), new_state


def backward(arch: Architecture, params, dscores, caches):
    """Gradients of the loss for every parameter (L2 term included), keyed like params."""
    act_backward = layers.ACTIVATIONS[arch.activation][1]
    norm_backward = {
        "batchnorm": layers.batchnorm_backward,
        "layernorm": layers.layernorm_backward,
    }.get(arch.normalization)
    _, hidden_caches, out_cache = caches
    grads = {}
    L = arch.num_layers
    dout, grads[f"W{L}"], grads[f"b{L}"] = layers.affine_backward(dscores, out_cache)
    for i in range(L - 1, 0, -1):
        affine_cache, norm_cache, act_cache, drop_cache = hidden_caches[i - 1]
        dout = dropout_backward(dout, drop_cache)
        dout = act_backward(dout, act_cache)
        if norm_backward is not None:
            dout, grads[f"gamma{i}"], grads[f"beta{i}"] = norm_backward(dout, norm_cache)
        # The input gradient of the first layer is never used: skip its matrix product.
        if arch.weight_keep_prob(i) < 1:
            dout, grads[f"W{i}"], grads[f"b{i}"] = dropconnect_backward(dout, affine_cache, need_dx=i > 1)
        elif i == 1:
            x, _ = affine_cache
            grads["W1"], grads["b1"] = x.T @ dout, dout.sum(axis=0)
        else:
            dout, grads[f"W{i}"], grads[f"b{i}"] = layers.affine_backward(dout, affine_cache)
    if arch.reg:
        for i in range(1, L + 1):
            grads[f"W{i}"] += arch.reg * params[f"W{i}"]
    return grads


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


def eval_pass(arch: Architecture, params, state, x, *, keep=("in", "pre_norm", "out")):
    """Test-mode scores (N, C) for x, and what each hidden layer i = 1..L-1 computes, in
    order, as dicts with ``layer`` and those of ``in`` (what its affine layer sees),
    ``pre_norm`` (the affine output, what a normalization layer sees) and ``out`` (after the
    activation: what that layer's dropout sees) named in ``keep`` (arrays not kept are
    freed as the pass goes on). The scores are ``forward(..., train=False)``'s, bit for bit."""
    act_forward = layers.ACTIVATIONS[arch.activation][0]
    out = dropout_forward(x, arch.input_keep_prob, arch.unit_variant, train=False)[0]
    found = []
    for i in range(1, arch.num_layers):
        # Test-mode DropConnect uses the mean weights W itself: the plain affine layer.
        pre = layers.affine_forward(out, params[f"W{i}"], params[f"b{i}"])[0]
        layer_in, out = out, pre
        if arch.normalization == "batchnorm":
            out = layers.batchnorm_forward(
                pre, params[f"gamma{i}"], params[f"beta{i}"],
                state[f"running_mean{i}"], state[f"running_var{i}"], train=False,
            )[0]
        elif arch.normalization == "layernorm":
            out = layers.layernorm_forward(pre, params[f"gamma{i}"], params[f"beta{i}"])[0]
        out = act_forward(out)[0]
        found.append({"layer": i, **{k: v for k, v in (("in", layer_in), ("pre_norm", pre), ("out", out)) if k in keep}})
        layer_in = pre = None
        out = dropout_forward(out, arch.unit_keep_prob(i), arch.unit_variant, train=False)[0]
    L = arch.num_layers
    return layers.affine_forward(out, params[f"W{L}"], params[f"b{L}"])[0], found


def hidden_activations(arch: Architecture, params, state, x):
    """Test-mode activations of each hidden layer i = 1..L-1, in order (see ``eval_pass``)."""
    return eval_pass(arch, params, state, x)[1]


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
