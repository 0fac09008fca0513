"""A checkpoint series against a single report, and a long series against a short one
(issues 13 and 27). Prints markdown tables.

    python benchmarks/bench_series.py                      # 50 and 500 checkpoints of 2xLSTM(256)
    python benchmarks/bench_series.py --short 20 --long 100 --repeat 1
    python benchmarks/bench_series.py --store DIR          # reuse (or keep) the checkpoints

Builds a 2-layer LSTM(256) over 64 inputs with Keras and saves it with ``model.save`` once
per checkpoint, with small random steps between (building is not timed; ``--store`` keeps
them for the next run). Then times fresh processes (``lstm-report build``, as a user runs
it), each with its own $XDG_CACHE_HOME: the single report of the last checkpoint; the short
and the long series cold (empty cache); the long one warm (nothing changed) and after adding
one checkpoint; and the short one cold without a pool (``--no-cache`` and one core). Best of
--repeat by wall time (cold runs: of --cold-repeat), with that run's CPU time (user +
system, all its processes: steadier than wall time on a shared machine); the cache is
emptied before every cold run. Reports the load average before and after: on a loaded
machine wall times are noise, CPU times much less so.
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
    ap.add_argument("--short", type=int, default=50)
    ap.add_argument("--long", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cold-repeat", type=int, default=1)
    ap.add_argument("--store", type=Path, help="where the checkpoints are built, or kept")
    a = ap.parse_args()
    short, n = a.short, a.long
    tmp = Path(tempfile.mkdtemp(prefix="lstm-report-series-"))
    store = a.store or tmp / "all"
    store.mkdir(parents=True, exist_ok=True)
    if not (store / f"epoch_{n + 1}.keras").exists():
        build_series(store, n)
    runs = {}
    for count in (short, n):
        run = tmp / f"run{count}"
        run.mkdir()
        for i in range(1, count + 1):
            shutil.copy(store / f"epoch_{i}.keras", run / f"epoch_{i}.keras")
        (tmp / f"series{count}.yaml").write_text(
            f"models:\n  - path: {run}/epoch_*.keras\n    name: run\n"
        )
        runs[count] = run
    run = runs[n]
    (tmp / "single.yaml").write_text(f"models:\n  - path: {run}/epoch_{n}.keras\n    name: run\n")
    cache = tmp / "xdg"
    env = {**ENV, "XDG_CACHE_HOME": str(cache), "SOURCE_DATE_EPOCH": "1700000000"}
    cli = [sys.executable, "-m", "lstm_report", "build", "-q"]
    single = [*cli, str(tmp / "single.yaml"), "-o", str(tmp / "single.html")]

    def series(count: int, page: str = "series") -> list[str]:
        return [*cli, str(tmp / f"series{count}.yaml"), "-o", str(tmp / f"{page}{count}.html")]

    one_core = ["taskset", "-c", "0", *cli, "--no-cache", *series(short, "one")[len(cli) :]]

    def best(cmd: list[str], cold: bool = False, before: object = None) -> tuple[float, float]:
        times = []
        for _ in range(a.cold_repeat if cold else a.repeat):
            if cold:
                shutil.rmtree(cache, ignore_errors=True)
            if callable(before):
                before()
            times.append(timed(cmd, env))
        return min(times)

    entries = cache / "lstm-report" / "checkpoints"
    held: set[Path] = set()

    def drop_last() -> None:
        """Back to the cache of the n checkpoints: the new one's entry removed."""
        (run / f"epoch_{n + 1}.keras").unlink(missing_ok=True)
        for p in set(entries.glob("*/*.json")) - held:
            p.unlink()

    def add_one() -> None:
        drop_last()
        shutil.copy(store / f"epoch_{n + 1}.keras", run / f"epoch_{n + 1}.keras")

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f} at the start; python {sys.version.split()[0]}"
    )
    print("checkpoints of 2xLSTM(256) over 64 inputs: 854,273 parameters each\n")
    rows = [("single report (the last checkpoint)", best(single))]
    rows.append((f"series of {short}, cold (empty cache)", best(series(short), cold=True)))
    rows.append((f"series of {n}, cold (empty cache)", best(series(n), cold=True)))
    cold_page = (tmp / f"series{n}.html").read_bytes()
    held.update(entries.glob("*/*.json"))
    rows.append((f"series of {n}, warm cache (nothing changed)", best(series(n))))
    same = cold_page == (tmp / f"series{n}.html").read_bytes()
    rows.append((f"series of {n} + 1 new checkpoint", best(series(n), before=add_one)))
    drop_last()
    if shutil.which("taskset"):
        rows.append((f"series of {short}, no cache, one core (units in turn)", best(one_core)))
    base, base_cpu = rows[0][1]
    print("| run | wall time | × single | CPU time | × single |")
    print("|---|---:|---:|---:|---:|")
    for name, (t, cpu) in rows:
        print(f"| {name} | {t:.2f} s | {t / base:.2f} | {cpu:.2f} s | {cpu / base_cpu:.2f} |")
    (ws, cs), (wl, cl) = rows[1][1], rows[2][1]
    scale = n / short
    rerun = rows[4][1]
    print("\n| target (issue 27) | wall time | CPU time |")
    print("|---|---:|---:|")
    print(
        f"| {n} cold ÷ ({scale:g} × {short} cold), linear: ≤ 1 | {wl / (scale * ws):.2f} "
        f"| {cl / (scale * cs):.2f} |"
    )
    print(
        f"| {n} cold ÷ {short} cold (the checkpoints: ×{scale:g}) | {wl / ws:.2f} | {cl / cs:.2f} |"
    )
    print(f"| {n} + 1 new checkpoint: ≤ 1.5 s | {rerun[0]:.2f} s | {rerun[1]:.2f} s |")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")
    print(f"warm and cold pages of {n} byte-identical: {same}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
