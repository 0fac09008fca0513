"""Pure numpy: gate activity of a layer on probe data, through the numpy replay."""

from __future__ import annotations

import numpy as np

from lstm_report.gates import replay
from lstm_report.model import GATES, GateActivity, LSTMWeights, ProbeActivity

# Karpathy, Johnson & Fei-Fei (2015): a sigmoid gate is left-saturated below 0.1 and
# right-saturated above 0.9; for the tanh candidate we use -0.9 and 0.9.
SATURATION = {"i": (0.1, 0.9), "f": (0.1, 0.9), "c": (-0.9, 0.9), "o": (0.1, 0.9)}
HIST_RANGE = {"i": (0.0, 1.0), "f": (0.0, 1.0), "c": (-1.0, 1.0), "o": (0.0, 1.0)}
BINS = 50
CHUNK = 64
"""Sequences replayed at once: bounds memory to CHUNK x steps x units per gate."""


def probe_activity(
    w: LSTMWeights, x: np.ndarray, sequence: int = 0
) -> tuple[ProbeActivity, np.ndarray]:
    """Replay the layer over x (sequences, steps, input_dim) and summarise every gate.

    Returns the summary and the layer's full output sequence (sequences, steps, units),
    in the order Keras returns it, for the layers downstream.
    """
    n, steps, _ = x.shape
    u = w.units
    sums = {g: np.zeros(u) for g in GATES}
    left = {g: np.zeros(u) for g in GATES}
    right = {g: np.zeros(u) for g in GATES}
    counts = {g: np.zeros(BINS, np.int64) for g in GATES}
    edges = {g: np.linspace(*HIST_RANGE[g], BINS + 1) for g in GATES}
    outputs = np.empty((n, steps, u), np.float32)
    h_seq = c_seq = None
    for start in range(0, n, CHUNK):
        # float32, like Keras itself: twice the speed of float64 on large layers
        trace = replay(w, x[start : start + CHUNK], dtype=np.float32)
        outputs[start : start + CHUNK] = trace.h
        for g in GATES:
            a = trace.gates[g]
            lo, hi = SATURATION[g]
            sums[g] += a.sum(axis=(0, 1))
            left[g] += (a < lo).sum(axis=(0, 1))
            right[g] += (a > hi).sum(axis=(0, 1))
            counts[g] += np.histogram(np.clip(a, *HIST_RANGE[g]), bins=edges[g])[0]
        if start <= sequence < start + CHUNK:
            k = sequence - start
            h_seq, c_seq = trace.h[k], trace.c[k]
    assert h_seq is not None and c_seq is not None
    if w.go_backwards:  # Keras' step order is reversed; show states in input time order
        h_seq, c_seq = h_seq[::-1], c_seq[::-1]
    total = n * steps
    gates = tuple(
        GateActivity(
            gate=g,
            mean=float(sums[g].sum() / (total * u)),
            unit_mean=tuple(float(v) for v in sums[g] / total),
            left_saturated=float(left[g].sum() / (total * u)),
            right_saturated=float(right[g].sum() / (total * u)),
            unit_left=tuple(float(v) for v in left[g] / total),
            unit_right=tuple(float(v) for v in right[g] / total),
            hist_edges=tuple(float(e) for e in edges[g]),
            hist_counts=tuple(int(c) for c in counts[g]),
        )
        for g in GATES
    )
    activity = ProbeActivity(
        gates=gates,
        sequences=n,
        steps=steps,
        sequence=sequence,
        h=np.ascontiguousarray(h_seq, np.float32),
        c=np.ascontiguousarray(c_seq, np.float32),
        source="numpy",
    )
    return activity, outputs
