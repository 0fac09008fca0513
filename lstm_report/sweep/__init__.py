"""Many reports at once (``lstm-report batch``): planning, running, the index, the manifest."""
