"""Reading sweeps from the store: a sweep folder's sweep.yaml and its runs, in the order
of its grid. The one reader of sweep.yaml (``dropcli.sweep.grid`` writes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.layout import SCHEMA_VERSION, SWEEP_FILE, is_run_dir, is_sweep_dir, run_key
from dropcli.store.runs import RunRecord, read_run


@dataclass
class SweepRecord:
    """A sweep folder as read: its spec and its runs, in the order of its grid."""

    path: Path
    spec: dict  # sweep.yaml's mapping; {} if it cannot be read
    runs: list[RunRecord]  # see ``sweep_run_dirs``; runs that cannot be read are left out
    warnings: list[str] = field(default_factory=list)  # everything met while reading, runs' own warnings too

    @property
    def sweep_id(self) -> str:
        return self.path.name


def read_sweep(sweep_dir: Path) -> SweepRecord:
    """A sweep folder, read tolerantly: RunStoreError only if it has no sweep.yaml (not a
    sweep folder). An unreadable sweep.yaml is a warning (its spec read as {}, its runs
    found by name); a run that cannot be read (``read_run`` raises) is left out with a
    warning; each run's own warnings follow, in order, in ``warnings`` too. A second folder
    of the same run (the same hash8: two dropcli versions that named it differently) is
    left out with a warning, so that no run counts twice."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise RunStoreError(f"{sweep_dir}: not a sweep folder (no {SWEEP_FILE})")
    spec, problem = _read_spec(sweep_dir)
    warnings = [] if problem is None else [f"{sweep_dir / SWEEP_FILE}: {problem}"]
    runs, seen = [], {}
    for run_dir in _ordered(sweep_dir, spec):
        if (first := seen.setdefault(run_key(run_dir.name), run_dir)) != run_dir:
            warnings.append(f"{run_dir}: the same run as {first.name} (hash {run_key(run_dir.name)}); left out, so "
                            f"that it counts once: delete one of the two folders")
            continue
        try:
            run = read_run(run_dir)
        except RunStoreError as e:
            warnings.append(str(e).splitlines()[0])
            continue
        warnings += run.warnings
        runs.append(run)
    return SweepRecord(sweep_dir, spec, runs, warnings)


def sweep_run_dirs(sweep_dir: Path) -> list[Path]:
    """A sweep's run folders in the order of its grid: those sweep.yaml lists, in its
    order, then any others by name (all of them by name if sweep.yaml cannot be read)."""
    return _ordered(Path(sweep_dir), _read_spec(sweep_dir)[0])


def sweep_schema_version(sweep_dir: Path) -> int:
    """The runs-store version a sweep was created with (its sweep.yaml's), or this
    dropcli's for a sweep not created yet or unreadable. A version 1 sweep names the runs
    it adds ``<name>-<hash8>`` too, so that an older dropcli resuming it finds them."""
    version = _read_spec(sweep_dir)[0].get("schema_version")
    return version if isinstance(version, int) and 1 <= version <= SCHEMA_VERSION else SCHEMA_VERSION


def _read_spec(sweep_dir: Path) -> tuple[dict, str | None]:
    """sweep.yaml's mapping and None, or {} and what is wrong with the file."""
    import yaml

    try:
        spec = yaml.safe_load((Path(sweep_dir) / SWEEP_FILE).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, RecursionError, yaml.YAMLError) as e:
        return {}, f"cannot read ({type(e).__name__})"
    return (spec if isinstance(spec, dict) else {}), None


def _ordered(sweep_dir: Path, spec: dict) -> list[Path]:
    listed = [rid for rid in dict.fromkeys(_listed_runs(spec)) if is_run_dir(sweep_dir / rid)]
    extra = sorted(p.name for p in sweep_dir.iterdir() if p.name not in listed and is_run_dir(p))
    return [sweep_dir / rid for rid in listed + extra]


def _listed_runs(spec: dict) -> list[str]:
    """The run ids a sweep.yaml lists; only plain folder names, so that a damaged or
    hostile file cannot point readers (and `dropcli plot`'s writes) outside the sweep."""
    entries = spec.get("runs") if isinstance(spec, dict) else None
    ids = [e.get("run_id") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return [i for i in ids if isinstance(i, str) and i == Path(i).name and i not in ("", ".", "..")
            and "\\" not in i and i.isprintable()]


def find_sweeps(root: Path) -> list[Path]:
    """Sweep folders directly under ``root``, sorted by path."""
    root = Path(root)
    return [p for p in sorted(root.iterdir()) if p.is_dir() and is_sweep_dir(p)] if root.is_dir() else []
