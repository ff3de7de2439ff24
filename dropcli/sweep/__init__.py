"""Sweeps: the grid of configs (``grid``; from command-line flags: ``flags``), running it
(``run``) into one sweep folder with its summary.csv (``summary``), and the executors that
train it (serial, local processes, dask), all writing the same runs store."""
