"""A restricted unpickler for the CIFAR-10 batches, which are Python pickles.

``pickle.load`` runs whatever callable a file names, so a doctored "data_batch_1" could
run ``os.system``. This unpickler resolves only the globals that genuine batches need to
rebuild a NumPy array; containers, strings, bytes and numbers need no global at all.
Anything else is refused before it is called.
"""

from __future__ import annotations

import codecs
import io
import pickle

import numpy as np

_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array reconstruction, wherever it lives

# What a pickled ndarray asks for; files written before numpy 2 spell it numpy.core.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def _latin1_encode(text, encoding="latin1", *rest):
    """``_codecs.encode``, which Python 3 pickles of bytes (protocol <= 2) call: latin-1 only."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1" or rest:
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED[("_codecs", "encode")] = _latin1_encode


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowlist (the name is in ``.name``)."""

    def __init__(self, name: str):
        super().__init__(f"the pickle asks for {name}, which a data file never needs")
        self.name = name


class TruncatedPickle(pickle.UnpicklingError):
    """The pickle ends before its STOP opcode (an interrupted download or copy)."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def safe_loads(data: bytes):
    """Unpickle ``data`` allowing only dicts, lists, tuples, str, bytes, numbers and arrays.

    Python 2 strings are decoded as latin-1 (as cs231n's loader does), which keeps the raw
    bytes of an array intact. Raises ``pickle.UnpicklingError``: ``RefusedGlobal`` for a
    forbidden callable, ``TruncatedPickle`` for a stream that ends early.
    """
    try:
        return _Restricted(io.BytesIO(data), encoding="latin1").load()
    except (EOFError, pickle.UnpicklingError) as e:
        # "Ran out of input" before the first opcode, or "pickle data was truncated" after it
        if isinstance(e, EOFError) or (type(e) is pickle.UnpicklingError and "truncated" in str(e)):
            raise TruncatedPickle("the pickle ends before its STOP opcode") from None
        raise
