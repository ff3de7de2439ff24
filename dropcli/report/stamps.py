"""What a figure was drawn from, as a digest kept in its PNG (``figures.common.png_stamp``).

A run figure's stamp covers the run's id, status and the bytes of the files it is drawn
from (config.yaml, metrics.jsonl, summary.json, expectation.json), what it shares with the
runs drawn from the same template (signature and limits, ``figures.template``), and the
drawing code (dropcli's version and the source of the modules that read and draw). A
sweep figure's covers sweep.yaml and the stamps of all its runs. A PNG whose stamp equals
the one computed now is up to date: the same inputs and code draw the same picture, so it
is not drawn again. Anything else (a run trained again or resumed, a changed file, a new
dropcli, a copy whose PNG lost its text chunk) draws it again. Contents, not times, are
compared, so a copied folder or a coarse file-system clock cannot make a stale PNG look
fresh. Costs one read of each input file, no matplotlib.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from dropcli.store.layout import CONFIG_FILE, EXPECTATION_FILE, METRICS_FILE, SUMMARY_FILE
from dropcli.store.runs import RunRecord

RUN_INPUTS = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, EXPECTATION_FILE)  # what run figures are drawn from
_PACKAGE = Path(__file__).resolve().parent.parent
# The modules whose code decides what a figure shows: reading the store, grouping, statistics, drawing.
DRAWING_CODE = ("report/figures/*.py", "report/groups.py", "evidence/stats.py", "store/runs.py")


@lru_cache(maxsize=1)
def code_digest() -> str:
    """dropcli's version, matplotlib's, and the source of ``DRAWING_CODE``."""
    from importlib.metadata import PackageNotFoundError, version

    from dropcli.version import __version__

    h = hashlib.sha256(f"dropcli {__version__}".encode())
    try:
        h.update(f"matplotlib {version('matplotlib')}".encode())
    except PackageNotFoundError:
        pass
    for path in sorted(p for pattern in DRAWING_CODE for p in _PACKAGE.glob(pattern)):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def run_digest(run: RunRecord) -> str:
    """The run's id, status and the bytes of its ``RUN_INPUTS`` (or that one is missing)."""
    h = hashlib.sha256(f"{run.run_id}\0{run.status}".encode("utf-8", "surrogateescape"))  # any folder name
    for name in RUN_INPUTS:
        try:
            h.update(b"\0" + name.encode() + b"\0" + (run.path / name).read_bytes())
        except OSError:
            h.update(b"\0" + name.encode() + b"\0<missing>")
    return h.hexdigest()


def stamp(*parts) -> str:
    """The digest of ``code_digest()`` and ``parts`` (their ``repr``s)."""
    return hashlib.sha256("\0".join([code_digest(), *map(repr, parts)]).encode()).hexdigest()
