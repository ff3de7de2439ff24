#!/usr/bin/env python
"""Write dropcli's built-in MNIST-1D (dropcli/data/mnist1d.npz and mnist1d.json) from the
reference generator.

Run by a maintainer, never at run time; the reference generator (PyPI ``mnist1d``,
Apache-2.0, which needs scipy and requests) comes with the test extra:

    pip install -e '.[test]' && python scripts/make_mnist1d.py

It writes the reference's default dataset, ``make_dataset(get_dataset_args())`` (seed 42:
4,000 training and 1,000 test examples of 40 features), in the reference's order, X rounded
to float32 and y stored as uint8, and beside it the provenance: the generator's version and
arguments, the versions it ran with, and the SHA-256 digests
(``dropcli.data.mnist1d.array_digest``) of the reference's arrays and of the stored ones.
The output depends only on the generator's version: running it again gives the same digests.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset

from dropcli.data.mnist1d import ARRAYS, NUM_VAL, PROVENANCE, RESOURCE, array_digest

DATA_DIR = Path(__file__).resolve().parents[1] / "dropcli" / "data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR, help=f"where to write (default {DATA_DIR})")
    out_dir = parser.parse_args(argv).out_dir

    args = get_dataset_args(as_dict=True)
    ds = make_dataset(get_dataset_args())  # make_dataset reads attributes: a fresh ObjectView
    reference = {"X_train": ds["x"], "y_train": ds["y"], "X_test": ds["x_test"], "y_test": ds["y_test"]}
    stored = {name: a.astype(np.float32 if name.startswith("X") else np.uint8) for name, a in reference.items()}
    assert all(np.array_equal(stored[k], reference[k]) for k in ("y_train", "y_test")), "labels beyond uint8"
    error = max(float(np.abs(stored[k] - reference[k]).max()) for k in ("X_train", "X_test"))

    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **stored)
    (out_dir / RESOURCE).write_bytes(buffer.getvalue())
    with np.load(out_dir / RESOURCE, allow_pickle=False) as z:  # what a reader gets back is what we hash
        assert array_digest({k: z[k] for k in ARRAYS}) == array_digest(stored)

    n_train = len(stored["X_train"]) - NUM_VAL
    record = {
        "dataset": "MNIST-1D",
        "reference": 'S. Greydanus, "Scaling down deep learning", arXiv:2011.14439, 2020',
        "license": "Apache-2.0",
        "source": "https://github.com/greydanus/mnist1d",
        "generator": {"package": "mnist1d", "version": metadata.version("mnist1d"),
                      "call": "make_dataset(get_dataset_args())", "numpy": np.__version__,
                      "scipy": metadata.version("scipy"), "python": platform.python_version()},
        "args": {k: v for k, v in args.items() if k != "url"},  # url: where get_dataset downloads a pickle
        "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in stored.items()},
        "class_counts": {k: np.bincount(stored[k], minlength=10).tolist() for k in ("y_train", "y_test")},
        "digest": "SHA-256 over name, dtype.str, shape and C-order bytes of X_train, y_train, X_test, y_test, "
                  "each followed by a NUL byte (dropcli.data.mnist1d.array_digest)",
        "sha256_reference": array_digest(reference),  # float64 X, int64 y, as the generator returns them
        "sha256": array_digest(stored),
        "max_abs_error": error,  # of X's rounding to float32
        "split": {"train": f"reference training rows 0..{n_train - 1}",
                  "val": f"reference training rows {n_train}..{n_train + NUM_VAL - 1}",
                  "test": "the reference's test rows"},
    }
    (out_dir / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{out_dir / RESOURCE}: mnist1d {record['generator']['version']}, sha256 {record['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
