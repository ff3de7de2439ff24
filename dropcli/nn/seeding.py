"""One seed, independent random streams.

``numpy.random.SeedSequence(seed)`` spawns one child per purpose, always in the order of
``STREAMS``. Because the streams are independent, switching dropout on (which draws
masks) or changing keep_prob changes nothing about the initial weights, the data split
or the batch order: runs that differ only in dropout are a fair comparison. New
purposes are appended at the end so existing streams never change.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("init", "data", "order", "dropout", "eval")


def streams(seed: int | None) -> dict[str, np.random.Generator]:
    """Independent generators keyed by purpose (see ``STREAMS``)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.Generator(np.random.PCG64(c)) for name, c in zip(STREAMS, children)}
