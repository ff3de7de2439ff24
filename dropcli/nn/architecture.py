"""The network's shape: ``Architecture`` (what fixes the function a set of parameters
computes) and its parameters' names, shapes and initial values.

For L = len(hidden_dims) + 1 layers:

    [input dropout] - {affine - [batchnorm | layernorm] - activation - [dropout]} x (L-1)
                    - affine - softmax

With ``variant="dropconnect"`` the hidden dropout moves into the weights: the affine layer
INTO each hidden layer that would have dropout after it (all of them, or only the last with
``placement="last"``) masks its weights instead (``dropout.dropconnect_forward``); no unit
of a hidden layer is dropped, and input dropout (``input_keep_prob``) stays inverted unit
dropout. The output layer's weights are never masked.

Parameters use the cs231n names: ``W1, b1, gamma1, beta1, ..., WL, bL`` with
``W{i}: (D_{i-1}, D_i)``. Batchnorm running statistics are *state*, not parameters:
``running_mean{i}, running_var{i}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropcli.nn import layers
from dropcli.nn.dropout import check_keep_prob, get_variant

NORMALIZATIONS = (None, "batchnorm", "layernorm")
WEIGHT_INITS = ("he", "xavier")
PLACEMENTS = ("all", "last")  # hidden dropout after every hidden layer, or only after the last


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
        if self.placement not in PLACEMENTS:
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
