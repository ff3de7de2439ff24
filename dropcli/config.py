"""The experiment config: typed, frozen and strict, loaded from YAML.

Every key has a default, so an empty file is a valid config::

    name: digits            # used in run folder names: [A-Za-z0-9._-], 1 to 64 characters
    seed: 0                 # the one seed every random stream is spawned from
    data:    dataset, path, num_train, num_val
    model:   hidden_dims, activation, normalization, weight_init, reg, max_norm
    dropout: variant, keep_prob, input_keep_prob, placement
    train:   optimizer, learning_rate, lr_decay, batch_size, epochs, dtype
    sweep:   {dotted.key: [value, ...]}   # the grid `dropcli sweep` runs; ignored by `train`

``keep_prob`` is the probability of KEEPING a unit (1.0 = dropout off). The other names in
the literature (``p``, ``rate``, ``drop_prob``, ...) are refused with the equivalent value.

Every problem is a one-line ``ConfigError`` naming where, what was expected and what was
found: ``configs/x.yaml:12: model.hidden_dims[1]: expected an integer >= 1, found -3``, or
``--set model.reg: ...`` for overrides. Lines come from the YAML node tree, walked along
the ``loc`` of pydantic's errors.
"""

import difflib
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, NoReturn, Union, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import ConfigError

# ---------------------------------------------------------------- schema


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
Dataset = Literal["digits", "mnist", "fashion-mnist", "cifar10", "npz"]  # each has a loader in dropcli.data
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
        Literal["he", "xavier"] | Annotated[float, at.Gt(0)], Expect("he, xavier or a number > 0")
    ] = Field("he", description="he, xavier, or the std of a normal init")
    reg: Annotated[float, at.Ge(0)] = Field(0.0, description="L2: loss += 0.5 * reg * sum(W**2)")
    max_norm: Annotated[float, at.Gt(0)] | None = Field(
        None, description="after each update, rescale each hidden unit's incoming weights to norm <= c (null: off)")


class DropoutConfig(_Section):
    """Dropout on hidden units (and optionally on the input)."""

    variant: Literal[VARIANTS] = Field(
        "inverted", description="inverted: scale by 1/keep_prob in training; vanilla: at test; "
        "gaussian: noise N(1, (1-keep_prob)/keep_prob); dropconnect: mask the weights into hidden layers"
    )
    keep_prob: Probability = Field(0.5, description="probability of KEEPING a hidden unit; 1 = off")
    input_keep_prob: Probability = Field(1.0, description="probability of keeping an input feature")
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
        raise ConfigError(f"{path}: {_path_problem(path, None, 'set')}")
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
    """The built-in default (digits), packaged as dropcli/resources/default.yaml."""
    text = resources.files("dropcli").joinpath("resources/default.yaml").read_text("utf-8")
    return load_config_text(text, "dropcli/resources/default.yaml")


class _Loader(yaml.SafeLoader):
    """Safe YAML (no Python objects), plus ``1e-3`` read as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_config_text(text: str, name: str) -> Config:
    """Check and resolve a config given as YAML text; ``name`` is where errors say it is from."""
    data, root = _parse_yaml(text, name)
    if data is None:  # an empty file (or only comments): all defaults
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}:{root.start_mark.line + 1}: expected a mapping of config keys "
                          f"(name, seed, data, ...) at the top level, found {_show(data)}")
    # `model:` with everything under it commented out means the defaults
    data = {k: {} if v is None and k in (*SECTIONS, "sweep") else v for k, v in data.items()}
    try:
        return _validate(data)
    except _Invalid as invalid:
        problems = sorted(invalid.problems, key=lambda p: _line(root, p[0]) or 0)
        _fail(problems, lambda loc: f"{name}:{_line(root, loc) or '?'}: ")


def _parse_yaml(text: str, name: str, *, lines: bool = True) -> tuple[Any, yaml.Node | None]:
    """Safe-load one YAML document; return the data and its node tree (for line numbers)."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as error:  # a control character: the reader refuses the text at once
        problem = " ".join(str(getattr(error, "reason", None) or error).split())
        raise ConfigError(f"{name}: invalid YAML: {problem}") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_size(root, name)
        _check_duplicates(root, name, (), set())
        return loader.construct_document(root), root
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}" if mark and lines else name
        problem = " ".join(str(error.problem or error).split())
        if "could not determine a constructor" in problem:
            tag = problem.rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"{where}: the tag {tag!r} is not allowed; dropcli reads plain YAML "
                              "only (safe loading: no Python objects)") from None
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{name}: invalid YAML: {' '.join(str(error).split())}") from None
    finally:
        loader.dispose()


