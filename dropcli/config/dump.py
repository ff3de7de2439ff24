"""A ``Config`` written out: the run's resolved config, plain data, its hash, YAML, JSON schema."""

import hashlib
import json
from typing import Any

from dropcli.config.schema import SECTIONS, Config, FrozenDict, config_paths
from dropcli.config.yaml_io import yaml_line


def run_config(config: Config) -> Config:
    """The resolved config of one run: the sweep grid emptied."""
    return config.model_copy(update={"sweep": FrozenDict()})


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain JSON-able data (lists, not tuples), sections in schema order."""
    return config.model_dump(mode="json")


# Settings added after run (or sweep) folders existed, with the default that means "as
# before": left out of the hash while they hold it, so that adding a setting renames no
# existing folder. (Sweep hashes always held max_norm.)
_HASH_NEUTRAL = {
    "run": {("model", "max_norm"): None, ("train", "patience"): None},
    "sweep": {("train", "patience"): None},
}


def hashed_dict(config: Config, kind: str = "run") -> dict[str, Any]:
    """``config_to_dict`` without the settings that hold their hash-neutral default: what
    a run's (``kind`` "run") or a sweep's ("sweep") hash is computed over."""
    data = config_to_dict(config)
    for (section, key), default in _HASH_NEUTRAL[kind].items():
        if data[section].get(key, default) == default:
            data[section].pop(key, None)
    return data


def config_hash(config: Config) -> str:
    """8 hex chars of sha256 over the canonical JSON of the run config (seed and name included)."""
    text = json.dumps(hashed_dict(run_config(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def json_schema() -> dict[str, Any]:
    """The JSON schema of a config file (for editors), sweep keys limited to valid paths."""
    schema = Config.model_json_schema()
    schema["properties"]["sweep"]["propertyNames"] = {"enum": config_paths()}
    return schema


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
