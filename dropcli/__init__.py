"""dropcli: experiments on dropout in fully-connected networks, in pure NumPy.

The package is a library with a thin command line on top (``dropcli.cli``). From a
notebook or a script::

    from pathlib import Path
    import dropcli

    runs = Path("runs")
    config = dropcli.load_config("configs/default.yaml")
    summary = dropcli.train_run(config, runs)                       # one run: runs/<name>-<hash8>
    summaries = dropcli.run_sweep(dropcli.plan_sweep(config, runs))  # its sweep grid, in one folder
    records = [dropcli.read_run(path) for path in dropcli.find_runs(runs)]
    dropcli.plot_all(runs)                                           # figures and reports, from the files

Importing ``dropcli`` is cheap: each of these names imports its module (and NumPy,
matplotlib, ...) when first used, so ``dropcli --help`` stays fast.
"""

import importlib

from dropcli.version import __version__

_HOME = {
    "load_config": "dropcli.config",
    "train_run": "dropcli.experiment.run",
    "plan_sweep": "dropcli.sweep.grid",
    "run_sweep": "dropcli.sweep.run",
    "read_run": "dropcli.store.runs",
    "find_runs": "dropcli.store.runs",
    "read_sweep": "dropcli.store.sweeps",
    "plot_all": "dropcli.report.plot",
}
__all__ = ["__version__", *_HOME]


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