MAX_NODES, MAX_DEPTH = 10_000, 50  # a config is a few dozen values; aliases must not multiply them


def _check_size(root: yaml.Node, name: str) -> None:
    """Refuse a document that aliases expand past MAX_NODES values ("billion laughs"),
    that nests deeper than MAX_DEPTH, or that contains itself: validating it would not end."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int, path: set[int]) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in path:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: a YAML alias refers to a value that contains it")
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        path.add(id(node))
        total = 1 + sum(size(child, depth + 1, path) for child in children)
        path.discard(id(node))
        if total > MAX_NODES:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: YAML aliases expand this document past "
                              f"{MAX_NODES} values; write the values out instead")
        sizes[id(node)] = total
        return total

    size(root, 0, set())


def _check_duplicates(node: yaml.Node, name: str, loc: tuple, seen: set[int]) -> None:
    if id(node) in seen:  # a shared (aliased) node: checked already
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in first:
                raise ConfigError(f"{name}:{line}: {_dotted((*loc, key.value))}: duplicate key "
                                  f"(first given on line {first[key.value]})")
            first[key.value] = line
            _check_duplicates(value, name, (*loc, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, name, (*loc, i), seen)


def _line(root: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the key (or list item) at ``loc``, or of its deepest ancestor found."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and part in range(len(node.value)):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# ---------------------------------------------------------------- overrides and sweeps


def with_values(config: Config, values: Mapping[str, Any], source: str = "with_values") -> Config:
    """A copy of ``config`` with dotted paths set, validated like a file: {"seed": 1, ...}."""
    problems, data = [], config.model_dump()
    for path, value in values.items():
        if problem := _path_problem(path, value, "set"):
            problems.append((tuple(path.split(".")), problem))
            continue
        _assign(data, path, value)
    if not problems:
        try:
            return _validate(data)
        except _Invalid as invalid:
            problems = invalid.problems
    _fail(problems, lambda loc: f"{source} ")


def apply_overrides(config: Config, overrides: Iterable[str], source: str = "--set") -> Config:
    """Apply ``KEY=VALUE`` strings, each VALUE parsed as YAML: ``[100,100]``, ``0.5``, ``null``."""
    values = {}
    for item in overrides:
        key, text = _split_override(item, source)
        values[key] = _parse_value(text, f"{source} {key}")
    return with_values(config, values, source)


def with_sweep(config: Config, grid: Mapping[str, Iterable[Any]], source: str = "--set") -> Config:
    """A copy of ``config`` whose sweep grid has the axes in ``grid`` added (or replaced)."""
    data = config.model_dump()
    data["sweep"] = {**data["sweep"], **{k: list(v) for k, v in grid.items()}}
    try:
        return _validate(data)
    except _Invalid as invalid:  # report `--set dropout.keep_prob[1]: ...`, not `sweep.dropout...`
        _fail([(loc[1:] if loc[:1] == ("sweep",) else loc, msg) for loc, msg in invalid.problems],
              lambda loc: f"{source} ")


def parse_sweep_values(items: Iterable[str], source: str = "--set") -> dict[str, list]:
    """Parse and validate ``KEY=V1,V2`` strings (commas inside brackets do not split)."""
    grid = {}
    for item in items:
        key, text = _split_override(item, source)
        grid[key] = [_parse_value(part, f"{source} {key}") for part in _split_top_level(text)]
    checked = with_sweep(Config(), grid, source).sweep
    return {key: list(checked[key]) for key in grid}


def _split_override(item: str, source: str) -> tuple[str, str]:
    key, equals, text = item.partition("=")
    if not equals or not key.strip():
        raise ConfigError(f"{source} {item}: expected KEY=VALUE, e.g. dropout.keep_prob=0.5")
    return key.strip(), text


def _parse_value(text: str, where: str) -> Any:
    return _parse_yaml(text, where, lines=False)[0]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``[1],[2,3]`` -> ``["[1]", "[2,3]"]``."""
    parts, depth, start, quote = [], 0, 0, None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [p.strip() for p in [*parts, text[start:]]]


# ---------------------------------------------------------------- validation and messages

Problem = tuple[tuple, str]  # (loc, message), loc as in pydantic: ("model", "hidden_dims", 1)


class _Invalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__(problems)
        self.problems = problems


def _validate(data: dict, *, check_sweep: bool = True) -> Config:
    """Config from plain data; the sweep grid checked against the schema and normalized."""
    problems, config = [], None
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems = _translate(error)
    grid, sweep_problems = _check_sweep(data.get("sweep")) if check_sweep else ({}, [])
    if problems or sweep_problems:
        raise _Invalid(problems + sweep_problems)
    return config.model_copy(update={"sweep": grid}) if grid else config


