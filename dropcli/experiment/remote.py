"""Runs trained elsewhere: an executor whose workers share no file system with the runs
folder (dask) trains each run into a private folder on the worker and ships its files;
the sweep's process claims the run in the real store and writes them there."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dropcli.config import load_config_text
from dropcli.errors import RunStoreError
from dropcli.experiment.run import train_run
from dropcli.store.files import atomic_write_bytes, read_json
from dropcli.store.layout import CONFIG_FILE, SUMMARY_FILE, TRAINED_FILES


def train_files(config_yaml: str, *, folder=None, argv=None, threads=None, scratch=None) -> dict[str, bytes]:
    """Train the config (YAML text, as config.yaml holds it) in a temporary folder (in
    ``scratch``, default the system's; the run's own folder named ``folder``, as in the
    store) and return the run's files by name. Raises DataError/ConfigError as ``train_run`` does."""
    config = load_config_text(config_yaml, CONFIG_FILE)
    with tempfile.TemporaryDirectory(prefix="dropcli-run-", dir=scratch) as tmp:
        summary = train_run(config, Path(tmp), folder=folder, argv=argv, force=True, threads=threads)
        run_dir = Path(tmp) / summary["run_id"]
        return {name: (run_dir / name).read_bytes() for name in TRAINED_FILES if (run_dir / name).is_file()}


def store_files(run_dir: Path, files: dict[str, bytes]) -> dict:
    """With the run claimed (and ``run.start_run`` done): write the files ``train_files``
    returned, each atomically, summary.json last; return the summary."""
    if SUMMARY_FILE not in files:
        raise RunStoreError(f"{run_dir}: the worker sent no summary.json")
    for name in TRAINED_FILES:  # summary.json last
        if name in files:
            atomic_write_bytes(run_dir / name, files[name])
    return read_json(run_dir / SUMMARY_FILE)
