"""Model file -> ModelWeights: one dispatch table (dispatch.py), one reader folder per framework.

The package imports nothing itself: readers.formats is read by the config and by
``lstm-report --help``, which must not pay for numpy."""
