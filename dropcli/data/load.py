"""Datasets: raw arrays in, standardised train / val / test splits out.

A loader turns ``data`` config into raw ``(X, y)`` pools; ``load_data`` then subsamples
(``num_train`` / ``num_val``), standardises every split with the *training* mean and
standard deviation, and casts to the training dtype. A new dataset is one function in
``LOADERS`` that returns a ``RawSplits``.

mnist1d: MNIST-1D's 5,000 examples of 40 features (``dropcli.data.mnist1d``), shipped
inside dropcli. Train = the reference generator's training rows 0..2999, validation = rows
3000..3999, test = its 1,000 test rows; the same for every seed.

digits: scikit-learn's ``load_digits`` (the UCI optical digits test set, 1797 images of
8x8 pixels valued 0..16, 10 classes, CC BY 4.0), shipped inside dropcli as
``dropcli/data/digits.npz`` so that nothing is downloaded. It has no official split, so
one is drawn from the run's seed: 1000 training, 500 validation, 297 test examples.

mnist, fashion-mnist: the official 60,000 training and 10,000 test images; the last
10,000 training images are the validation split (50,000 / 10,000 / 10,000), the same for
every seed. cifar10: as cs231n's ``get_CIFAR10_data``: training images 0..48,999,
validation 49,000..49,999, and the 10,000 test images. Where their files come from, and
the decoded uint8 cache they are memory-mapped from, is ``dropcli.data.datasets``' business.

npz: your arrays (``dropcli.data.npz``), split 80 / 10 / 10 by the seed if the file
holds one pool ``X, y``.

``num_train`` / ``num_val`` subsamples are stratified (each class keeps its share) for
every dataset but digits, whose plain draw is kept so that its runs stay reproducible.
Images (mnist, fashion-mnist, cifar10) are centred per pixel and scaled by one standard
deviation shared by all pixels; mnist1d, digits and npz by each feature's own.
Standardising works in blocks of rows, so that the float64 arithmetic never holds more
than a few MB beyond the float output itself: for the whole of CIFAR-10, peak memory
stays within twice the float32 training array.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from dropcli.data import mnist1d
from dropcli.errors import DataError


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
    stratified: bool = True  # subsample num_train / num_val class by class
    per_feature_scale: bool = True  # divide by each feature's std; False: by one std for all (images)


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
    pool: dict  # {"train": N, "val": N}: what the dataset offered before num_train / num_val

    @property
    def input_dim(self) -> int:
        return self.X_train.shape[1]

    def sizes(self) -> dict:
        return {
            "train": len(self.X_train),
            "val": len(self.X_val),
            "test": 0 if self.X_test is None else len(self.X_test),
        }

    def examples(self) -> dict:
        """What a run trained, validated and tested on, and the pools the first two were
        drawn from (summary.json's ``examples``): {"train", "val", "test", "train_pool", "val_pool"}."""
        return {**self.sizes(), "train_pool": self.pool["train"], "val_pool": self.pool["val"]}


DIGITS_SPLIT = {"train": 1000, "val": 500}  # the rest (297) is the test split
NPZ_SPLIT = {"val": 0.1, "test": 0.1}  # fractions of an npz pool X, y; the rest is training


def _refuse_path(data_config) -> None:
    """A built-in dataset reads no file, and a file the user meant to train on must not be ignored."""
    if data_config.path is not None:
        raise DataError(f"data.path: {data_config.path} is set but data.dataset is {data_config.dataset}, which "
                        f"is built in and reads no file; set data.dataset to npz (or mnist, fashion-mnist, "
                        f"cifar10) to read it, or remove data.path", key="data.path")


def load_mnist1d_raw(data_config, rng: np.random.Generator, **_) -> RawSplits:
    """The reference's training rows, the last 1,000 as validation, and its test rows."""
    _refuse_path(data_config)
    a = mnist1d.read_arrays()
    n_train = len(a["X_train"]) - mnist1d.NUM_VAL
    y, y_test = a["y_train"].astype(np.int64), a["y_test"].astype(np.int64)
    return RawSplits(a["X_train"][:n_train], y[:n_train], a["X_train"][n_train:], y[n_train:],
                     a["X_test"], y_test, num_classes=10)


def load_digits_raw(data_config, rng: np.random.Generator, **_) -> RawSplits:
    _refuse_path(data_config)
    with resources.files("dropcli.data").joinpath("digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            X, y = z["X"], z["y"].astype(np.int64)
    order = rng.permutation(len(X))
    n_tr, n_va = DIGITS_SPLIT["train"], DIGITS_SPLIT["val"]
    tr, va, te = order[:n_tr], order[n_tr : n_tr + n_va], order[n_tr + n_va :]
    return RawSplits(X[tr], y[tr], X[va], y[va], X[te], y[te], num_classes=10, stratified=False)


def load_catalog_raw(data_config, rng: np.random.Generator, *, cache_dir=None, progress=None) -> RawSplits:
    """mnist, fashion-mnist, cifar10: the official split, validation carved from the end of train."""
    from dropcli.data.datasets import load_arrays

    loaded = load_arrays(data_config.dataset, data_config.path, cache_dir=cache_dir, progress=progress)
    a, n_val = loaded.arrays, loaded.spec.num_val
    n_train = len(a["X_train"]) - n_val
    return RawSplits(  # slices of memory maps: nothing is read yet
        a["X_train"][:n_train], a["y_train"][:n_train], a["X_train"][n_train:], a["y_train"][n_train:],
        a["X_test"], a["y_test"], num_classes=loaded.spec.num_classes, per_feature_scale=False,
    )


def load_npz_raw(data_config, rng: np.random.Generator, **_) -> RawSplits:
    from dropcli.data.datasets import read_npz

    if data_config.path is None:
        raise DataError("data.path: npz reads your own file; set data.path to a .npz with "
                        "X_train, y_train, X_val, y_val [, X_test, y_test], or X, y", key="data.path")
    a, k = read_npz(data_config.path)
    if "X" not in a:
        return RawSplits(a["X_train"], a["y_train"], a["X_val"], a["y_val"],
                         a.get("X_test"), a.get("y_test"), num_classes=k)
    order = rng.permutation(len(a["X"]))
    n_va, n_te = (max(1, round(f * len(order))) for f in (NPZ_SPLIT["val"], NPZ_SPLIT["test"]))
    te, va, tr = order[:n_te], order[n_te : n_te + n_va], np.sort(order[n_te + n_va :])
    X, y = a["X"], a["y"]
    return RawSplits(X[tr], y[tr], X[np.sort(va)], y[np.sort(va)], X[np.sort(te)], y[np.sort(te)], num_classes=k)


LOADERS = {
    "mnist1d": load_mnist1d_raw,
    "digits": load_digits_raw,
    "mnist": load_catalog_raw,
    "fashion-mnist": load_catalog_raw,
    "cifar10": load_catalog_raw,
    "npz": load_npz_raw,
}


def _subsample(X, y, n, key, name, rng, stratified=False):
    if n is None:
        return X, y
    if n > len(X):
        split = "training" if key == "num_train" else "validation"
        raise DataError(
            f"data.{key}: {n} is more than the {len(X)} {split} examples {name} has; "
            f"use at most {len(X)} (or null for all)", key=f"data.{key}",
        )
    if not stratified:
        keep = np.sort(rng.choice(len(X), size=n, replace=False))
    elif n == len(X):
        return X, y
    else:
        keep = stratified_indices(np.asarray(y), n, rng)
    return X[keep], y[keep]


def stratified_indices(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sorted indices drawn without replacement, each class in proportion to its count.

    Each class gets the floor of its share; the examples left over go to the classes
    with the largest remainders (ties broken at random).
    """
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / len(y)
    take = np.floor(exact).astype(np.int64)
    short = n - int(take.sum())
    order = np.lexsort((rng.random(len(classes)), -(exact - take)))
    take[order[:short]] += 1
    picks = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take) if k]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)


def _blocks(X, budget_bytes: int = 4 << 20):
    """(start, rows, float64 buffer) for each block of X's rows; one buffer of ``budget_bytes``
    is reused, because a fresh temporary per block costs more in page faults than the maths."""
    rows = max(1, budget_bytes // (8 * max(1, X.shape[1])))
    buf = np.empty((min(rows, len(X)), X.shape[1]), np.float64)
    for lo in range(0, len(X), rows):
        block = X[lo : lo + rows]
        yield lo, block, buf[: len(block)]


def training_statistics(X, per_feature: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (float64), in blocks of rows.

    Constant features get std 1, so that standardising centres but does not scale them.
    ``per_feature=False`` gives every feature the same std, the root mean square of the
    features' stds: pixels keep their relative scale, and a border pixel that is almost
    always 0 is not blown up to hundreds of standard deviations where it is not.
    """
    mean = X.mean(axis=0, dtype=np.float64)  # a buffered reduction: no float64 copy of X
    if len(X) * X.shape[1] <= (1 << 20):
        std = X.std(axis=0, dtype=np.float64)  # small data (digits): exactly numpy's std
    else:  # the second pass over blocks: sum of squared deviations
        sq = np.zeros(X.shape[1], np.float64)
        for _, block, d in _blocks(X):
            np.subtract(block, mean, out=d)
            sq += np.einsum("ij,ij->j", d, d)
        std = np.sqrt(sq / len(X))
    if not per_feature:
        std = np.full_like(std, np.sqrt(np.mean(std**2)))
    std[std == 0] = 1.0
    return mean, std


def standardise(X, mean, std, dtype) -> np.ndarray:
    """``((X - mean) / std).astype(dtype)``, computed in float64 one block of rows at a time."""
    out = np.empty(X.shape, dtype=dtype)
    for lo, block, d in _blocks(X):
        np.subtract(block, mean, out=d)
        d /= std
        out[lo : lo + len(block)] = d
    return out


def load_data(data_config, rng: np.random.Generator, dtype=np.float32, *, cache_dir=None, progress=None) -> Splits:
    """Load, subsample and standardise the dataset that ``data_config`` names.

    ``rng`` is the run's data stream: it draws the split (where the dataset has none)
    and the subsamples, so the same seed gives the same examples. ``cache_dir`` and
    ``progress(file, done, total)`` go to the download, for the datasets that have one.
    """
    name = data_config.dataset
    try:
        loader = LOADERS[name]
    except KeyError:
        raise DataError(f"data.dataset: unknown dataset {name!r}; expected one of {', '.join(LOADERS)}",
                        key="data.dataset") from None
    raw = loader(data_config, rng, cache_dir=cache_dir, progress=progress)
    X_tr, y_tr = _subsample(raw.X_train, raw.y_train, data_config.num_train, "num_train", name, rng, raw.stratified)
    X_va, y_va = _subsample(raw.X_val, raw.y_val, data_config.num_val, "num_val", name, rng, raw.stratified)

    # Standardise with training statistics only; constant features (digits' blank border
    # pixels) are centred but not scaled.
    mean, std = training_statistics(X_tr, raw.per_feature_scale)

    def prep(X):
        return None if X is None else standardise(X, mean, std, dtype)

    return Splits(
        name=name,
        X_train=prep(X_tr), y_train=np.asarray(y_tr, dtype=np.int64),
        X_val=prep(X_va), y_val=np.asarray(y_va, dtype=np.int64),
        X_test=prep(raw.X_test), y_test=None if raw.y_test is None else np.asarray(raw.y_test, dtype=np.int64),
        num_classes=raw.num_classes, pool={"train": len(raw.X_train), "val": len(raw.X_val)},
    )


def inspect_data(dataset: str, path=None, seed: int = 0, *, cache_dir=None, progress=None) -> dict:
    """Splits, shapes and per-class counts of a dataset as ``load_data`` would see it (all of it).

    Reads ``path`` (or the cache, downloading if needed) and validates every file on the
    way; for `dropcli data info NAME --path ...`.
    """
    from dropcli.config.schema import DataConfig
    from dropcli.data.datasets import CATALOG, summary

    config = DataConfig(dataset=dataset, path=None if path is None else str(path), num_train=None, num_val=None)
    raw = LOADERS[dataset](config, np.random.default_rng(seed), cache_dir=cache_dir, progress=progress)
    names = CATALOG[dataset].class_names if dataset in CATALOG else None
    return summary(raw.X_train, raw.y_train, raw.X_val, raw.y_val, raw.X_test, raw.y_test, names,
                   num_classes=raw.num_classes)
