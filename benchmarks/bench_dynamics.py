"""Time the dynamics along the probe (issue 23) against their budgets.

    PYTHONPATH=. python benchmarks/bench_dynamics.py [--rounds 3]

Two cases, each the best of ``--rounds``:
  demo        the demo's two layers on its probe (64 x 30): budget 0.5 s
  2xLSTM(256) two stacked LSTM(256) on a probe of 64 x 100 steps: budget 2 s
Prints wall and CPU seconds and the ratio of wall time to the budget (below 1: within
it). On a busy machine the CPU seconds say more. Pure numpy: no Keras.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np


def best(rounds: int, fn: Callable[[], object]) -> tuple[float, float]:
    """The fastest of ``rounds`` runs: (wall seconds, CPU seconds of this process)."""
    times = []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t, time.process_time() - c))
    return min(times)


def report(label: str, seconds: tuple[float, float], budget: float) -> None:
    wall, cpu = seconds
    print(
        f"{label:<42} {wall:7.3f} s wall ({cpu:.3f} s CPU)   "
        f"{wall / budget:5.2f}x the {budget:g} s budget"
    )


def demo_case() -> Callable[[], object]:
    from lstm_report._resources import configs_dir
    from lstm_report.analysis.dynamics import layer_dynamics
    from lstm_report.analysis.probing import ProbeFlow
    from lstm_report.config.parse import parse_config
    from lstm_report.readers.dispatch import read_model

    d = configs_dir() / "demo"
    cfg = parse_config({"models": [{"path": str(d / "demo_lstm.keras")}]})
    mw = read_model(cfg.models[0])
    probe = np.load(d / "probe.npy")
    flow = ProbeFlow(mw, probe, 0, None)
    runs = [(w, flow.run(w).inputs) for w in mw.layers]
    assert all(x is not None for _, x in runs)
    return lambda: [layer_dynamics(w.cell, x) for w, x in runs]


def large_case() -> Callable[[], object]:
    from lstm_report.analysis.dynamics import layer_dynamics
    from lstm_report.cells.kinds import from_keras, replay

    rng = np.random.default_rng(0)
    u, features = 256, 16
    cells = []
    for j, n_in in enumerate((features, u)):
        s = 1.0 / np.sqrt(u)
        cells.append(
            from_keras(
                "LSTM",
                rng.normal(0, 1.0 / np.sqrt(n_in), (n_in, 4 * u)).astype(np.float32),
                rng.normal(0, s, (u, 4 * u)).astype(np.float32),
                np.concatenate([np.zeros(u), np.ones(u), np.zeros(2 * u)]).astype(np.float32),
                name=f"lstm{j}",
            )
        )
    x = rng.normal(size=(64, 100, features)).astype(np.float32)
    second = replay(cells[0], x, dtype=np.float32).h  # the second layer's input
    return lambda: [layer_dynamics(cells[0], x), layer_dynamics(cells[1], second)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    report("demo: dynamics of its 2 layers (64 x 30)", best(a.rounds, demo_case()), 0.5)
    report("2xLSTM(256): dynamics, probe 64 x 100", best(a.rounds, large_case()), 2.0)


if __name__ == "__main__":
    main()
