"""A run's trained net in params.npz: its parameters and batchnorm state as plain arrays
(no pickles), saved atomically and loaded only after each array's header is checked
against the run's config."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dropcli.config import Config
from dropcli.data.npz import npy_header
from dropcli.errors import RunStoreError
from dropcli.experiment.build import build_net
from dropcli.nn import FullyConnectedNet
from dropcli.store.files import atomic_file
from dropcli.store.layout import PARAMS_FILE


def save_params(run_dir: Path, net: FullyConnectedNet) -> None:
    """Write ``net``'s parameters and batchnorm state to the run's params.npz, atomically."""
    with atomic_file(Path(run_dir) / PARAMS_FILE) as f:
        np.savez(f, **net.params, **net.bn_state)


def load_params(run_dir: Path, config: Config, input_dim: int, num_classes: int) -> FullyConnectedNet:
    """Rebuild a run's trained net from params.npz (no pickles); RunStoreError if the file
    is unreadable or does not match the run's config. Each array's shape is read from its
    .npy header and checked before the array is read, so a forged header allocates nothing."""
    path = Path(run_dir) / PARAMS_FILE
    net = build_net(config, input_dim, num_classes)
    if path.is_file() and not zipfile.is_zipfile(path):  # numpy would blame pickles, or hand back one array
        raise RunStoreError(f"{path}: not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            for store in (net.params, net.bn_state):
                for k in store:
                    if k not in z.files:
                        raise RunStoreError(f"{path}: has no {k!r}; it does not belong to this run's config")
                    shape, dtype, _, _ = npy_header(z.zip, k)
                    if shape != store[k].shape or dtype.kind != "f":
                        raise RunStoreError(f"{path}: {k} is {dtype}{list(shape)}, the config needs "
                                            f"{store[k].dtype}{list(store[k].shape)}")
                    store[k] = z[k].astype(store[k].dtype, copy=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RunStoreError(f"{path}: cannot read ({type(e).__name__}: {e})".splitlines()[0]) from None
    return net
