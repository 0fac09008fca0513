"""Budgets of the analyses that run on a probe (issue 27, item 5), in CPU and wall seconds.

    PYTHONPATH=. python benchmarks/bench_budgets.py [--skip-1024]

Cases: the demo on its own probe; 2×LSTM(256) and 2×LSTM(1024) over 16 inputs with a probe
of 64 × 100 steps (random weights as Keras initialises them: glorot kernels, orthogonal-like
recurrent matrices, unit forget bias). Each analysis is timed once, in this process, as the
report runs it: dynamics of every layer (``probe_dynamics``'s ``layer_dynamics``) and
occlusion importance on the last layer's output (``measured_importance``'s numpy path; with
the Keras reader it runs the model itself, which this does not time), then the mechanism of
every layer: fixed points (``probe_mechanism``: input held at zero) and unit ablation with
the rest of the stack and the last step as the head (as ``layer_units`` with the model's
replay). Budgets, from issues 23 and 24: dynamics + importance ≤ 0.5 s for the demo and
≤ 2 s for 2×LSTM(256); fixed points + ablation ≤ 3 s per LSTM(256) layer; on 2 cores.
On a busy machine the CPU seconds say more than the wall seconds.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def cells_of(units: int, features: int) -> list:
    from lstm_report.cells.kinds import from_keras

    rng = np.random.default_rng(0)
    cells = []
    for j, n_in in enumerate((features, units)):
        lim = np.sqrt(6.0 / (n_in + 4 * units))
        q = np.linalg.qr(rng.normal(size=(4 * units, units)))[0].T  # rows orthonormal
        cells.append(
            from_keras(
                "LSTM",
                rng.uniform(-lim, lim, (n_in, 4 * units)).astype(np.float32),
                q.astype(np.float32),
                np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)]).astype(
                    np.float32
                ),
                name=f"lstm{j}",
            )
        )
    return cells


def synthetic(units: int) -> tuple[list, np.ndarray]:
    features = 16
    x = np.random.default_rng(1).normal(size=(64, 100, features)).astype(np.float32)
    return cells_of(units, features), x


def demo() -> tuple[list, np.ndarray]:
    from lstm_report._resources import configs_dir
    from lstm_report.config.parse import parse_config
    from lstm_report.readers.dispatch import read_model

    d = configs_dir() / "demo"
    cfg = parse_config({"models": [{"path": str(d / "demo_lstm.keras")}]})
    mw = read_model(cfg.models[0])
    return [w.cell for w in mw.layers], np.load(d / "probe.npy")


def case(label: str, cells: list, x: np.ndarray, budget: float | None) -> None:
    from lstm_report.analysis.dynamics import layer_dynamics, sequences_for
    from lstm_report.analysis.importance import occlusion_importance, sequences_for_work
    from lstm_report.cells.kinds import replay
    from lstm_report.cells.restart import replay_restarted

    inputs = [x]
    for c in cells[:-1]:
        inputs.append(replay(c, inputs[-1], dtype=np.float32).h)

    def forward(z: np.ndarray) -> np.ndarray:
        for c in cells:
            z = replay(c, z, dtype=np.float32).h
        return z

    def copies(probe: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """As ModelReplay.for_copies: each layer restarts the copies from the probe's states."""
        bases, z = [], np.asarray(probe, np.float32)
        for c in cells:
            t = replay(c, z, dtype=np.float32)
            bases.append((z, t))
            z = t.h

        def run(y: np.ndarray) -> np.ndarray:
            rows = np.arange(y.shape[0]) % probe.shape[0]
            for c, (bx, bt) in zip(cells, bases):
                y = replay_restarted(c, y, bx, bt, rows, dtype=np.float32).h
            return y

        return run

    dyn_w, dyn_c, _ = timed(lambda: [layer_dynamics(c, z) for c, z in zip(cells, inputs)])
    used = [sequences_for(c, x.shape[0], x.shape[1]) for c in cells]
    names = tuple(f"x{j}" for j in range(x.shape[2]))
    cap = sequences_for_work(cells, x.shape[0], x.shape[1], x.shape[2])
    print(f"  importance cap: {cap} sequences", flush=True)
    full_w, full_c, _ = timed(
        lambda: occlusion_importance(
            forward, x, names, target="lstm_output", layer="last", max_sequences=cap
        )
    )
    print(f"  importance, every copy replayed in full: {full_w:.2f} s ({full_c:.2f} s CPU)")
    imp_w, imp_c, imp = timed(
        lambda: occlusion_importance(
            forward,
            x,
            names,
            target="lstm_output",
            layer="last",
            max_sequences=cap,
            copies=copies,
        )
    )
    print(f"  importance, copies restarted at their step: {imp_w:.2f} s ({imp_c:.2f} s CPU)")
    mech_w, mech_c, mech = timed(lambda: mechanism(cells, inputs))
    total = dyn_w + imp_w
    verdict = "" if budget is None else f"{total / budget:.2f}×"
    print(
        f"| {label} | {dyn_w:.2f} s ({dyn_c:.2f} s CPU; sequences {used}) "
        f"| {imp_w:.2f} s ({imp_c:.2f} s CPU; {imp.sequences} sequences) "
        f"| {verdict or 'no budget'} | {mech_w:.2f} s ({mech_c:.2f} s CPU; {mech}) |",
        flush=True,
    )


def mechanism(cells: list, inputs: list[np.ndarray]) -> str:
    """Fixed points and unit ablation of every layer, as the report runs them; what was
    limited, in words."""
    from lstm_report.analysis.ablation import ablation_fits, unit_ablation
    from lstm_report.analysis.mechanism import fixed_points
    from lstm_report.analysis.state_map import step_macs
    from lstm_report.cells.kinds import replay

    said = []
    for j, (c, z) in enumerate(zip(cells, inputs)):
        rest = cells[j + 1 :]

        def head(h: np.ndarray, rest: list = rest) -> np.ndarray:
            for r in rest:
                h = replay(r, h, dtype=np.float32).h
            return h[:, -1]

        # As analysis.units.downstream_work and layer_units: the rest of the stack's cost
        # counts, and where it does not fit the layer is measured on its own output.
        work = float(z.shape[1] * sum(step_macs(r) for r in rest))
        on = "prediction"
        if not ablation_fits(c, work):
            head, work, on = (lambda h: h[:, -1]), 0.0, "own output"
        fp = fixed_points(c, z, inputs="zero")
        ab = unit_ablation(c, z, head, target="model_output", head_work=work)
        said.append(
            f"layer {j}: {len(fp.fixed_points)} points from {fp.starts} starts"
            f"{'' if not fp.limited else ', ' + fp.limited}; ablation on {ab.sequences} "
            f"sequences, on its {on}"
        )
    return "; ".join(said)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-1024", action="store_true")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start\n")
    print(
        "| model, probe | dynamics | importance | dynamics + importance against the budget "
        "| fixed points + unit ablation, every layer |"
    )
    print("|---|---:|---:|---:|---|")
    case("demo (its probe, 64 × 30)", *demo(), 0.5)
    case("2×LSTM(256), probe 64 × 100", *synthetic(256), 2.0)
    if not a.skip_1024:
        case("2×LSTM(1024), probe 64 × 100", *synthetic(1024), None)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
