"""Speed and size of whole reports, side by side in one run. Prints markdown tables.

    python benchmarks/bench_report.py            # everything (a few minutes)
    python benchmarks/bench_report.py --quick    # skip the 2048-unit scaling row
    python benchmarks/bench_report.py --pairs 5  # issue 27: report against a Keras load

--pairs N: for 2×LSTM(1024) over 256 inputs and 2×LSTM(2048) over 64 inputs, a bare
`import keras` + `load_model` and the report of the same file, alternated N times; prints
the medians of wall and CPU time (user + system of the child) and the peak memory, and
the ratios. Prints the load average with them: on a shared machine the wall ratio is noise.

Every timing is the wall time of a fresh process (as a user runs it), best of --repeat.
Peak memory is the child's maximum resident set size. Models are built with Keras in a
temporary folder first; building them is not timed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(cmd: list[str], repeat: int) -> tuple[float, int]:
    """Best wall time over repeat runs, and the peak RSS (KiB) of the last run."""
    best = float("inf")
    peak = 0
    for _ in range(repeat):
        dt, _cpu, peak = measure(cmd)
        best = min(best, dt)
    return best, peak


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """One fresh run: wall seconds, CPU seconds (user + system) and peak RSS (KiB)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "dt = time.perf_counter() - t\n"
        "if r.returncode: sys.stderr.write(r.stderr.decode()); sys.exit(r.returncode)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(dt, u.ru_utime + u.ru_stime, u.ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=ENV
    )
    if out.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    dt, cpu, rss = out.stdout.split()
    return float(dt), float(cpu), int(rss)


