"""Datasets: raw arrays in, standardised train / val / test splits out.

A loader turns ``data`` config into raw ``(X, y)`` pools; ``load_data`` then subsamples
(``num_train`` / ``num_val``), standardises every split with the *training* mean and
standard deviation, and casts to the training dtype. A new dataset is one function in
``LOADERS`` that returns a ``RawSplits``.

digits: scikit-learn's ``load_digits`` (the UCI optical digits test set, 1797 images of
8x8 pixels valued 0..16, 10 classes, CC BY 4.0), shipped inside dropcli as
``resources/digits.npz`` so that nothing is downloaded. It has no official split, so
one is drawn from the run's seed: 1000 training, 500 validation, 297 test examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class RawSplits:
    """Unstandardised pools to subsample from; labels are integers in [0, num_classes)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int


@dataclass(frozen=True)
class Splits:
    """What training sees: float arrays standardised with training statistics."""

    name: str
    X_train: np.ndarray  # (N_train, D)
    y_train: np.ndarray  # (N_train,) int64
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int

    @property
    def input_dim(self) -> int:
        return self.X_train.shape[1]

    def sizes(self) -> dict:
        return {
            "train": len(self.X_train),
            "val": len(self.X_val),
            "test": 0 if self.X_test is None else len(self.X_test),
        }


DIGITS_SPLIT = {"train": 1000, "val": 500}  # the rest (297) is the test split


def load_digits_raw(data_config, rng: np.random.Generator) -> RawSplits:
    with resources.files("dropcli").joinpath("resources/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            X, y = z["X"], z["y"].astype(np.int64)
    order = rng.permutation(len(X))
    n_tr, n_va = DIGITS_SPLIT["train"], DIGITS_SPLIT["val"]
    tr, va, te = order[:n_tr], order[n_tr : n_tr + n_va], order[n_tr + n_va :]
    return RawSplits(X[tr], y[tr], X[va], y[va], X[te], y[te], num_classes=10)


LOADERS = {"digits": load_digits_raw}


def _subsample(X, y, n, key, name, rng):
    if n is None:
        return X, y
    if n > len(X):
        split = "training" if key == "num_train" else "validation"
        raise DataError(
            f"data.{key}: {n} is more than the {len(X)} {split} examples {name} has; "
            f"use at most {len(X)} (or null for all)"
        )
    keep = np.sort(rng.choice(len(X), size=n, replace=False))
    return X[keep], y[keep]


def load_data(data_config, rng: np.random.Generator, dtype=np.float32) -> Splits:
    """Load, subsample and standardise the dataset that ``data_config`` names.

    ``rng`` is the run's data stream: it draws the split (where the dataset has none)
    and the subsamples, so the same seed gives the same examples.
    """
    name = data_config.dataset
    try:
        loader = LOADERS[name]
    except KeyError:
        raise DataError(f"data.dataset: unknown dataset {name!r}; expected one of {', '.join(LOADERS)}") from None
    raw = loader(data_config, rng)
    X_tr, y_tr = _subsample(raw.X_train, raw.y_train, data_config.num_train, "num_train", name, rng)
    X_va, y_va = _subsample(raw.X_val, raw.y_val, data_config.num_val, "num_val", name, rng)

    # Standardise with training statistics only; constant features (digits' blank border
    # pixels) are centred but not scaled.
    mean = X_tr.mean(axis=0, dtype=np.float64)
    std = X_tr.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0

    def prep(X):
        if X is None:
            return None
        return ((X - mean) / std).astype(dtype)

    return Splits(
        name=name,
        X_train=prep(X_tr), y_train=y_tr.astype(np.int64),
        X_val=prep(X_va), y_val=y_va.astype(np.int64),
        X_test=prep(raw.X_test), y_test=None if raw.y_test is None else raw.y_test.astype(np.int64),
        num_classes=raw.num_classes,
    )
