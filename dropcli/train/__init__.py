"""Training: the loop (``loop.fit``) over the network of ``dropcli.nn``, and per-epoch diagnostics."""
