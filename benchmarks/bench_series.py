"""A checkpoint series against a single report (issue 13: <= 10x). Prints a markdown table.

    python benchmarks/bench_series.py                  # 50 checkpoints of 2xLSTM(256)
    python benchmarks/bench_series.py --checkpoints 20 --repeat 1

Builds a 2-layer LSTM(256) over 64 inputs with Keras and saves it with ``model.save`` once
per checkpoint, with small random steps between (building is not timed). Then times fresh
processes (``lstm-report build``, as a user runs it), each with its own $XDG_CACHE_HOME:
the single report of the last checkpoint, the series cold (empty cache), warm (nothing
changed), after adding one checkpoint, and cold without a pool (``--no-cache`` and one
core). Best of --repeat by wall time, with that run's CPU time (user + system, all its
processes: steadier than wall time on a shared machine); the cache is emptied before
every cold run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def build_series(folder: Path, n: int, units: int = 256, inputs: int = 64) -> int:
    code = f"""
import numpy as np, keras
m = keras.Sequential([keras.Input((50, {inputs})),
    keras.layers.LSTM({units}, return_sequences=True), keras.layers.LSTM({units}),
    keras.layers.Dense(1)])
rng = np.random.default_rng(0)
w = m.get_weights()
for i in range(1, {n} + 2):
    w = [a + rng.normal(0, 0.01, a.shape).astype(a.dtype) for a in w]
    m.set_weights(w)
    m.save(r"{folder}" + f"/epoch_{{i}}.keras")
print(m.count_params())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    if out.returncode:
        raise SystemExit(out.stderr)
    return int(out.stdout.split()[-1])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time, and CPU time (user + system) of the process and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr.decode()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return dt, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    n = a.checkpoints
    tmp = Path(tempfile.mkdtemp(prefix="lstm-report-series-"))
    store = tmp / "all"
    store.mkdir()
    params = build_series(store, n)
    run = tmp / "run"
    run.mkdir()
    for i in range(1, n + 1):
        shutil.copy(store / f"epoch_{i}.keras", run / f"epoch_{i}.keras")
    (tmp / "series.yaml").write_text(f"models:\n  - path: {run}/epoch_*.keras\n    name: run\n")
    (tmp / "single.yaml").write_text(f"models:\n  - path: {run}/epoch_{n}.keras\n    name: run\n")
    cache = tmp / "xdg"
    env = {**ENV, "XDG_CACHE_HOME": str(cache), "SOURCE_DATE_EPOCH": "1700000000"}
    cli = [sys.executable, "-m", "lstm_report", "build", "-q"]
    single = [*cli, str(tmp / "single.yaml"), "-o", str(tmp / "single.html")]
    series = [*cli, str(tmp / "series.yaml"), "-o", str(tmp / "series.html")]
    one_core = [
        "taskset",
        "-c",
        "0",
        *cli,
        "--no-cache",
        str(tmp / "series.yaml"),
        "-o",
        str(tmp / "s1.html"),
    ]

    def best(cmd: list[str], cold: bool = False, before: object = None) -> tuple[float, float]:
        times = []
        for _ in range(a.repeat):
            if cold:
                shutil.rmtree(cache, ignore_errors=True)
            if callable(before):
                before()
            times.append(timed(cmd, env))
        return min(times)

    def drop_last() -> None:
        (run / f"epoch_{n + 1}.keras").unlink(missing_ok=True)
        timed(series, env)  # the cache holds the n checkpoints

    def add_one() -> None:
        drop_last()
        shutil.copy(store / f"epoch_{n + 1}.keras", run / f"epoch_{n + 1}.keras")

    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load {load:.1f}; python {sys.version.split()[0]}")
    print(f"{n} checkpoints of 2xLSTM(256) over 64 inputs: {params:,} parameters each\n")
    rows = [("single report (the last checkpoint)", best(single))]
    rows.append((f"series of {n}, cold (empty cache)", best(series, cold=True)))
    hot = best(series)
    rows.append((f"series of {n}, warm cache (nothing changed)", hot))
    rows.append((f"series of {n} + 1 new checkpoint", best(series, before=add_one)))
    drop_last()
    if shutil.which("taskset"):
        rows.append((f"series of {n}, no cache, one core (units in turn)", best(one_core)))
    base, base_cpu = rows[0][1]
    print("| run | wall time | × single | CPU time | × single |")
    print("|---|---:|---:|---:|---:|")
    for name, (t, cpu) in rows:
        print(f"| {name} | {t:.2f} s | {t / base:.2f} | {cpu:.2f} s | {cpu / base_cpu:.2f} |")
    cmp = (tmp / "series.html").read_bytes()
    shutil.rmtree(cache, ignore_errors=True)
    timed(series, env)
    print(f"\nwarm and cold pages byte-identical: {cmp == (tmp / 'series.html').read_bytes()}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
