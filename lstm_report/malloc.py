"""Freed arrays go back to the system: a fixed glibc mmap threshold, for the CLI process."""

from __future__ import annotations

import sys

MMAP_THRESHOLD = 1 << 20
"""Blocks of 1 MiB or more get a mapping of their own, unmapped when freed."""


def map_large_blocks() -> bool:
    """Stop glibc from keeping freed numpy temporaries.

    glibc raises its mmap threshold each time a mapped block is freed (up to 32 MiB), after
    which blocks of that size come from the heap and the threads' arenas and stay there
    when freed. The analysis frees many 8 MiB float64 temporaries on several threads:
    measured on the 2×LSTM(1024) report (figures then drawn in forked workers), the CLI's
    peak RSS went from 284 MiB to 183 MiB with the threshold fixed. Process-wide, so only
    the CLI calls it; a no-op where malloc is not glibc's. Returns whether it was set.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # glibc's malloc.h
    return bool(mallopt(ctypes.c_int(m_mmap_threshold), ctypes.c_int(MMAP_THRESHOLD)) == 1)
