"""A checkpoint series one checkpoint at a time: work units, and a cache by content hash.

Every checkpoint of a series (a model entry whose path is a glob or a list) is reduced to
its per-gate figures (analysis.series: norms, the spectral radius of U_g, the median forget
timescale, the relative change since the previous checkpoint). A work unit, ``PointUnit``
(units.py), is a run of consecutive checkpoints that need reducing, read in turn, each once
(plus the checkpoint before the run, for its first change): ``build`` runs them on a local
pool (sweep.engines.local.LocalPool), ``batch`` on its engine (the local pool or Dask), and
either runs them here when there are few (runners.py; cost.py decides). What a unit
computes for a checkpoint does not depend on how the series was cut into units
(schedule.py).

A unit's result is cached (store.py), keyed (keys.py) by the sha256 of the checkpoint's
bytes, the sha256 of the previous checkpoint's bytes (the relative change depends on it),
lstm-report's version and the options that change what is read (reader, unsafe,
activations). An entry holds the figures of each layer computed so far (a config's
``layers:`` decides which are needed) and the list of every recurrent layer the checkpoint
has. Entries are JSON (codec.py), sealed with an HMAC under this user's random key
(lstm_report.fileio.cachekey), validated on reading (anything unexpected, or a wrong MAC:
ignored and recomputed) and written atomically, never through a symbolic link.

Beside the entries, the cache remembers each checkpoint's sha256 by its folder, name and
``stat`` (size, modification and change times in ns, inode): a rerun hashes only files
that are new or changed (a write changes the change time, which no user can set back),
sealed the same way (the memo itself: lstm_report.fileio.digests).
"""
