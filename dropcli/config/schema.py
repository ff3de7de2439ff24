"""The experiment config: typed, frozen and strict, loaded from YAML.

Every key has a default, so an empty file is a valid config::

    name: digits            # used in run folder names: [A-Za-z0-9._-], 1 to 64 characters
    seed: 0                 # the one seed every random stream is spawned from
    data:    dataset, path, num_train, num_val
    model:   hidden_dims, activation, normalization, weight_init, reg, max_norm
    dropout: variant, keep_prob, input_keep_prob, placement
    train:   optimizer, learning_rate, lr_decay, batch_size, epochs, dtype
    sweep:   {dotted.key: [value, ...]}   # the grid `dropcli sweep` runs; ignored by `train`

``keep_prob`` is the probability of KEEPING a unit (1.0 = dropout off), at least 1e-6: below
that almost every unit is dropped and 1/keep_prob heads for float32's limit. The other names in
the literature (``p``, ``rate``, ``drop_prob``, ...) are refused with the equivalent value. A
numeric ``weight_init`` (the std) is at most 10: a larger one overflows a deep net's float32
activations before the first step.

Every problem is a one-line ``ConfigError`` naming where, what was expected and what was
found: ``configs/x.yaml:12: model.hidden_dims[1]: expected an integer >= 1, found -3``, or
``--set model.reg: ...`` for overrides. Lines come from the YAML node tree, walked along
the ``loc`` of pydantic's errors.

This module holds the schema and the public API. Its helpers: ``config_yaml`` (YAML text to
data and node tree, line lookup, YAML lines), ``config_overrides`` (``--set`` strings to
values) and ``config_errors`` (pydantic's errors to one-line messages, did-you-mean).
"""

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from dropcli.config.messages import QUOTE_IT, Expect, Invalid, Problem, cut, fail, path_problem, show, translate
from dropcli.config.overrides import parse_overrides, parse_sweep_items
from dropcli.config.yaml_io import line_at, parse_yaml, plain_text_at, yaml_line
from dropcli.errors import ConfigError

# ---------------------------------------------------------------- schema


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
Dataset = Literal["digits", "mnist", "fashion-mnist", "cifar10", "npz"]  # each has a loader in dropcli.data.load
VARIANTS = ("inverted", "vanilla", "gaussian", "dropconnect")  # each is a Variant in dropcli.nn.dropout
NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


class _Section(BaseModel):
    # allow_inf_nan=False: a learning rate of .inf or a std of .nan is a typo, not an experiment
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Which dataset, and how much of it."""

    dataset: Dataset = Field(
        "digits", description="digits (built in), mnist, fashion-mnist, cifar10, or npz (your arrays)")
    path: str | None = Field(
        None, description="your copy of the files (folder or file); null: the cache, downloading once")
    num_train: PositiveInt | None = Field(300, description="training examples used (null: all)")
    num_val: PositiveInt | None = Field(300, description="validation examples used (null: all)")


class ModelConfig(_Section):
    """The fully-connected network."""

    hidden_dims: Annotated[tuple[PositiveInt, ...], at.MinLen(1), BeforeValidator(_tuples)] = (
        Field((256, 256), description="width of each hidden layer")
    )
    activation: Literal["relu", "tanh", "sigmoid"] = Field("relu", description="hidden activation")
    normalization: Literal["none", "batchnorm", "layernorm"] = Field(
        "none", description="normalization after each hidden affine layer"
    )
    weight_init: Annotated[
        Literal["he", "xavier"] | Annotated[float, at.Gt(0), at.Le(MAX_INIT_STD)],
        Expect("he, xavier or a number > 0 and <= 10"),
    ] = Field("he", description="he, xavier, or the std of a normal init (at most 10)")
    reg: Annotated[float, at.Ge(0)] = Field(0.0, description="L2: loss += 0.5 * reg * sum(W**2)")
    max_norm: Annotated[float, at.Gt(0)] | None = Field(
        None, description="after each update, rescale each hidden unit's incoming weights to norm <= c (null: off)")


class DropoutConfig(_Section):
    """Dropout on hidden units (and optionally on the input)."""

    variant: Literal[VARIANTS] = Field(
        "inverted", description="inverted: scale by 1/keep_prob in training; vanilla: at test; "
        "gaussian: noise N(1, (1-keep_prob)/keep_prob); dropconnect: mask the weights into hidden layers"
    )
    keep_prob: KeepProb = Field(0.5, description="probability of KEEPING a hidden unit (1e-6 to 1); 1 = off")
    input_keep_prob: KeepProb = Field(1.0, description="probability of keeping an input feature (1e-6 to 1)")
    placement: Literal["all", "last"] = Field(
        "all", description="hidden dropout after every hidden layer, or only after the last (Li et al. 2019)"
    )


class TrainConfig(_Section):
    """The optimizer and the training loop."""

    optimizer: Literal["sgd", "momentum", "rmsprop", "adam"] = Field(
        "adam", description="update rule")
    learning_rate: Annotated[float, at.Gt(0)] = Field(1e-3, description="initial step size")
    lr_decay: Probability = Field(1.0, description="learning rate multiplier after every epoch")
    batch_size: PositiveInt = Field(100, description="examples per minibatch")
    epochs: PositiveInt = Field(50, description="passes over the training set")
    dtype: Literal["float32", "float64"] = Field("float32", description="floating point precision")


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


def get_value(config: Config, path: str) -> Any:
    """The value at a dotted path, e.g. ``get_value(config, "dropout.keep_prob")``."""
    if path not in _PATHS:
        raise ConfigError(f"{cut(path)}: {path_problem(path, None, 'set')}")
    return functools.reduce(getattr, path.split("."), config)


def run_config(config: Config) -> Config:
    """The resolved config of one run: the sweep grid emptied."""
    return config.model_copy(update={"sweep": FrozenDict()})


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain JSON-able data (lists, not tuples), sections in schema order."""
    return config.model_dump(mode="json")


