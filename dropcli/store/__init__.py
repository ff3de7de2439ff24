"""The runs store: the on-disk contract of run and sweep folders (``layout``), its files
(``files``), reading runs and sweeps (``runs``, ``damage``, ``sweeps``, ``listing``), locks
and reuse."""
