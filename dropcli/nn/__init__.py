"""The network math: layers, dropout, the fully-connected model and optimizers."""

from dropcli.nn.architecture import Architecture
from dropcli.nn.dropout import VARIANTS, dropconnect_backward, dropconnect_forward, dropout_backward, dropout_forward
from dropcli.nn.gradcheck import numeric_gradient, numeric_gradient_array, rel_error
from dropcli.nn.model import FullyConnectedNet
from dropcli.nn.optim import OPTIMIZERS, make_optimizer
from dropcli.nn.seeding import streams

__all__ = [
    "VARIANTS",
    "Architecture",
    "FullyConnectedNet",
    "OPTIMIZERS",
    "dropconnect_backward",
    "dropconnect_forward",
    "dropout_backward",
    "dropout_forward",
    "make_optimizer",
    "numeric_gradient",
    "numeric_gradient_array",
    "rel_error",
    "streams",
]
