"""Time the costly numbers of one large layer: SVDs, eigenvalues, replay, findings, figures.

    python benchmarks/bench_analysis.py [--units 1024] [--input-dim 1024] \
        [--sequences 256] [--steps 50]

Prints one line per stage (seconds). Pure numpy except the Keras verification stage.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(label: str, fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    out = fn()
    print(f"{label:<44} {time.perf_counter() - t:8.2f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1024)
    ap.add_argument("--input-dim", type=int, default=1024)
    ap.add_argument("--sequences", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--no-keras", action="store_true", help="skip the Keras verification stage")
    a = ap.parse_args()

    from lstm_report.analysis.activity import probe_activity
    from lstm_report.analysis.findings import duplicate_pairs, unit_vectors
    from lstm_report.analysis.spectra import gate_spectra
    from lstm_report.analysis.stats import gate_stats
    from lstm_report.model.layers import RecurrentLayer

    rng = np.random.default_rng(0)
    u, d = a.units, a.input_dim
    scale = 1.0 / np.sqrt(u)
    w = RecurrentLayer.from_keras_arrays(
        name="big",
        direction="forward",
        kernel=rng.normal(0, scale, (d, 4 * u)).astype(np.float32),
        recurrent_kernel=rng.normal(0, scale, (u, 4 * u)).astype(np.float32),
        bias=rng.normal(0, 0.1, 4 * u).astype(np.float32),
        reads_input=True,
    )
    x = rng.normal(size=(a.sequences, a.steps, d)).astype(np.float32)
    print(
        f"layer: {u} units, input_dim {d}, {w.params:,} parameters; "
        f"probe {a.sequences} x {a.steps} steps; {os.cpu_count()} cores"
    )
    gates = w.cell.gates
    # exact up to 256 units; above, Gram singular values and the 64 largest eigenvalues
    spectra = timed("spectra of 4 W_g and 4 U_g", lambda: gate_spectra(gates))
    timed("statistics (reusing the SVDs)", lambda: gate_stats(gates, spectra))
    vec = timed("unit vectors", lambda: unit_vectors(gates))
    timed("duplicate-unit check (cosine matrix)", lambda: duplicate_pairs(vec, 0.99))
    timed(f"probe replay + gate activity ({a.sequences} seqs)", lambda: probe_activity(w, x))
    if not a.no_keras:
        from lstm_report.verify import verify

        v = timed(
            "verification vs Keras (32 seqs, incl. import)", lambda: verify(w, x, "probe", 1e-4)
        )
        print(f"  max |numpy - Keras| = {v.max_abs_error}")
    from lstm_report.analysis.layer import analyse_layer
    from lstm_report.figures import layer_figures

    la = analyse_layer(w, None, "a")
    timed("all figures of the layer (no probe)", lambda: layer_figures(la))


if __name__ == "__main__":
    main()
