"""Keras files: ``.keras`` zips and folders, HDF5 (full, weights-only), ``.npz``, Keras itself."""
