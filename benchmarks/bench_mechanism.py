"""Time fixed points and unit ablation (issue 24) against their budgets.

    PYTHONPATH=. python benchmarks/bench_mechanism.py [--rounds 1] [--large]

  LSTM(256), probe 64 x 100: fixed points + unit ablation of its last-step output,
  budget 3 s (2 cores)
  LSTM(1024), the same probe (--large): budget 15 s; it prints whether the search was
  limited, and how
Prints wall and CPU seconds and the ratio of wall time to the budget (below 1: within it).
Pure numpy: no Keras.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from lstm_report.cells.base import CellWeights


def best(rounds: int, fn: Callable[[], object]) -> tuple[tuple[float, float], object]:
    """The fastest of ``rounds`` runs: (wall seconds, CPU seconds), and its result."""
    times, out = [], None
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t, time.process_time() - c))
    return min(times), out


def report(label: str, seconds: tuple[float, float], budget: float) -> None:
    wall, cpu = seconds
    print(
        f"{label:<46} {wall:7.3f} s wall ({cpu:.3f} s CPU)   "
        f"{wall / budget:5.2f}x the {budget:g} s budget"
    )


def lstm(units: int, features: int) -> CellWeights:
    from lstm_report.cells.kinds import from_keras

    rng = np.random.default_rng(0)
    u = units
    return from_keras(
        "LSTM",
        rng.normal(0, 1.0 / np.sqrt(features), (features, 4 * u)).astype(np.float32),
        rng.normal(0, 1.0 / np.sqrt(u), (u, 4 * u)).astype(np.float32),
        np.concatenate([np.zeros(u), np.ones(u), np.zeros(2 * u)]).astype(np.float32),
        name=f"lstm{u}",
    )


def case(units: int) -> Callable[[], object]:
    from lstm_report.analysis.ablation import unit_ablation
    from lstm_report.analysis.mechanism import fixed_points

    cell = lstm(units, 16)
    x = np.random.default_rng(1).normal(size=(64, 100, 16)).astype(np.float32)
    readout = np.random.default_rng(2).normal(size=(units, 3)).astype(np.float32)

    def run() -> object:
        mech = fixed_points(cell, x)
        abl = unit_ablation(cell, x, lambda h: h[:, -1] @ readout, target="layer_output")
        return mech, abl

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--large", action="store_true", help="also LSTM(1024)")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    sizes = [(256, 3.0)] + ([(1024, 15.0)] if a.large else [])
    for units, budget in sizes:
        seconds, out = best(a.rounds, case(units))
        mech, abl = out  # type: ignore[misc]
        report(f"LSTM({units}): fixed points + ablation, 64 x 100", seconds, budget)
        print(
            f"  {len(mech.fixed_points)} points from {mech.starts} starts, "
            f"{mech.iterations} steps; {mech.limited or 'full search'}; ablation on "
            f"{abl.sequences} sequences"
            + (f" (all units screened on {abl.screened})" if abl.screened else "")
        )


if __name__ == "__main__":
    main()
