"""The runs store: one folder per run, one per sweep. This docstring is the contract.

Layout (``SCHEMA_VERSION`` 2)::

    RUNS_DIR/
      <name>-<hash8>/                 one training run; hash8 = config_hash(resolved config)
        config.yaml                   the resolved config, written first
        meta.json                     dropcli version, argv, git commit, numpy/BLAS, host, seeds
        lock                          exists while a process trains the run: {"pid", "host"}
        metrics.jsonl                 append-only, flushed per record: {"kind": "epoch", ...}
                                      (and "iteration", "diverged" records); epoch records
                                      carry "diagnostics" (see dropcli/train/diagnostics.py)
        params.npz                    best parameters (W1, b1, gamma1, ...) and batchnorm
                                      state (running_mean1, running_var1, ...)
        expectation.json              expectation check of the trained net's dropout layers
        summary.json                  status, final/best metrics, "examples" (train/val/test
                                      counts and the train/val pools they came from), early
                                      stopping ("patience", "stopped_early", "stop_reason");
                                      written LAST, atomically
        mc_eval.json                  written by `dropcli eval`
        *.png, report.md, report.html written by `dropcli plot` (mc_eval.png by `dropcli eval`)
      <sweep-name>-<hash8>/           one sweep; hash8 over its base config and grid
        sweep.yaml                    the grid and the resolved run list
        <name>-<labels>-<hash8>/ ...  its runs, same layout; labels: the values of the axes
                                      that vary, e.g. keep0.25-seed2 (``sweep.grid.run_folder``)
        summary.csv                   one row per run (for pandas), rewritten after each run
        *.png, report.md, report.html written by `dropcli plot`
      report.md, report.html          index over everything, written by `dropcli plot`
      .locks/<hash8>                  held while any folder here trains that run

A run's identity is the hash8 that ends its folder's name (``run_key``): a run trained by
``train`` (``digits-1a2b3c4d``) and the same run in a sweep (``digits-keep0.5-1a2b3c4d``)
share their lock and are each other's peers for reuse (below).

Version 1 (dropcli before run folders said what varies): every run folder was
``<name>-<hash8>`` and locks ``.locks/<name>-<hash8>``. No migration is needed: readers
take any folder name, and a sweep keeps the version it was created with: resumed by this
version, a version 1 sweep keeps each run's folder (found by its hash8) and names the runs
it adds ``<name>-<hash8>`` too, so that an older dropcli resuming it finds them. Two
folders of one run in a sweep (two versions that named it differently) are read as one,
with a warning, so that no run counts twice.

A run's status is read from its files, in this order:

    completed | diverged | interrupted | failed   summary.json says so (diverged: the epoch
                                                  is in "diverged_epoch" and "reason"), and
                                                  the files it promises are sound (below)
    corrupt     summary.json exists but is not a JSON object with one of those statuses,
                or the run is damaged: its files do not hold what summary.json promises
    running     the lock names a live process on this host
    crashed     the lock names a dead process (killed, power cut), or there is no lock
                but metrics.jsonl exists: training started and never wrote its summary
    pending     config.yaml only (planned, or stopped before training began)

What a summary.json with a final status promises, checked whenever a status is read
(cheaply: one small YAML file, file sizes, a zip's directory; no array is loaded): always,
config.yaml is a YAML mapping; with completed or diverged (training ran to its end), also
metrics.jsonl is not empty, params.npz is a zip archive with a ``<name>.npy`` member for
every array of the config's network (from ``model.hidden_dims`` and
``model.normalization``), and expectation.json is a JSON object. The first file that is
not ("params.npz: empty") makes the run damaged, so corrupt; readers keep its summary's
numbers, with that as its "reason". A corrupt run is trained again by the next sweep and
by `dropcli train` of its config, and never reused (below). Damage within a member
(flipped bits) is not looked for: `dropcli eval`, which loads the arrays, reports it.

Writes, in order: config.yaml and meta.json, then metrics.jsonl appended and fsynced per
record, params.npz and expectation.json, and summary.json last. Every whole-file write is
atomic (temporary file, fsync, rename, mode 0644); so a crash at any moment leaves
readable files, and at most a torn last line of metrics.jsonl. Every JSON file carries
``schema_version``. Readers are tolerant: a torn last line is skipped and reported, an
unreadable file, a file dropcli does not know or a summary value of the wrong type
(left out) is a warning in ``RunRecord.warnings``, unknown keys are ignored.

Exclusion: a process trains a run only while it holds two ``flock`` locks, on
``.locks/<run_id>`` in the runs folder (one run id is trained by one process at a time,
whichever folder it is in) and on the run's ``lock`` (which also names the pid and host
for the status above). The kernel drops both when the process dies, however it dies,
so a stale lock never blocks anyone and two live processes never both win.

Runs trained elsewhere (``--executor dask``): the sweep's process claims the run and
writes config.yaml when it submits it; the worker trains in its own scratch folder and
sends the files back, which the sweep's process writes (each atomically, summary.json
last). Meanwhile the run reads ``running`` and its lock names the sweep's process;
meta.json names the worker's host.

Reuse: a run's hash8 is the hash of the resolved config and seed, and training is
deterministic, so a sweep that finds the run it is about to train already finished in
another folder of the same runs folder (any folder name ending in its hash8) links that
folder's files in (hard links, or
copies where links are impossible) instead of training it again; its summary.json then
says ``"reused_from": "<folder>/<run_id>"``. Only a sound run (not corrupt) is linked in;
a linked file damaged in place is damaged in both folders, and both read corrupt.

Where the rest lives: reading and writing files (``store.files``), reading runs
(``store.runs``), what a summary promises (``store.damage``), sweeps (``store.sweeps``),
locks (``store.locks``), reuse (``store.reuse``).
"""