def _check_sweep(sweep: Any) -> tuple[FrozenDict, list[Problem]]:
    """Each axis of a grid must be a setting, and each of its values valid there."""
    grid, problems = {}, []
    for key, values in sweep.items() if isinstance(sweep, Mapping) else ():
        if not (isinstance(key, str) and isinstance(values, (list, tuple)) and values):
            continue  # a wrong shape: pydantic has reported it
        if problem := _path_problem(key, values, "sweep"):
            problems.append((("sweep", key), problem))
            continue
        for i, value in enumerate(values):
            try:
                point = _validate(_assign(Config().model_dump(), key, value), check_sweep=False)
                grid.setdefault(key, []).append(get_value(point, key))
            except _Invalid as invalid:
                depth = len(key.split("."))
                problems += [(("sweep", key, i, *loc[depth:]), m) for loc, m in invalid.problems]
    return FrozenDict({key: tuple(values) for key, values in grid.items()}), problems


def _assign(data: dict, path: str, value: Any) -> dict:
    """Set a dotted path in nested plain data, in place; return the data."""
    *parents, leaf = path.split(".")
    functools.reduce(dict.__getitem__, parents, data)[leaf] = value
    return data


def _translate(error: ValidationError) -> list[Problem]:
    """pydantic's errors as (loc, message for a person), one per location."""
    problems: dict[tuple, str] = {}
    for e in error.errors(include_url=False):
        if e["type"] == "extra_forbidden":
            problems.setdefault(tuple(e["loc"]), _unknown_key(tuple(e["loc"]), e["input"], "file"))
            continue
        tp, loc = _locate(tuple(e["loc"]))
        msg = e["msg"][0].lower() + e["msg"][1:]
        expected = f"expected {_expect(tp)}" if tp is not None else msg
        problems.setdefault(loc, f"{expected}, found {_show(e['input'])}")
    return list(problems.items())


def _fail(problems: list[Problem], where: Callable[[tuple], str]) -> NoReturn:
    loc, message = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise ConfigError(f"{where(loc)}{_dotted(loc)}: {message}{more}")


def _dotted(loc: tuple) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return text or "(top level)"


def _show(value: Any) -> str:
    """A found value as the user would have written it: 'abc', -3, true, null, [1, 2]."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    except ValueError:  # a self-referencing YAML alias
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(tp: Any) -> Any:
    return get_args(tp)[0] if get_origin(tp) is Annotated else tp


def _field_type(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _locate(loc: tuple) -> tuple[Any, tuple]:
    """The schema type at an error loc, and the loc without pydantic's union-member tags."""
    tp, kept = Config, []
    for part in loc:
        base = _unwrap(tp)
        if isinstance(base, type) and issubclass(base, BaseModel) and part in base.model_fields:
            tp = _field_type(base, part)
        elif get_origin(base) is tuple and isinstance(part, int):
            tp = get_args(base)[0]
        elif get_origin(base) is dict and isinstance(part, str):
            tp = get_args(base)[1]
        elif get_origin(base) in (Union, UnionType):
            break  # `part` names a union member, not a key
        else:
            return None, loc
        kept.append(part)
    return tp, tuple(kept)


_WORDS = {int: ("an integer", "integers"), float: ("a number", "numbers"),
          str: ("a string", "strings"), Any: ("a value", "values")}
_BOUNDS = ((at.Ge, "ge", ">="), (at.Gt, "gt", ">"), (at.Le, "le", "<="), (at.Lt, "lt", "<"))


