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


class _Tally:
    """One gate's running sums over the probe: mean, saturated steps, histogram."""

    def __init__(self, gate: str, squashed: bool, units: int) -> None:
        self.gate = gate
        self.saturation = GATE_SATURATION if squashed else CANDIDATE_SATURATION
        self.range = GATE_RANGE if squashed else CANDIDATE_RANGE
        self.sums = np.zeros(units)
        self.left = np.zeros(units)
        self.right = np.zeros(units)
        self.counts = np.zeros(BINS, np.int64)
        self.edges = np.linspace(*self.range, BINS + 1)

    def add(self, a: np.ndarray) -> None:
        """Count the gate's values ``a`` (sequences, steps, units) of one chunk."""
        lo, hi = self.saturation
        self.sums += a.sum(axis=(0, 1))
        self.left += (a < lo).sum(axis=(0, 1))
        self.right += (a > hi).sum(axis=(0, 1))
        self.counts += np.histogram(np.clip(a, *self.range), bins=self.edges)[0]

    def activity(self, total: int) -> GateActivity:
        """The summary over ``total`` steps (sequences × steps)."""
        u = len(self.sums)
        return GateActivity(
            gate=self.gate,
            mean=float(self.sums.sum() / (total * u)),
            unit_mean=tuple(float(v) for v in self.sums / total),
            left_saturated=float(self.left.sum() / (total * u)),
            right_saturated=float(self.right.sum() / (total * u)),
            unit_left=tuple(float(v) for v in self.left / total),
            unit_right=tuple(float(v) for v in self.right / total),
            hist_edges=tuple(float(e) for e in self.edges),
            hist_counts=tuple(int(c) for c in self.counts),
        )


def probe_activity(
    w: RecurrentLayer, x: np.ndarray, sequence: int = 0
) -> tuple[ProbeActivity, np.ndarray]:
    """Replay the layer over x (sequences, steps, input_dim) and summarise every gate.

    Returns the summary and the layer's full output sequence (sequences, steps, units),
    in the order Keras returns it, for the layers downstream.
    """
    n, steps, _ = x.shape
    tallies = [_Tally(g.gate, g.squashed, w.units) for g in w.cell.gates]
    outputs = np.empty((n, steps, w.output_dim), np.float32)
    h_seq = c_seq = None
    for start in range(0, n, CHUNK):
        # float32, like Keras itself: twice the speed of float64 on large layers
        trace = replay(
            w.cell, x[start : start + CHUNK], keep_gates=True, dtype=np.float32, order="read"
        )
        outputs[start : start + CHUNK] = trace.h
        for t in tallies:
            t.add(trace.gates[t.gate])
        if start <= sequence < start + CHUNK:
            k = sequence - start
            h_seq = trace.h[k]
            c_seq = None if trace.c is None else trace.c[k]
    assert h_seq is not None
    if w.go_backwards:  # Keras' step order is reversed; show states in input time order
        h_seq = h_seq[::-1]
        c_seq = None if c_seq is None else c_seq[::-1]
    activity = ProbeActivity(
        gates=tuple(t.activity(n * steps) for t in tallies),
        sequences=n,
        steps=steps,
        sequence=sequence,
        h=np.ascontiguousarray(h_seq, np.float32),
        c=None if c_seq is None else np.ascontiguousarray(c_seq, np.float32),
        source="numpy",
    )
    return activity, outputs
