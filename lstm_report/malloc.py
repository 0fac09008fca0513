"""Freed arrays go back to the system: a fixed glibc mmap threshold, for the CLI process."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterable
from pathlib import Path

MMAP_THRESHOLD = 1 << 20
"""Blocks of 1 MiB or more get a mapping of their own, unmapped when freed."""

LARGE_INPUT = 32 << 20
"""From this size of the largest input file, freed memory goes back at once. Below it
glibc's own adaptive thresholds are faster: a fixed threshold also fixes the heap's trim
threshold, and a series of small checkpoints, whose units allocate and free many 1 to
2 MiB arrays, then spent a third of its time in the kernel mapping them afresh
(measured: 50 checkpoints of 2×LSTM(256), 5.9 s of system time against 1.7 s)."""


def map_large_blocks_for(paths: Iterable[Path]) -> bool:
    """map_large_blocks() when the largest of ``paths`` holds at least LARGE_INPUT bytes."""
    largest = 0
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            largest = max(largest, os.stat(path).st_size)
    return largest >= LARGE_INPUT and map_large_blocks()


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
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # glibc's malloc.h
    return bool(mallopt(ctypes.c_int(m_mmap_threshold), ctypes.c_int(MMAP_THRESHOLD)) == 1)
