"""Norms that stay finite for finite data: scale by the largest magnitude before squaring.

float64 weights near 1e200 (a legacy .h5 can hold them) overflow ``sum(x * x)``, while
their norm (about 1e200·√n) is an ordinary float. The scale is a power of two, so for
ordinary weights the result is bit for bit the unscaled computation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


def scale_of(x: np.ndarray) -> float:
    """A power of two within a factor 2 of the largest |x| (1.0 for an empty or zero array).

    2**(e - 1), not 2**e: for |x| near the largest float, 2**e itself overflows."""
    if x.size == 0:
        return 1.0
    m = max_abs(x)
    return float(2.0 ** (np.frexp(m)[1] - 1)) if m > 0 else 1.0


def max_abs(x: np.ndarray) -> float:
    """max |x| of a non-empty array, without an |x| copy (8 MiB for a 1024² gate)."""
    hi = float(x.max()) if x.dtype.kind in "fiu" else math.nan
    if math.isnan(hi):
        return float(np.max(np.abs(x)))  # NaN, or complex: as np.abs has it
    return abs(max(hi, -float(x.min())))  # abs: never -0.0


def fro(x: np.ndarray) -> float:
    """‖x‖_F (the L2 norm of all entries) of a finite array, without overflow."""
    x = np.asarray(x, np.float64)
    s = scale_of(x)
    y = x / s if s != 1.0 else x  # a power of two: dividing by 1 changes nothing
    with np.errstate(over="ignore"):  # only a norm beyond the largest float: inf, as it is
        return float(s * np.sqrt(np.sum(y * y)))


def row_norms(x: np.ndarray) -> np.ndarray:
    """The L2 norm of every row of a 2-D array, without overflow (one scale per row)."""
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return np.zeros(x.shape[0])
    m = np.max(np.abs(x), axis=1, keepdims=True)
    s = np.where((m > 0) & np.isfinite(m), 2.0 ** (np.frexp(m)[1] - 1), 1.0)
    y = x / s
    return np.asarray(s[:, 0] * np.sqrt(np.sum(y * y, axis=1)))


def cosine(x: np.ndarray, y: np.ndarray) -> float | None:
    """cos(x, y) of two finite vectors; None where either is zero."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if not (np.any(x) and np.any(y)):
        return None
    xs, ys = x / scale_of(x), y / scale_of(y)
    return float(np.dot(xs, ys) / (np.sqrt(np.dot(xs, xs)) * np.sqrt(np.dot(ys, ys))))


BLOCK = 1 << 18
"""Entries converted to float64 at a time by float64_blocks (2 MiB)."""


def float64_blocks(a: np.ndarray, block: int = BLOCK) -> Iterator[np.ndarray]:
    """a in float64, about ``block`` entries (whole rows of its first axis) at a time, each
    block 2-D (rows, the rest): sums over a large float32 array without a float64 copy of
    the whole of it."""
    a = np.asarray(a)
    rows = a.reshape(a.shape[0], -1) if a.ndim >= 2 else a.reshape(1, -1)
    step = max(1, block // max(1, rows.shape[1]))
    for r in range(0, rows.shape[0], step):
        yield np.asarray(rows[r : r + step], np.float64)
