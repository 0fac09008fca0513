"""Pure numpy: gate activity of a layer on probe data, through the numpy replay."""

from __future__ import annotations

import numpy as np

from lstm_report.cells.kinds import replay
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.mechanism import GateActivity, ProbeActivity

# Karpathy, Johnson & Fei-Fei (2015): a sigmoid gate is left-saturated below 0.1 and
# right-saturated above 0.9; for the tanh candidate we use -0.9 and 0.9.
GATE_SATURATION = (0.1, 0.9)
CANDIDATE_SATURATION = (-0.9, 0.9)
GATE_RANGE = (0.0, 1.0)
CANDIDATE_RANGE = (-1.0, 1.0)
BINS = 50
CHUNK = 64
"""Sequences replayed at once: bounds memory to CHUNK x steps x units per gate."""


def probe_activity(
    w: RecurrentLayer, x: np.ndarray, sequence: int = 0
) -> tuple[ProbeActivity, np.ndarray]:
    """Replay the layer over x (sequences, steps, input_dim) and summarise every gate.

    Returns the summary and the layer's full output sequence (sequences, steps, units),
    in the order Keras returns it, for the layers downstream.
    """
    n, steps, _ = x.shape
    u = w.units
    squashed = {g.gate: g.squashed for g in w.cell.gates}
    names = tuple(squashed)
    saturation = {g: GATE_SATURATION if sq else CANDIDATE_SATURATION for g, sq in squashed.items()}
    hist_range = {g: GATE_RANGE if sq else CANDIDATE_RANGE for g, sq in squashed.items()}
    sums = {g: np.zeros(u) for g in names}
    left = {g: np.zeros(u) for g in names}
    right = {g: np.zeros(u) for g in names}
    counts = {g: np.zeros(BINS, np.int64) for g in names}
    edges = {g: np.linspace(*hist_range[g], BINS + 1) for g in names}
    outputs = np.empty((n, steps, w.output_dim), np.float32)
    h_seq = c_seq = None
    for start in range(0, n, CHUNK):
        # float32, like Keras itself: twice the speed of float64 on large layers
        trace = replay(
            w.cell, x[start : start + CHUNK], keep_gates=True, dtype=np.float32, order="read"
        )
        outputs[start : start + CHUNK] = trace.h
        for g in names:
            a = trace.gates[g]
            lo, hi = saturation[g]
            sums[g] += a.sum(axis=(0, 1))
            left[g] += (a < lo).sum(axis=(0, 1))
            right[g] += (a > hi).sum(axis=(0, 1))
            counts[g] += np.histogram(np.clip(a, *hist_range[g]), bins=edges[g])[0]
        if start <= sequence < start + CHUNK:
            k = sequence - start
            h_seq = trace.h[k]
            c_seq = None if trace.c is None else trace.c[k]
    assert h_seq is not None
    if w.go_backwards:  # Keras' step order is reversed; show states in input time order
        h_seq = h_seq[::-1]
        c_seq = None if c_seq is None else c_seq[::-1]
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
        for g in names
    )
    activity = ProbeActivity(
        gates=gates,
        sequences=n,
        steps=steps,
        sequence=sequence,
        h=np.ascontiguousarray(h_seq, np.float32),
        c=None if c_seq is None else np.ascontiguousarray(c_seq, np.float32),
        source="numpy",
    )
    return activity, outputs
