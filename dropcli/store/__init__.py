"""The runs store: the on-disk contract of run and sweep folders (``runs``), locks and reuse."""
