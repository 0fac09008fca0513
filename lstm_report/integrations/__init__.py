"""Where users already work: the Keras callback, notebooks, experiment trackers."""
