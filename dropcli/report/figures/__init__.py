"""The PNG figures of runs, sweeps and checks (matplotlib, Agg)."""
