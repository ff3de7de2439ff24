"""The one vocabulary of a config: every name a setting can take, written once.

The schema types its fields with these Literals; everything else that lists the names
derives them from here (the CLI's choices and help, ``dropcli data``), and tests check the
lists that cannot (the nn variants, the data loaders, docs/datasets.md) against them.
Only ``typing`` is imported, so the CLI can build its options from it without pydantic.
"""

from typing import Literal, get_args

Dataset = Literal["mnist1d", "digits", "mnist", "fashion-mnist", "cifar10", "npz"]  # loaders: dropcli.data.load
Variant = Literal["inverted", "vanilla", "gaussian", "dropconnect"]  # each is a Variant in dropcli.nn.dropout
Normalization = Literal["none", "batchnorm", "layernorm"]
Activation = Literal["relu", "tanh", "sigmoid"]
Optimizer = Literal["sgd", "momentum", "rmsprop", "adam"]
Placement = Literal["all", "last"]  # hidden dropout after every hidden layer, or after the last only

DATASETS: tuple[str, ...] = get_args(Dataset)
VARIANTS: tuple[str, ...] = get_args(Variant)
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
PLACEMENTS: tuple[str, ...] = get_args(Placement)