# Settings added after run folders existed, with the default that means "as before": left out
# of the hash while they hold it, so that adding a setting renames no existing run.
_HASH_NEUTRAL = {("model", "max_norm"): None}


def config_hash(config: Config) -> str:
    """8 hex chars of sha256 over the canonical JSON of the run config (seed and name included)."""
    data = config_to_dict(run_config(config))
    for (section, key), default in _HASH_NEUTRAL.items():
        if data[section].get(key, default) == default:
            data[section].pop(key, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def json_schema() -> dict[str, Any]:
    """The JSON schema of a config file (for editors), sweep keys limited to valid paths."""
    schema = Config.model_json_schema()
    schema["properties"]["sweep"]["propertyNames"] = {"enum": config_paths()}
    return schema


# ---------------------------------------------------------------- loading


def load_config(path: str | os.PathLike) -> Config:
    """Read, check and resolve a YAML config file; raise a one-line ConfigError if invalid."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not a UTF-8 text file") from None
    except OSError as error:
        raise ConfigError(f"{name}: cannot read the config file ({error.strerror})") from None
    return load_config_text(text, name)


@functools.cache
def default_config() -> Config:
    """The built-in default (digits), packaged as dropcli/config/default.yaml."""
    text = resources.files("dropcli.config").joinpath("default.yaml").read_text("utf-8")
    return load_config_text(text, "dropcli/config/default.yaml")


def load_config_text(text: str, name: str) -> Config:
    """Check and resolve a config given as YAML text; ``name`` is where errors say it is from."""
    data, root = parse_yaml(text, name)
    if data is None:  # an empty file (or only comments): all defaults
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}:{root.start_mark.line + 1}: expected a mapping of config keys "
                          f"(name, seed, data, ...) at the top level, found {show(data)}")
    # `model:` with everything under it commented out means the defaults
    data = {k: {} if v is None and k in (*SECTIONS, "sweep") else v for k, v in data.items()}
    try:
        return _validate(data)
    except Invalid as invalid:
        problems = sorted(invalid.problems, key=lambda p: line_at(root, p[0]) or 0)
        for i, (loc, message) in enumerate(problems):  # `name: no`: "...; to mean the text, quote it: 'no'"
            if message.endswith(QUOTE_IT) and (written := plain_text_at(root, loc)):
                problems[i] = (loc, f"{message}: {show(written)}")
        fail(problems, lambda loc: f"{name}:{line_at(root, loc) or '?'}: ")


# ---------------------------------------------------------------- overrides and sweeps


def with_values(config: Config, values: Mapping[str, Any], source: str = "with_values") -> Config:
    """A copy of ``config`` with dotted paths set, validated like a file: {"seed": 1, ...}."""
    problems, data = [], config.model_dump()
    for path, value in values.items():
        if problem := path_problem(path, value, "set"):
            problems.append((tuple(path.split(".")), problem))
            continue
        _assign(data, path, value)
    if not problems:
        try:
            return _validate(data)
        except Invalid as invalid:
            problems = invalid.problems
    fail(problems, lambda loc: f"{source} ")


def apply_overrides(config: Config, overrides: Iterable[str], source: str = "--set") -> Config:
    """Apply ``KEY=VALUE`` strings, each VALUE parsed as YAML: ``[100,100]``, ``0.5``, ``null``."""
    return with_values(config, parse_overrides(overrides, source), source)


def with_sweep(config: Config, grid: Mapping[str, Iterable[Any]], source: str = "--set") -> Config:
    """A copy of ``config`` whose sweep grid has the axes in ``grid`` added (or replaced)."""
    data = config.model_dump()
    data["sweep"] = {**data["sweep"], **{k: list(v) for k, v in grid.items()}}
    try:
        return _validate(data)
    except Invalid as invalid:  # report `--set dropout.keep_prob[1]: ...`, not `sweep.dropout...`
        fail([(loc[1:] if loc[:1] == ("sweep",) else loc, msg) for loc, msg in invalid.problems],
             lambda loc: f"{source} ")


def parse_sweep_values(items: Iterable[str], source: str = "--set") -> dict[str, list]:
    """Parse and validate ``KEY=V1,V2`` strings (commas inside brackets do not split)."""
    grid = parse_sweep_items(items, source)
    checked = with_sweep(Config(), grid, source).sweep
    return {key: list(checked[key]) for key in grid}


# ---------------------------------------------------------------- validation


def _validate(data: dict, *, check_sweep: bool = True) -> Config:
    """Config from plain data; the sweep grid checked against the schema and normalized."""
    problems, config = [], None
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems = translate(error)
    grid, sweep_problems = _check_sweep(data.get("sweep")) if check_sweep else ({}, [])
    if problems or sweep_problems:
        raise Invalid(problems + sweep_problems)
    return config.model_copy(update={"sweep": grid}) if grid else config


def _check_sweep(sweep: Any) -> tuple[FrozenDict, list[Problem]]:
    """Each axis of a grid must be a setting, and each of its values valid there."""
    grid, problems = {}, []
    for key, values in sweep.items() if isinstance(sweep, Mapping) else ():
        if not (isinstance(key, str) and isinstance(values, (list, tuple)) and values):
            continue  # a wrong shape: pydantic has reported it
        if problem := path_problem(key, values, "sweep"):
            problems.append((("sweep", key), problem))
            continue
        for i, value in enumerate(values):
            try:
                point = _validate(_assign(Config().model_dump(), key, value), check_sweep=False)
                grid.setdefault(key, []).append(get_value(point, key))
            except Invalid as invalid:
                depth = len(key.split("."))
                problems += [(("sweep", key, i, *loc[depth:]), m) for loc, m in invalid.problems]
    return FrozenDict({key: tuple(values) for key, values in grid.items()}), problems


def _assign(data: dict, path: str, value: Any) -> dict:
    """Set a dotted path in nested plain data, in place; return the data."""
    *parents, leaf = path.split(".")
    functools.reduce(dict.__getitem__, parents, data)[leaf] = value
    return data


# ---------------------------------------------------------------- writing


def to_yaml(config: Config) -> str:
    """The full resolved config as readable, commented YAML that load_config reads back."""
    data = config_to_dict(config)
    lines = [f"# dropcli config, fully resolved (config hash {config_hash(config)})"]
    for key, field in Config.model_fields.items():
        if key in SECTIONS:
            lines += ["", f"{key}:"] + [
                yaml_line(name, data[key][name], f.description, "  ")
                for name, f in SECTIONS[key].model_fields.items()]
        elif key == "sweep":
            lines += ["", f"{'sweep:' if data[key] else 'sweep: {}':<34} # {field.description}"]
            lines += [yaml_line(k, v, indent="  ") for k, v in data[key].items()]
        else:
            lines.append(yaml_line(key, data[key], field.description))
    return "\n".join(lines) + "\n"
