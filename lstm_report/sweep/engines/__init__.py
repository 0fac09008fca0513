"""Where a sweep's reports are built: the local process pool or a Dask cluster."""
