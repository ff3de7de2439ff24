"""MNIST-1D, built in: the reference generator's default 5,000 examples, shipped as arrays.

MNIST-1D (S. Greydanus, "Scaling down deep learning", arXiv:2011.14439, 2020; its later
versions with D. Kobak; code and data Apache-2.0) is a procedurally generated 1-D analogue
of MNIST: 40 numbers per example, 10 classes, made so that small models separate clearly
(the paper: logistic regression ~32%, MLP ~68%, CNN ~94% test accuracy). Its reference generator (PyPI ``mnist1d``) needs scipy and requests, so
dropcli ships its output instead, written by ``scripts/make_mnist1d.py``:

    mnist1d.npz   X_train (4000, 40) float32, y_train (4000,) uint8,
                  X_test (1000, 40) float32, y_test (1000,) uint8:
                  ``make_dataset(get_dataset_args())`` (seed 42) in the reference's own order,
                  X rounded from float64 to float32 (error below 3e-7)
    mnist1d.json  provenance: the generator's version and arguments, the array digests

The split is the same for every seed: train = reference training rows 0..2999, validation
= rows 3000..3999 (like mnist's: the last rows of the official training set), test = the
reference's 1,000 test rows, never used for selection.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np

ARRAYS = ("X_train", "y_train", "X_test", "y_test")  # the resource's arrays, in digest order
NUM_VAL = 1000  # the last 1,000 reference training rows are the validation split
RESOURCE, PROVENANCE = "mnist1d.npz", "mnist1d.json"  # in the dropcli.data package


def read_arrays() -> dict[str, np.ndarray]:
    """The shipped arrays, by the names in ``ARRAYS``."""
    with resources.files("dropcli.data").joinpath(RESOURCE).open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return {name: z[name] for name in ARRAYS}


def provenance() -> dict:
    """The provenance record written with the arrays (see ``scripts/make_mnist1d.py``)."""
    return json.loads(resources.files("dropcli.data").joinpath(PROVENANCE).read_text("utf-8"))


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over each array of ``ARRAYS``, in order: its name, ``dtype.str``, shape and
    C-order bytes, each followed by a NUL byte. Unlike the .npz file's own hash it does not
    depend on zip timestamps or compression, only on the values."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        for part in (name.encode(), a.dtype.str.encode(), repr(tuple(a.shape)).encode(), a.tobytes()):
            h.update(part)
            h.update(b"\0")
    return h.hexdigest()