def pairs(n: int, tmp: Path, cli: list[str]) -> None:
    """Issue 27, targets 1 and 2: the report against a bare Keras load, alternated n times."""
    import statistics

    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()} at the start\n")
    print(
        "| model | weights | Keras load wall / CPU / peak | report wall / CPU / peak "
        "| wall × | CPU × | peak × weights |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for units, inputs in ((1024, 256), (2048, 64)):
        path = tmp / f"pair{units}.keras"
        params = build_model(path, units, 2, inputs)
        (tmp / f"pair{units}.yaml").write_text(f"models: [{path}]\n")
        load = [
            sys.executable,
            "-c",
            f"import keras; keras.saving.load_model(r'{path}', compile=False)",
        ]
        report = [*cli, "build", str(tmp / f"pair{units}.yaml"), "-o", str(tmp / "pair.html"), "-q"]
        ks, rs = [], []
        for _ in range(n):
            ks.append(measure(load))
            rs.append(measure(report))
        k = [statistics.median(v) for v in zip(*ks)]
        r = [statistics.median(v) for v in zip(*rs)]
        mib = params * 4 / 2**20
        print(
            f"| 2×LSTM({units}) over {inputs} inputs, {params:,} parameters | {mib:.0f} MiB "
            f"| {k[0]:.2f} s / {k[1]:.2f} s / {k[2] / 1024:.0f} MiB "
            f"| {r[0]:.2f} s / {r[1]:.2f} s / {r[2] / 1024:.0f} MiB "
            f"| {r[0] / k[0]:.2f} | {r[1] / k[1]:.2f} | {r[2] / 1024 / mib:.2f} |",
            flush=True,
        )
    print(f"\nmedians of {n} alternating pairs; load average {os.getloadavg()} at the end")


def build_model(path: Path, units: int, layers: int, input_dim: int, steps: int = 50) -> int:
    code = f"""
import keras
m = keras.Sequential([keras.Input(({steps}, {input_dim}))]
    + [keras.layers.LSTM({units}, return_sequences=i < {layers} - 1) for i in range({layers})]
    + [keras.layers.Dense(1)])
m.save(r"{path}")
print(m.count_params())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    if out.returncode:
        raise SystemExit(out.stderr)
    return int(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=0, help="issue 27's side-by-side only")
    a = ap.parse_args()
    cli = [sys.executable, "-m", "lstm_report"]
    tmp = Path(tempfile.mkdtemp(prefix="lstm-report-bench-"))
    if a.pairs:
        pairs(a.pairs, tmp, cli)
        return
    demo = Path(__file__).resolve().parent.parent / "configs" / "demo" / "demo_lstm.keras"

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}\n")
    big = tmp / "big.keras"
    params = build_model(big, 1024, 2, 256)
    weight_mib = params * 4 / 2**20
    (tmp / "big.yaml").write_text(f"models: [{big}]\n")
    (tmp / "small.yaml").write_text(f"models: [{demo}]\n")

    seed = tmp / "seed.keras"
    build_model(seed, 3, 1, 6, steps=30)
    (tmp / "seed.yaml").write_text(f"models: [{seed}]\n")

    rows = []
    t, m = run([*cli, "--help"], a.repeat)
    rows.append(("`lstm-report --help`", t, m, ""))
    t_tf, m = run([sys.executable, "-c", "import tensorflow"], a.repeat)
    rows.append(("`import tensorflow` alone", t_tf, m, ""))
    out = tmp / "seed.html"
    t_seed, m = run([*cli, "build", str(tmp / "seed.yaml"), "-o", str(out), "-q"], a.repeat)
    rows.append(
        ("report: one LSTM(3) (the seed model)", t_seed, m, f"{out.stat().st_size / 1024:.0f} KiB")
    )
    t_load, m = run(
        [sys.executable, "-c", f"import keras; keras.saving.load_model(r'{big}', compile=False)"],
        a.repeat,
    )
    rows.append(("`import keras` + `load_model` of 2×LSTM(1024)", t_load, m, ""))
    out = tmp / "small.html"
    t, m = run([*cli, "build", str(tmp / "small.yaml"), "-o", str(out), "-q"], a.repeat)
    rows.append(
        (
            "report: demo .keras (2 small LSTMs), direct reader",
            t,
            m,
            f"{out.stat().st_size / 1024:.0f} KiB",
        )
    )
    out = tmp / "big.html"
    t_big, m_big = run([*cli, "build", str(tmp / "big.yaml"), "-o", str(out), "-q"], a.repeat)
    rows.append(
        (
            "report: 2×LSTM(1024), direct reader",
            t_big,
            m_big,
            f"{out.stat().st_size / 2**20:.2f} MiB",
        )
    )
    t, m = run([*cli, "build", str(tmp / "big.yaml"), "-o", str(out), "-q", "--reader", "keras"], 1)
    rows.append(("report: 2×LSTM(1024), Keras reader", t, m, ""))

    print(
        f"2×LSTM(1024) over 256 inputs: {params:,} parameters, "
        f"{weight_mib:.1f} MiB of float32 weights\n"
    )
    print("| run | wall time | peak memory | page |")
    print("|---|---:|---:|---:|")
    for name, t, mem, size in rows:
        print(f"| {name} | {t:.2f} s | {mem / 1024:.0f} MiB | {size} |")
    print("\n| target (issue 13) | measured | met |")
    print("|---|---:|---|")
    for target, value, limit in (
        ("seed model report ≤ 0.15× `import tensorflow`", t_seed / t_tf, 0.15),
        ("2×LSTM(1024) report ≤ 0.5× `import keras` + `load_model`", t_big / t_load, 0.5),
        ("2×LSTM(1024) peak memory ≤ 3× the weight bytes", m_big / 1024 / weight_mib, 3.0),
    ):
        print(f"| {target} | {value:.2f}× | {'yes' if value <= limit else 'no'} |")
    print()

    print("| units | parameters | wall time | page |")
    print("|---:|---:|---:|---:|")
    pages = []
    for units in (64, 128, 256, 512, 1024) + (() if a.quick else (2048,)):
        path = tmp / f"u{units}.keras"
        n = build_model(path, units, 1, 64)
        (tmp / f"u{units}.yaml").write_text(f"models: [{path}]\n")
        out = tmp / f"u{units}.html"
        t, _ = run([*cli, "build", str(tmp / f"u{units}.yaml"), "-o", str(out), "-q"], 1)
        print(f"| {units} | {n:,} | {t:.2f} s | {out.stat().st_size / 1024:.0f} KiB |")
        pages.append(out.stat().st_size)
    pages.append((tmp / "big.html").stat().st_size)
    print(f"\nlargest page: {max(pages) / 2**20:.2f} MiB (target: under 2 MiB at any size)")


if __name__ == "__main__":
    main()
