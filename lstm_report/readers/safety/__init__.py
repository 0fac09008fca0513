"""The hostile-file rules: what a model file may do, and the inert unpickler."""