def _expect(tp: Any, plural: bool = False) -> str:
    """What a schema type accepts, for a person: 'a non-empty list of integers >= 1'."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        meta = args[1:]
        if marks := [m for m in meta if isinstance(m, Expect)]:
            return marks[0].text
        bounds = [f"{sym} {getattr(m, attr)}" for m in meta for cls, attr, sym in _BOUNDS
                  if isinstance(m, cls)]
        text = " ".join([_expect(args[0], plural), " and ".join(bounds)]).strip()
        empty_ok = not any(isinstance(m, at.MinLen) and m.min_length > 0 for m in meta)
        return text if empty_ok else text.replace("a list", "a non-empty list", 1)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (Union, UnionType):
        text = " or ".join(_expect(a, plural) for a in args if a is not NoneType)
        return text + (" or null" if NoneType in args else "")
    if origin is tuple:
        return "a list of " + _expect(args[0], plural=True)
    if origin is dict:
        return "a mapping of dotted keys to lists of values"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(tp.model_fields)
    return _WORDS.get(tp, (str(tp), str(tp)))[plural]


_DROP_ALIASES = ("rate", "drop_prob", "dropout_rate", "drop_rate", "dropout")
_KEEP_ALIASES = ("keep", "dropout_keep_ratio")  # the latter is cs231n's (2020 on)
_SYNONYMS = {"lr": "learning_rate", "weight_decay": "reg", "l2": "reg", "num_epochs": "epochs",
             "weight_scale": "weight_init", "hidden_sizes": "hidden_dims", "norm": "normalization"}


def _path_problem(path: str, value: Any, style: str) -> str | None:
    """Why a dotted path (from --set or sweep:) is not a setting, or None if it is one."""
    if path in _PATHS:
        return None
    if path == "sweep":
        return "the sweep grid is not a setting; give its axes as `dropcli sweep --set KEY=V1,V2`"
    if path in SECTIONS:
        first = next(iter(SECTIONS[path].model_fields))
        return f"is a section, not a setting; give a setting such as {path}.{first}"
    return _unknown_key(tuple(path.split(".")), value, style)


def _unknown_key(loc: tuple, value: Any, style: str) -> str:
    """An unknown key: the keep_prob aliases get their equivalent, typos a did-you-mean."""
    *parents, key = loc
    if tuple(parents) == ("dropout",) and key in (*_DROP_ALIASES, *_KEEP_ALIASES, "p"):
        return _alias_message(key, value, style)
    model = _unwrap(_locate(tuple(parents))[0]) if parents else Config
    is_model = isinstance(model, type) and issubclass(model, BaseModel)
    siblings = list(model.model_fields) if is_model else []
    prefix = "" if style == "file" else "".join(f"{p}." for p in parents)
    target = _SYNONYMS.get(str(key), str(key))
    if hint := difflib.get_close_matches(target, siblings, n=1):
        return f"unknown key; did you mean '{prefix}{hint[0]}'?"
    elsewhere = [p for p in _PATHS if p.rsplit(".", 1)[-1] == target]
    if not siblings:  # the parents are not a section either: match the whole path
        elsewhere = elsewhere or difflib.get_close_matches(".".join(map(str, loc)), _PATHS, n=1)
    if hint := elsewhere:
        return f"unknown key; did you mean '{hint[0]}'?"
    return f"unknown key; expected one of {', '.join(siblings or _PATHS)}"


def _alias_message(key: str, value: Any, style: str) -> str:
    """`rate: 0.3` -> 'write keep_prob: 0.7 (= 1 - rate)', in the syntax of where it was written."""
    head = "dropcli calls this knob keep_prob (probability of keeping a unit)"
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not values or not numeric:
        return f"{head}; write keep_prob instead"

    def write(numbers: list) -> str:
        shown = _show(numbers if isinstance(value, (list, tuple)) else numbers[0])
        return {"file": f"keep_prob: {shown}", "set": f"dropout.keep_prob={shown}"}.get(
            style, f"dropout.keep_prob: {shown}")

    flipped = [round(1 - v, 10) for v in values]
    if key == "p":
        return (f"{head}; p is ambiguous (cs231n used it for the keep probability one year and "
                f"the drop rate another): write {write(values)} if p was the keep probability, "
                f"{write(flipped)} if it was the drop rate")
    if key in _KEEP_ALIASES:
        return f"{head}; write {write(values)}"
    return f"{head}; write {write(flipped)} (= 1 - {key})"


# ---------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    """Lists in flow style ([256, 256]), mappings in block style."""


def _flow_list(dumper: yaml.SafeDumper, value: list | tuple) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(tuple, _flow_list)


def _yaml_line(key: str, value: Any, comment: str | None = None, indent: str = "") -> str:
    text = indent + yaml.dump({key: value}, Dumper=_Dumper, width=10**6, sort_keys=False).strip()
    return f"{text:<34} # {comment}" if comment else text


def to_yaml(config: Config) -> str:
    """The full resolved config as readable, commented YAML that load_config reads back."""
    data = config_to_dict(config)
    lines = [f"# dropcli config, fully resolved (config hash {config_hash(config)})"]
    for key, field in Config.model_fields.items():
        if key in SECTIONS:
            lines += ["", f"{key}:"] + [
                _yaml_line(name, data[key][name], f.description, "  ")
                for name, f in SECTIONS[key].model_fields.items()]
        elif key == "sweep":
            lines += ["", f"{'sweep:' if data[key] else 'sweep: {}':<34} # {field.description}"]
            lines += [_yaml_line(k, v, indent="  ") for k, v in data[key].items()]
        else:
            lines.append(_yaml_line(key, data[key], field.description))
    return "\n".join(lines) + "\n"

