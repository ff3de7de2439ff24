"""Runs folders as the commands meet them: the runs one holds, grouped and read (``dropcli
runs``), and whether a path given on the command line is the kind of folder asked for, with
a one-line RunStoreError saying what it is instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.layout import is_run_dir, is_sweep_dir
from dropcli.store.runs import RunRecord, find_runs, read_run
from dropcli.store.sweeps import sweep_run_dirs


@dataclass
class RunGroup:
    """The single runs of a runs folder, or the runs of one of its sweeps."""

    folder: Path  # the sweep folder, or the runs folder itself for its single runs
    is_sweep: bool
    runs: list[tuple[Path, RunRecord | None]] = field(default_factory=list)  # None: unreadable (see the warnings)


def list_runs(runs_dir: Path) -> tuple[list[RunGroup], list[str]]:
    """Every run in ``runs_dir``: one group per sweep (in grid order) and one for the single
    runs, in the order of their folders' names; and the warnings met reading them, in order
    (a run that cannot be read is listed as None, its error a warning). RunStoreError if
    ``runs_dir`` is not a runs folder or holds no runs."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunStoreError(f"{runs_dir}: {'not a folder' if runs_dir.exists() else 'no such folder'}")
    if is_run_dir(runs_dir):
        raise RunStoreError(f"{runs_dir}: this is a run folder; list the runs folder that holds it "
                            f"(dropcli runs {runs_dir.resolve().parent})")
    folders: dict[Path, list[Path]] = {}
    for path in find_runs(runs_dir):
        folders.setdefault(path.parent, []).append(path)
    if not folders:
        raise RunStoreError(f"{runs_dir}: no runs found (run `dropcli train` or `dropcli sweep` first)")
    groups, warnings = [], []
    for folder, members in folders.items():
        group = RunGroup(folder, is_sweep=folder != runs_dir)
        for path in sweep_run_dirs(folder) if group.is_sweep else members:
            try:
                record = read_run(path)
            except RunStoreError as e:
                warnings.append(str(e))
                record = None
            else:
                warnings += record.warnings
            group.runs.append((path, record))
        groups.append(group)
    return groups, warnings


def check_run_dir(run: Path) -> None:
    """RunStoreError (one line) unless ``run`` is a run folder, saying what it is instead."""
    if is_run_dir(run):
        return
    if not run.exists():
        raise RunStoreError(f"{run}: no such folder")
    if not run.is_dir():
        raise RunStoreError(f"{run}: not a run folder but a file; give the folder that holds it"
                            + (f" (dropcli eval {run.parent})" if is_run_dir(run.parent) else ""))
    what = "a sweep folder" if is_sweep_dir(run) else "not a run folder (no config.yaml)"
    raise RunStoreError(f"{run}: {what}; give one of the run folders that `dropcli runs` lists")


def check_runs_dir(runs_dir: Path) -> None:
    """A runs folder that cannot be one fails before anything is shown or written."""
    for path in (runs_dir, *runs_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise RunStoreError(f"{runs_dir}: cannot be a runs folder ({path} is a file)")
            return
