"""Reuse of a run finished in another folder of the runs folder (see "Reuse" in the
``dropcli.store.layout`` contract), and tidying a run folder before it is trained again."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.files import read_json, write_json
from dropcli.store.layout import FINAL_STATUSES, SUMMARY_FILE, TRAINED_FILES, is_run_dir, run_key
from dropcli.store.runs import run_status


def find_peer(root: Path, run_id: str, statuses, exclude: Path | None = None) -> Path | None:
    """Another folder of the run ``run_id`` names (any folder name with its hash8,
    ``layout.run_key``) under the runs folder ``root``, a single run or a run of one of its
    sweeps, whose status is in ``statuses``; None if there is none. A damaged run reads
    corrupt (``store.damage``), so it is never the peer of a finished one."""
    root, suffix = Path(root), f"-{run_key(run_id)}"
    candidates = []
    for folder in (root, *_subfolders(root)):
        candidates += [d for d in _subfolders(folder) if d.name.endswith(suffix)]
    same = os.path.realpath(exclude) if exclude is not None else None
    for path in candidates:
        if is_run_dir(path) and os.path.realpath(path) != same and run_status(path) in statuses:
            return path
    return None


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [d for d in sorted(folder.iterdir()) if not d.name.startswith(".") and d.is_dir()]
    except OSError:
        return []


def reuse_run(peer: Path, run_dir: Path, root: Path) -> dict:
    """Give ``run_dir`` the finished run ``peer``'s files (hard links, or copies) and a
    summary saying where they came from; return that summary. Hold ``claim_run`` first.
    RunStoreError if ``peer`` is no longer finished, or damaged (corrupt) meanwhile."""
    peer, run_dir = Path(peer), Path(run_dir)
    summary = read_json(peer / SUMMARY_FILE)
    if summary is None or run_status(peer) not in FINAL_STATUSES:
        raise RunStoreError(f"{peer}: no longer a finished run")
    (run_dir / SUMMARY_FILE).unlink(missing_ok=True)  # readers must not pair an old summary with new files
    for name in TRAINED_FILES[:-1]:  # all but summary.json, written below
        if (peer / name).is_file():
            _link_or_copy(peer / name, run_dir / name)
        else:
            (run_dir / name).unlink(missing_ok=True)
    summary = {k: v for k, v in summary.items() if k != "schema_version"}
    summary.update(run_id=run_dir.name, reused_from=os.path.relpath(peer, root))
    write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp, follow_symlinks=False)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(src, tmp, follow_symlinks=False)
        os.chmod(tmp, 0o644)
    os.replace(tmp, dst)


def remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files that interrupted atomic writes left in ``run_dir``."""
    for p in Path(run_dir).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