from __future__ import annotations

import re
from pathlib import Path

from dropcli.errors import RunStoreError

SCHEMA_VERSION = 2

# --- the names of the store's files: every list of them in dropcli is drawn from here ---------

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
LOCK_FILE = "lock"
METRICS_FILE = "metrics.jsonl"
PARAMS_FILE = "params.npz"
EXPECTATION_FILE = "expectation.json"
SUMMARY_FILE = "summary.json"
MC_EVAL_FILE = "mc_eval.json"
REPORT_MD, REPORT_HTML = "report.md", "report.html"
SWEEP_FILE = "sweep.yaml"
SWEEP_CSV = "summary.csv"
LOCKS_DIR = ".locks"

# What training leaves in a run folder, in the order it writes them (summary.json last).
TRAINED_FILES = (CONFIG_FILE, META_FILE, METRICS_FILE, PARAMS_FILE, EXPECTATION_FILE, SUMMARY_FILE)
# What an attempt writes after config.yaml and meta.json: cleared before it starts,
# summary.json first, so that an attempt cleared halfway never pairs an old summary with
# files it does not describe.
RESULT_FILES = (SUMMARY_FILE, METRICS_FILE, PARAMS_FILE, EXPECTATION_FILE)
# What a run folder may hold; anything else (but *.png) is reported as a foreign file.
RUN_FILES = frozenset({*TRAINED_FILES, LOCK_FILE, MC_EVAL_FILE, REPORT_MD, REPORT_HTML})

# summary.json's objects of numbers, by key (written by ``experiment.run``, checked when read).
SUMMARY_NUMBERS = {"final": ("epoch", "train_acc", "val_acc", "train_loss", "val_loss"),
                   "best": ("epoch", "val_acc", "train_acc", "val_loss"), "test": ("acc", "loss")}

# --- statuses -------------------------------------------------------------------------------

FINAL_STATUSES = ("completed", "diverged", "interrupted", "failed")
# Statuses of training that ran to its end: it wrote params.npz and expectation.json before summary.json.
TRAINED = ("completed", "diverged")

# --- folders ----------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_key(folder: str) -> str:
    """A run's identity from its folder's name: the hash8 after its last ``-`` (the folder
    names of one run differ by what else they show: ``digits-1a2b3c4d``,
    ``digits-keep0.5-seed2-1a2b3c4d``)."""
    return folder.rsplit("-", 1)[-1]


def safe_name(name: str) -> str:
    """A folder name that stays inside the runs folder: no separators, no leading dots,
    no control characters, at most 64 characters."""
    cleaned = _UNSAFE.sub("-", name).strip("-.")[:64]
    if not cleaned:
        raise RunStoreError(f"name {name!r} has no usable characters; use letters, digits, '.', '_' or '-'")
    return cleaned
