"""Data: the built-in and downloadable datasets and the npz reader, split, subsampled and
standardised into float arrays (``load.load_data``)."""
