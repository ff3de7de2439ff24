"""Configuration: the typed schema and its one vocabulary, YAML reading with file:line errors,
``--set`` parsing. Imports pydantic, yaml and dropcli.errors only. Use it as::

    from dropcli.config import Config, load_config, with_values

    vocabulary.py  the names settings take: DATASETS, VARIANTS, NORMALIZATIONS, ... (typing only)
    schema.py      the pydantic sections and Config
    messages.py    pydantic's errors as one-line messages, did-you-mean
    yaml_io.py     YAML text to data and node tree, line lookup, YAML lines
    overrides.py   ``--set`` strings to values
    load.py        a checked Config from a file, text, or another config changed by dotted keys
    dump.py        a Config written out: run config, dict, hash, YAML, JSON schema

The names below are looked up when first used, so that importing the vocabulary (as the
CLI does to build its options) does not import pydantic.
"""

import importlib

_EXPORTS = {
    "vocabulary": ("ACTIVATIONS", "DATASETS", "NORMALIZATIONS", "OPTIMIZERS", "PLACEMENTS", "VARIANTS"),
    "schema": ("Config", "DataConfig", "DropoutConfig", "ModelConfig", "TrainConfig", "SECTIONS", "config_paths"),
    "load": ("apply_overrides", "config_from", "default_config", "get_value", "load_config", "load_config_text",
             "parse_sweep_values", "with_sweep", "with_values"),
    "dump": ("config_hash", "config_to_dict", "hashed_dict", "json_schema", "run_config", "to_yaml"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
