"""The experiment config: typed, frozen and strict sections, validated by pydantic.

Every key has a default, so an empty file is a valid config::

    name: digits            # used in run folder names: [A-Za-z0-9._-], 1 to 64 characters
    seed: 0                 # the one seed every random stream is spawned from
    data:    dataset, path, num_train, num_val
    model:   hidden_dims, activation, normalization, weight_init, reg, max_norm
    dropout: variant, keep_prob, input_keep_prob, placement
    train:   optimizer, learning_rate, lr_decay, batch_size, epochs, dtype, patience
    sweep:   {dotted.key: [value, ...]}   # the grid `dropcli sweep` runs; ignored by `train`

``keep_prob`` is the probability of KEEPING a unit (1.0 = dropout off), at least 1e-6: below
that almost every unit is dropped and 1/keep_prob heads for float32's limit. The other names in
the literature (``p``, ``rate``, ``drop_prob``, ...) are refused with the equivalent value. A
numeric ``weight_init`` (the std) is at most 10: a larger one overflows a deep net's float32
activations before the first step.

The names a setting can take (datasets, variants, ...) are the Literals of ``vocabulary``.
Loading, checking and changing a config is ``load``; writing it out (dict, hash, YAML) is
``dump``; pydantic's errors become one-line messages in ``messages``.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from dropcli.config.vocabulary import Activation, Dataset, Normalization, Optimizer, Placement, Variant


@dataclass(frozen=True)
class Expect:
    """Annotated marker: how error messages describe what a field accepts."""

    text: str


class FrozenDict(dict):
    """A read-only dict, so the sweep grid of a frozen Config is immutable and hashable."""

    def _read_only(self, *args, **kwargs):
        raise TypeError("a config's sweep grid is read-only; use with_sweep()")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __hash__(self):
        return hash(frozenset(self.items()))

    def __reduce__(self):  # pickle and deepcopy without __setitem__
        return (FrozenDict, (dict(self),))


def _tuples(value: Any) -> Any:
    """YAML gives lists; a frozen config stores tuples, all the way down."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


PositiveInt = Annotated[int, at.Ge(1)]
Probability = Annotated[float, at.Gt(0), at.Le(1)]
MIN_KEEP_PROB, MAX_INIT_STD = 1e-6, 10.0  # see the module docstring
KeepProb = Annotated[float, at.Ge(MIN_KEEP_PROB), at.Le(1), Expect("a number >= 1e-6 and <= 1")]
NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


class _Section(BaseModel):
    # allow_inf_nan=False: a learning rate of .inf or a std of .nan is a typo, not an experiment
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Which dataset, and how much of it."""

    dataset: Dataset = Field(
        "digits", description="mnist1d or digits (built in), mnist, fashion-mnist, cifar10, or npz (your arrays)")
    path: str | None = Field(
        None, description="your copy of the files (folder or file); null: the cache, downloading once")
    num_train: PositiveInt | None = Field(None, description="training examples used (null: all the dataset has)")
    num_val: PositiveInt | None = Field(None, description="validation examples used (null: all the dataset has)")


class ModelConfig(_Section):
    """The fully-connected network."""

    hidden_dims: Annotated[tuple[PositiveInt, ...], at.MinLen(1), BeforeValidator(_tuples)] = (
        Field((256, 256), description="width of each hidden layer")
    )
    activation: Activation = Field("relu", description="hidden activation")
    normalization: Normalization = Field("none", description="normalization after each hidden affine layer")
    weight_init: Annotated[
        Literal["he", "xavier"] | Annotated[float, at.Gt(0), at.Le(MAX_INIT_STD)],
        Expect("he, xavier or a number > 0 and <= 10"),
    ] = Field("he", description="he, xavier, or the std of a normal init (at most 10)")
    reg: Annotated[float, at.Ge(0)] = Field(0.0, description="L2: loss += 0.5 * reg * sum(W**2)")
    max_norm: Annotated[float, at.Gt(0)] | None = Field(
        None, description="after each update, rescale each hidden unit's incoming weights to norm <= c (null: off)")


class DropoutConfig(_Section):
    """Dropout on hidden units (and optionally on the input)."""

    variant: Variant = Field(
        "inverted", description="inverted: scale by 1/keep_prob in training; vanilla: at test; "
        "gaussian: noise N(1, (1-keep_prob)/keep_prob); dropconnect: mask the weights into hidden layers"
    )
    keep_prob: KeepProb = Field(0.5, description="probability of KEEPING a hidden unit (1e-6 to 1); 1 = off")
    input_keep_prob: KeepProb = Field(1.0, description="probability of keeping an input feature (1e-6 to 1)")
    placement: Placement = Field(
        "all", description="hidden dropout after every hidden layer, or only after the last (Li et al. 2019)"
    )


class TrainConfig(_Section):
    """The optimizer and the training loop."""

    optimizer: Optimizer = Field("adam", description="update rule")
    learning_rate: Annotated[float, at.Gt(0)] = Field(1e-3, description="initial step size")
    lr_decay: Probability = Field(1.0, description="learning rate multiplier after every epoch")
    batch_size: PositiveInt = Field(100, description="examples per minibatch")
    epochs: PositiveInt = Field(50, description="passes over the training set")
    dtype: Literal["float32", "float64"] = Field("float32", description="floating point precision")
    patience: PositiveInt | None = Field(
        None, description="stop when val accuracy has not improved for this many epochs (null: train every epoch)")


SweepValues = Annotated[tuple[Any, ...], at.MinLen(1), BeforeValidator(_tuples)]


def _has_alnum(name: str) -> str:
    """'..' or '-' would name no folder: run folders drop leading and trailing dots and dashes."""
    if not any(c.isalnum() for c in name):
        raise ValueError("a name needs a letter or digit")
    return name


class Config(_Section):
    """One experiment: a run, or a sweep when ``sweep`` is not empty."""

    name: Annotated[
        str, at.MinLen(1), at.MaxLen(64), Field(pattern=NAME_PATTERN), AfterValidator(_has_alnum),
        Expect("a name of 1 to 64 characters from A-Z a-z 0-9 . _ - (at least one letter or digit)"),
    ] = Field("digits", description="run name, used in run folder names")
    seed: Annotated[int, at.Ge(0)] = Field(0, description="seed of every random stream of a run")
    data: DataConfig = Field(default_factory=DataConfig, description="the dataset")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the network")
    dropout: DropoutConfig = Field(default_factory=DropoutConfig, description="dropout")
    train: TrainConfig = Field(default_factory=TrainConfig, description="optimization")
    sweep: Annotated[dict[str, SweepValues], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict, description="grid for `dropcli sweep`: dotted key -> values"
    )


SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataConfig, "model": ModelConfig, "dropout": DropoutConfig, "train": TrainConfig}


_PATHS = tuple(f"{k}.{f}" if k in SECTIONS else k
               for k in Config.model_fields if k != "sweep"
               for f in (SECTIONS[k].model_fields if k in SECTIONS else [None]))


def config_paths() -> list[str]:
    """Every settable dotted path, in schema order: name, seed, data.dataset, ..."""
    return list(_PATHS)
