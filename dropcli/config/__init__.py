"""Configuration: the typed schema (the one vocabulary of variants, datasets, normalizations),
YAML reading with file:line errors, --set parsing. Imports pydantic, yaml and dropcli.errors only."""
