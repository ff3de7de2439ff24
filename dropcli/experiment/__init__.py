"""One run, end to end: config -> data -> net -> training -> the runs store.

``run.train_run`` is what both ``dropcli train`` and every sweep worker call; ``build``
makes a run's parts from its config, ``params`` saves and loads its trained net,
``meta`` writes what meta.json records, ``threads`` fixes its BLAS threads, ``remote``
trains it on a machine without the runs folder (dask), and ``evaluate`` measures a
stored run (``dropcli eval``).
"""
