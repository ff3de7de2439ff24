"""A checked ``Config`` from a YAML file or text, or from another config changed by dotted keys.

Every problem is a one-line ``ConfigError`` naming where, what was expected and what was
found: ``configs/x.yaml:12: model.hidden_dims[1]: expected an integer >= 1, found -3``, or
``--set model.reg: ...`` for overrides. Lines come from the YAML node tree, walked along
the ``loc`` of pydantic's errors. A sweep grid is checked value by value, each value as the
setting it sweeps.
"""

import functools
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dropcli.config.messages import QUOTE_IT, Invalid, Problem, cut, fail, path_problem, show, translate
from dropcli.config.overrides import check_set_keys, parse_overrides, parse_sweep_items
from dropcli.config.schema import SECTIONS, Config, FrozenDict, config_paths
from dropcli.config.yaml_io import line_at, parse_yaml, plain_text_at
from dropcli.errors import ConfigError


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
    """The built-in default (mnist1d), packaged as dropcli/config/default.yaml."""
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


def config_from(path: str | os.PathLike | None, overrides: Iterable[str] = (), name: str | None = None) -> Config:
    """The config a command line asks for: the file at ``path`` (None: the built-in
    default), then ``--set KEY=VALUE`` ``overrides``, then ``--name``. A key given twice, or
    by --set and --name both, is a ConfigError: which should win is the user's call."""
    check_set_keys(overrides, {"name": f"--name {name}"} if name is not None else {})
    config = load_config(path) if path is not None else default_config()
    if overrides:
        config = apply_overrides(config, overrides)
    if name is not None:  # a name is a string, not YAML: --name 1e3 or --name yes mean those characters
        config = with_values(config, {"name": name}, source="--name")
    return config


def get_value(config: Config, path: str) -> Any:
    """The value at a dotted path, e.g. ``get_value(config, "dropout.keep_prob")``."""
    if path not in config_paths():
        raise ConfigError(f"{cut(path)}: {path_problem(path, None, 'set')}", key=path)
    return functools.reduce(getattr, path.split("."), config)


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
