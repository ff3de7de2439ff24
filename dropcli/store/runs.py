"""Reading runs from the store (see the contract in ``dropcli.store.layout``): a run's
status, its files as one ``RunRecord``, and the run folders of a runs folder. Readers are
tolerant: what is wrong with a file becomes a warning, not an error."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.damage import damage
from dropcli.store.files import CONFIG_EMPTY, CONFIG_NOT_MAPPING, load_json, read_config, read_metrics
from dropcli.store.layout import (
    CONFIG_FILE, EXPECTATION_FILE, FINAL_STATUSES, METRICS_FILE, RUN_FILES, SUMMARY_FILE, SUMMARY_NUMBERS, is_run_dir,
    is_sweep_dir,
)
from dropcli.store.locks import lock_is_live, read_lock

def checked_summary(summary: dict, path: Path, warnings: list[str]) -> dict:
    """``summary`` without the values of ``SUMMARY_NUMBERS`` that are of the wrong type
    (a hand-edited or damaged file), each left out with a line in ``warnings``."""
    for section, keys in SUMMARY_NUMBERS.items():
        part = summary.get(section)
        if part is None:
            continue
        if not isinstance(part, dict):
            warnings.append(f"{path}: {section} is {_shown(part)}; expected an object of numbers (ignored)")
            summary = {**summary, section: None}
            continue
        bad = [k for k in keys if part.get(k) is not None and not _is_number(part[k])]
        for k in bad:
            warnings.append(f"{path}: {section}.{k} is {_shown(part[k])}; expected a number (ignored)")
        if bad:
            summary = {**summary, section: {k: v for k, v in part.items() if k not in bad}}
    return summary


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def run_status(run_dir: Path) -> str:
    """completed | diverged | interrupted | failed | corrupt | running | crashed | pending
    (see ``dropcli.store.layout``)."""
    return run_state(run_dir)[0]


def run_state(run_dir: Path) -> tuple[str, tuple[str, str] | None]:
    """The run's status and, if it is corrupt because its files are damaged, (file name,
    what is wrong with it); see ``damage``."""
    run_dir = Path(run_dir)
    summary, problem = load_json(run_dir / SUMMARY_FILE)
    if problem is not None:
        return "corrupt", None
    if summary is not None:
        if summary.get("status") not in FINAL_STATUSES:
            return "corrupt", None
        damaged = damage(run_dir, summary["status"])
        return ("corrupt" if damaged else summary["status"]), damaged
    lock = read_lock(run_dir)
    if lock is not None:
        return ("running" if lock_is_live(lock) else "crashed"), None
    return ("crashed" if os.path.lexists(run_dir / METRICS_FILE) else "pending"), None


@dataclass
class RunRecord:
    """Everything the store holds about one run, read tolerantly."""

    path: Path
    status: str
    config: dict
    summary: dict | None
    metrics: list[dict]  # epoch records only, in order
    expectation: dict | None
    warnings: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.path.name

    def value(self, dotted: str, default=None):
        """A config value by dotted path, e.g. ``run.value("dropout.keep_prob")``."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


RETRAINED = "(status corrupt; a sweep trains it again)"


def read_run(run_dir: Path) -> RunRecord:
    """A run folder, read tolerantly: only a missing or unreadable config.yaml is an error
    (RunStoreError); every other problem becomes one line in ``warnings``. A damaged run
    (see ``damage``) keeps its summary, whose "reason" then says what is damaged."""
    run_dir = Path(run_dir)
    config, config_problem = read_config(run_dir)
    if config_problem == "missing":
        raise RunStoreError(f"{run_dir}: not a run folder (no config.yaml)")
    status, damaged = run_state(run_dir)
    damaged_file = damaged[0] if damaged else None
    if config_problem not in (None, CONFIG_EMPTY, CONFIG_NOT_MAPPING):
        raise RunStoreError(f"{run_dir / CONFIG_FILE}: {config_problem}"
                            + (f" {RETRAINED}" if damaged_file == CONFIG_FILE else ""))
    warnings = []
    if config_problem is not None and damaged_file != CONFIG_FILE:  # no summary promised it
        warnings.append(f"{run_dir / CONFIG_FILE}: {config_problem}; its values are shown as None")
    records, w = read_metrics(run_dir / METRICS_FILE)
    warnings += w
    summary, problem = load_json(run_dir / SUMMARY_FILE)
    if problem is not None:
        warnings.append(f"{run_dir / SUMMARY_FILE}: {problem} {RETRAINED}")
    expectation, problem = load_json(run_dir / EXPECTATION_FILE)
    if problem is not None and damaged_file != EXPECTATION_FILE:
        warnings.append(f"{run_dir / EXPECTATION_FILE}: {problem}")
    if status == "corrupt" and summary is not None and damaged is None:
        warnings.append(f"{run_dir / SUMMARY_FILE}: no valid status {RETRAINED}")
        summary = None
    if summary is not None:
        summary = checked_summary(summary, run_dir / SUMMARY_FILE, warnings)
    if damaged is not None:
        warnings.append(f"{run_dir / damaged_file}: {damaged[1]}, but summary.json says "
                        f"{(summary or {}).get('status', 'it is finished')} {RETRAINED}")
        summary = summary and {**summary, "reason": f"{damaged_file}: {damaged[1]}"}
    warnings += foreign_files(run_dir)
    return RunRecord(
        path=run_dir,
        status=status,
        config=config or {},
        summary=summary,
        metrics=[r for r in records if r.get("kind") == "epoch"],
        expectation=expectation,
        warnings=warnings,
    )


def foreign_files(run_dir: Path) -> list[str]:
    """One line per entry of a run folder that dropcli did not write there."""
    notes = []
    try:
        entries = sorted(Path(run_dir).iterdir())
    except OSError as e:
        return [f"{run_dir}: cannot list ({e.strerror})"]
    for p in entries:
        if p.name in RUN_FILES or (p.suffix == ".png" and not p.name.startswith(".")):
            continue
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            notes.append(f"{p}: leftover temporary file of an interrupted write (ignored; safe to delete)")
        else:
            notes.append(f"{p}: not a dropcli file (ignored)")
    return notes


def find_runs(root: Path) -> list[Path]:
    """Run folders directly under ``root`` and inside its sweeps, sorted by path."""
    root = Path(root)
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if is_run_dir(child):
            found.append(child)
        elif is_sweep_dir(child):
            found += [g for g in sorted(child.iterdir()) if g.is_dir() and is_run_dir(g)]
    return found


def read_summary(run_dir: Path) -> dict:
    """The run's summary, or just its status if it has none (or an unreadable one); a
    damaged run's with status corrupt and the damage as its reason."""
    summary, _ = load_json(Path(run_dir) / SUMMARY_FILE)
    status, damaged = run_state(run_dir)
    if summary is None or (status not in FINAL_STATUSES and damaged is None):
        return {"run_id": Path(run_dir).name, "status": status}
    summary = checked_summary(summary, Path(run_dir) / SUMMARY_FILE, [])
    return {**summary, "status": "corrupt", "reason": f"{damaged[0]}: {damaged[1]}"} if damaged else summary
