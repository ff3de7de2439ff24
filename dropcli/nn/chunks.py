"""Element-wise passes over big arrays, in cache-sized pieces.

An optimizer step or the L2 term is a few NumPy passes over a layer's weights. Over the
whole array each pass streams it from memory; chunk by chunk, the working set (the
weights, their gradient, the optimizer's slots and a scratch buffer) stays in cache, so
each array streams from memory once per step, and the scratch buffer is one chunk, not a
full-size temporary.
"""

from __future__ import annotations

# 1 MB per float32 array: the working set of an Adam chunk (5 arrays) stays in L3, and a
# step makes 16 NumPy calls per pass over 4.2 M parameters rather than 128. Measured on
# the project's 2-core machine (1 MB L2 per core, 32 MB L3), Adam over 4.2 M parameters:
# 8.1 ms per step at 2**15, 7.5 at 2**17, 7.0 at 2**18 and 2**19, 7.5 at 2**20.
CHUNK = 1 << 18


def chunks(size: int) -> list[slice]:
    """Slices that cover ``range(size)`` in pieces of at most CHUNK elements."""
    return [slice(lo, min(lo + CHUNK, size)) for lo in range(0, size, CHUNK)]
