"""Bernoulli(keep_prob) draws from the generator's raw bits: the decisions of
``rng.random(shape, dtype=dtype) < keep_prob``, with the generator left in the same state,
in about half the time. ``dropout.draw_mask`` draws its masks here.

It is a speed-up that relies on NumPy's internal bit layout, kept apart so the dropout
layers read as their table. ``random`` makes a float32 uniform from a 32-bit word w as
(w >> 8) / 2**24 and a float64 one from a 64-bit word as (w >> 11) / 2**53, so
``u < keep_prob`` is ``w < T`` for an integer T, and the words can be compared without
making floats. PCG64 hands out 64-bit words; a 32-bit request takes the low half and keeps
the high half for the next one, which ``_words32`` reproduces. The masks, and so training
runs, are the same bits either way (tests/test_fast_path.py holds it to ``rng.random``);
other bit generators and dtypes take the plain route.

What it buys, measured on the project's 2-core machine (one core, float32, keep 0.5): a
(200, 1024) unit mask 0.46 ms against 0.86 ms, a (3072, 1024) DropConnect mask 12 ms
against 16 ms; of a training epoch of benchmarks/bench.py's [1024, 1024] net, 0.5 % with
unit dropout and 3.6 % with DropConnect (nothing measurable at [100, 100]).
"""

from __future__ import annotations

import math

import numpy as np


def draw_keep(shape, keep_prob, rng, dtype):
    """Booleans, True with probability keep_prob: exactly ``rng.random(shape, dtype=dtype) < keep_prob``."""
    dtype = np.dtype(dtype)
    if not isinstance(rng.bit_generator, np.random.PCG64) or dtype not in (np.float32, np.float64):
        return rng.random(shape, dtype=dtype) < keep_prob
    bits, size = (24, 32) if dtype == np.float32 else (53, 64)
    # T = how many of the 2**bits uniforms are < keep_prob, with NumPy's own comparison.
    guess = math.ceil(float(keep_prob) * 2**bits)
    near = (np.arange(guess - 1, guess + 2, dtype=np.float64) / 2**bits).astype(dtype)
    threshold = guess - 1 + int(np.count_nonzero(near < keep_prob))
    n = math.prod(shape)
    words = _words32(rng.bit_generator, n) if size == 32 else rng.bit_generator.random_raw(n)
    if threshold == 2**bits:  # every uniform is below keep_prob (which rounds to 1 in dtype)
        return np.ones(shape, bool)
    return (words < threshold << (size - bits)).reshape(shape)


def _words32(bit_generator, n):
    """The next n 32-bit words of a PCG64 generator, in the order ``next_uint32`` gives them."""
    if n == 0:
        return np.zeros(0, np.uint32)
    state = bit_generator.state
    pending = state["has_uint32"]
    rest = n - pending
    raw = bit_generator.random_raw((rest + 1) // 2)
    words = raw.view(np.uint32)[:rest]  # low half first (little-endian view)
    if pending:
        words = np.concatenate(([state["uinteger"]], words)).astype(np.uint32)
    if pending or rest % 2:  # what next_uint32 would have kept for the next request
        state = bit_generator.state
        state["has_uint32"], state["uinteger"] = rest % 2, int(raw[-1] >> 32) if rest % 2 else 0
        bit_generator.state = state
    return words
