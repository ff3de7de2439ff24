"""``--set`` strings to values: ``KEY=VALUE`` and ``KEY=V1,V2``, each value parsed as YAML.

Only the text is read here (and which keys the items name); ``dropcli.config.load`` checks the
keys and values against the schema.
"""

from collections.abc import Iterable
from typing import Any

from dropcli.config.messages import cut
from dropcli.config.yaml_io import parse_yaml
from dropcli.errors import ConfigError


def parse_overrides(items: Iterable[str], source: str) -> dict[str, Any]:
    """``["model.hidden_dims=[100,100]", "seed=1"]`` -> ``{"model.hidden_dims": [100, 100], "seed": 1}``."""
    values = {}
    for item in items:
        key, text = _split_override(item, source)
        values[key] = _parse_value(text, f"{source} {cut(key)}")
    return values


def parse_sweep_items(items: Iterable[str], source: str) -> dict[str, list]:
    """``["dropout.keep_prob=0.5,1", "model.hidden_dims=[64],[64,64]"]`` -> one list per key
    (commas inside brackets and quotes do not split)."""
    grid = {}
    for item in items:
        key, text = _split_override(item, source)
        grid[key] = [_parse_value(part, f"{source} {cut(key)}") for part in _split_top_level(text)]
    return grid


def check_set_keys(items: Iterable[str] | None, flags: dict[str, str]) -> None:
    """Each ``--set`` key at most once, and none that a flag sets too (``flags``: key ->
    the flag as given, e.g. ``{"seed": "--seeds 0,1"}``): which should win is the user's call."""
    seen = {}
    for item in items or ():
        key, equals, _ = item.partition("=")
        key = key.strip()
        if not equals or not key:
            continue  # malformed: the parser says so
        if key in seen:
            raise ConfigError(f"--set {seen[key]} and --set {item} both set {key}; give it once")
        if key in flags:
            raise ConfigError(f"{flags[key]} and --set {item} both set {key}; give one of them")
        seen[key] = item


def set_keys(items: Iterable[str] | None) -> dict[str, str]:
    """The keys the ``--set`` items name, each mapped to "--set" (where they were set)."""
    return {item.partition("=")[0].strip(): "--set" for item in items or ()}


def _split_override(item: str, source: str) -> tuple[str, str]:
    key, equals, text = item.partition("=")
    if not equals or not key.strip():
        raise ConfigError(f"{source} {cut(item)}: expected KEY=VALUE, e.g. dropout.keep_prob=0.5")
    return key.strip(), text


def _parse_value(text: str, where: str) -> Any:
    return parse_yaml(text, where, lines=False)[0]


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
