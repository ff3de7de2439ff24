"""A run's parts from its config: its id, its data, its initial net and its training
settings. Errors name the setting to blame, before anything is written."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from dropcli.config import Config, config_hash
from dropcli.config.messages import show
from dropcli.data.load import load_data
from dropcli.errors import ConfigError, DataError, DropcliError
from dropcli.nn import FullyConnectedNet, streams
from dropcli.store.layout import safe_name
from dropcli.train.loop import TrainSettings


def run_id(config: Config) -> str:
    """The run's folder name: ``<name>-<hash8>`` of the resolved config."""
    return f"{safe_name(config.name)}-{config_hash(config)}"


def build_net(config: Config, input_dim: int, num_classes: int, rng_seed=None) -> FullyConnectedNet:
    m, d = config.model, config.dropout
    return FullyConnectedNet(
        hidden_dims=m.hidden_dims, input_dim=input_dim, num_classes=num_classes,
        keep_prob=d.keep_prob, input_keep_prob=d.input_keep_prob, variant=d.variant,
        normalization=None if m.normalization == "none" else m.normalization,
        activation=m.activation, reg=m.reg, weight_scale=m.weight_init,
        dtype=np.dtype(config.train.dtype), seed=config.seed if rng_seed is None else rng_seed,
        placement=d.placement,
    )


def train_settings(config: Config) -> TrainSettings:
    t = config.train
    return TrainSettings(
        optimizer=t.optimizer, learning_rate=t.learning_rate, lr_decay=t.lr_decay,
        batch_size=t.batch_size, epochs=t.epochs, max_norm=config.model.max_norm, patience=t.patience,
    )


def load_run_data(config: Config, rng=None):
    """The run's data (``rng``: its data stream, default a fresh one from its seed);
    DataError naming the data setting if it cannot be loaded."""
    rng = streams(config.seed)["data"] if rng is None else rng
    try:
        return load_data(config.data, rng, dtype=np.dtype(config.train.dtype))
    except (DropcliError, OSError, MemoryError):
        raise
    except Exception as e:  # a loader's surprise is still one line about this setting, not a traceback
        raise DataError(f"{data_setting(config)}: cannot load ({type(e).__name__}: {e})".splitlines()[0],
                        key=data_key(config)) from None


def make_net(config: Config, data) -> FullyConnectedNet:
    """The run's initial net for ``data``; ConfigError naming the setting if it cannot be built."""
    dims = (data.input_dim, *config.model.hidden_dims, data.num_classes)
    count = sum((fan_in + 1) * width for fan_in, width in zip(dims, dims[1:]))  # weights and biases
    dtype = np.dtype(config.train.dtype)
    gib = Decimal(count * dtype.itemsize) / 2**30  # widths are Python ints of any size: no float overflow
    size = f"{gib:,.0f}" if gib < 10**6 else f"{gib:.1e}"
    too_big = ConfigError(
        f"model.hidden_dims {show(list(config.model.hidden_dims))}: the network's {Decimal(count):.2g} parameters "
        f"need {size} GiB as {dtype}, more than this machine's memory; give narrower hidden layers",
        key="model.hidden_dims")
    if count * dtype.itemsize > np.iinfo(np.intp).max:  # NumPy refuses such an array as a bad shape
        raise too_big
    try:
        return build_net(config, data.input_dim, data.num_classes)
    except MemoryError:
        raise too_big from None
    except ValueError as e:
        raise ConfigError(f"{data_setting(config)}: cannot build the network for this data ({data.input_dim} "
                          f"features, {data.num_classes} classes): {e}".splitlines()[0], key=data_key(config)) from None


def data_setting(config: Config) -> str:
    """The setting that chose the data, as errors name it: ``data.path FILE`` or ``data.dataset NAME``."""
    d = config.data
    return f"data.path {d.path}" if d.path else f"data.dataset {d.dataset}"


def data_key(config: Config) -> str:
    """The key of ``data_setting``, for errors to carry: ``data.path`` or ``data.dataset``."""
    return "data.path" if config.data.path else "data.dataset"
