"""Sweeps: the grid of configs (``grid``) and the executors that train it (serial,
local processes, dask), all writing the same runs store."""
