"""Reports and figures, read from the runs store only (``plot.plot_all``)."""
