"""A sweep's config from the command line: a config file's grid (its ``sweep:`` axes) with
the axes of the shorthand flags and of ``--set KEY=V1,V2`` added.

    sweep_config("x.yaml", {"--keep": "0.25,0.5,1", "--seeds": "0,1,2"}, ["model.hidden_dims=[64],[64,64]"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from dropcli.config import Config, config_from, parse_sweep_values, with_sweep
from dropcli.config.overrides import check_set_keys, set_keys

# The shorthand flags of `dropcli sweep`, and the setting each one sweeps.
AXES = {"--keep": "dropout.keep_prob", "--variant": "dropout.variant", "--norm": "model.normalization",
        "--seeds": "seed"}


def sweep_config(path: str | os.PathLike | None, flags: Mapping[str, str | None],
                 sets: Sequence[str] | None = ()) -> tuple[Config, dict[str, str]]:
    """The config at ``path`` (None: the built-in default) with the axes of ``flags`` (flag
    -> its values as typed, ``"0.25,0.5,1"``; None: not given) and of ``sets`` added to its
    grid; and where each added axis was given (key -> ``"--keep"``, ``"--set"``), for errors
    about those settings that come up later (a data loader's). A key given by two of them is
    a ConfigError: which should win is the user's call."""
    given = {AXES[flag]: flag for flag, values in flags.items() if values is not None}
    check_set_keys(sets, {key: f"{flag} {flags[flag]}" for key, flag in given.items()})
    config = config_from(path)
    grid = {}
    for key, flag in given.items():
        grid.update(parse_sweep_values([f"{key}={flags[flag]}"], source=flag))
    grid.update(parse_sweep_values(sets or []))
    return (with_sweep(config, grid) if grid else config), {**given, **set_keys(sets)}
