"""Sweeps: the same small runs built serially, by `batch --jobs 2`, and on a local Dask cluster.

    python benchmarks/bench_batch.py [--runs 200] [--jobs 2] [--units 16] [--cli-runs 20]

Makes one small Keras model (Input(20, 5) -> LSTM(UNITS) -> Dense(1)) and RUNS run folders,
each with a copy of it and a config. Then, each in a fresh process:

- serial, in-process: one Python process calls ``build_report`` for
  every config in a loop (imports paid once: the best case for a serial loop);
- serial, CLI: ``lstm-report build`` once per config, for the first CLI_RUNS configs
  (scaled to RUNS in the table: a shell loop pays the start-up every time);
- ``run_batch`` (what ``lstm-report batch`` calls) on a local pool of JOBS processes, then
  again with nothing changed;
- ``run_batch --scheduler`` on a Dask cluster this script starts on 127.0.0.1
  (``dask scheduler`` and two ``dask worker --nthreads 1`` processes, stopped at the end).

"Overhead per run" is the engine's worker time not spent building reports:
(wall time x slots - sum of the builds' own times) / runs: start-up, moving the work unit
and the page, writing it, and the idle tail. The local pool's and Dask's pages are
compared byte for byte.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GENERATED = "2024-01-01 00:00 UTC"

MAKE_MODEL = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((20, 5)), keras.layers.LSTM(int(sys.argv[2]), name="lstm"),
                      keras.layers.Dense(1, name="head")], name="small")
m.save(sys.argv[1])
"""

SERIAL = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from lstm_report.pipeline import build_report
configs, out = json.loads(sys.argv[1]), Path(sys.argv[2])
times = []
for i, cfg in enumerate(configs):
    t = time.perf_counter()
    build_report(cfg, output=out / f"{i}.html", generated=sys.argv[3])
    times.append(time.perf_counter() - t)
print(json.dumps({"wall": time.perf_counter() - t0, "builds": times}))
"""

BATCH = """
import json, sys, time
t0 = time.perf_counter()
from lstm_report.sweep.run import run_batch
a = json.loads(sys.argv[1])
r = run_batch(a["patterns"], a["site"], jobs=a.get("jobs"), scheduler=a.get("scheduler"),
              generated=a["generated"])
print(json.dumps({"wall": time.perf_counter() - t0, "engine": r.engine,
                  "builds": [o.seconds for o in r.outcomes if o.status == "built"],
                  "statuses": [o.status for o in r.outcomes],
                  "errors": [o.message for o in r.failed][:3]}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _python(code: str, *args: str) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=_env()
    )
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def _cpu(fn: Any) -> tuple[Any, float]:
    """fn()'s result and the CPU time (user + system) of the processes it ran and waited for."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def dask_cluster(workers: int) -> Any:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1; yields (address, seconds)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]  # the `dask` command of this Python
    log = tempfile.TemporaryFile()
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=log,
            stderr=log,
            env=_env(),
        )
    ]
    try:
        for _ in range(workers):
            procs.append(
                subprocess.Popen(
                    [*dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                    stdout=log,
                    stderr=log,
                    env=_env(),
                )
            )
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, time.perf_counter() - start
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _same(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in (a / "reports").iterdir())
    return names == sorted(p.name for p in (b / "reports").iterdir()) and all(
        (a / "reports" / n).read_bytes() == (b / "reports" / n).read_bytes() for n in names
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--cli-runs", type=int, default=20)
    a = ap.parse_args()

    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        model = tmp / "model.keras"
        subprocess.run(
            [sys.executable, "-c", MAKE_MODEL, str(model), str(a.units)], check=True, env=_env()
        )
        configs = []
        for i in range(a.runs):
            d = tmp / "runs" / f"run{i:03d}"
            d.mkdir(parents=True)
            shutil.copy(model, d / "m.keras")
            (d / "config.yaml").write_text(f"title: run {i}\nmodels: [{{path: m.keras}}]\n")
            configs.append(str(d / "config.yaml"))
        pattern = str(tmp / "runs" / "*" / "config.yaml")
        n = a.runs
        rows: list[tuple[str, float, float | None, str]] = []

        serial, cpu = _cpu(
            lambda: _python(SERIAL, json.dumps(configs), str(tmp / "serial"), GENERATED)
        )
        per = sum(serial["builds"]) / n
        rows.append(
            ("serial build_report loop, one process", serial["wall"], cpu, f"{per:.2f} s/run")
        )

        def cli_loop() -> float:
            k = min(a.cli_runs, n)
            t = time.perf_counter()
            for i, cfg in enumerate(configs[:k]):
                out = str(tmp / "cli" / f"{i}.html")
                subprocess.run(
                    [sys.executable, "-m", "lstm_report", "build", cfg, "-q", "-o", out],
                    check=True,
                    env=_env(),
                )
            return (time.perf_counter() - t) / k

        cli, cpu = _cpu(cli_loop)
        k = min(a.cli_runs, n)
        rows.append(
            (
                f"serial `lstm-report build` per run ({k} runs, x{n / k:g})",
                cli * n,
                cpu * n / k,
                f"{cli:.2f} s/run",
            )
        )

        def batch(site: str, **kw: Any) -> dict[str, Any]:
            args = {"patterns": [pattern], "site": str(tmp / site), "generated": GENERATED, **kw}
            r = _python(BATCH, json.dumps(args))
            if r["errors"]:
                raise SystemExit(f"runs failed: {r['errors']}")
            return r

        def overhead(r: dict[str, Any], slots: int) -> str:
            over = (r["wall"] * slots - sum(r["builds"])) / max(1, len(r["builds"]))
            each = sum(r["builds"]) / len(r["builds"])
            return f"{each:.2f} s/run in a worker, overhead {over:.2f} s/run"

        local, cpu = _cpu(lambda: batch("local", jobs=a.jobs))
        rows.append(
            (
                f"batch --jobs {a.jobs} (local process pool)",
                local["wall"],
                cpu,
                overhead(local, a.jobs),
            )
        )
        again, cpu = _cpu(lambda: batch("local", jobs=a.jobs))
        assert set(again["statuses"]) == {"reused"}, again["statuses"][:5]
        rows.append(
            (
                "batch rerun, nothing changed",
                again["wall"],
                cpu,
                f"{1000 * again['wall'] / n:.1f} ms/run",
            )
        )

        def on_dask() -> tuple[dict[str, Any], float]:
            with dask_cluster(2) as (address, startup):
                return batch("dask", scheduler=address), startup

        (remote, startup), cpu = _cpu(on_dask)
        rows.append(("  (starting the Dask scheduler and 2 workers)", startup, None, ""))
        rows.append(
            (
                "batch --scheduler (local Dask cluster, 2 workers)",
                remote["wall"],
                cpu,
                overhead(remote, 2),
            )
        )

        print(
            f"{n} runs: LSTM({a.units}) over 5 inputs x 20 steps, no probe; "
            f"{os.cpu_count()} cores; load average {load[0]:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end (other processes share the cores)"
        )
        print()
        print("| run | wall time | CPU time | per run |")
        print("|---|---:|---:|---|")
        for what, wall, cpu_s, note in rows:
            cpu_text = "" if cpu_s is None else f"{cpu_s:.1f} s"
            print(f"| {what} | {wall:.1f} s | {cpu_text} | {note} |")
        print()
        print("CPU time: user + system of every process of that run (the Dask line includes")
        print("starting the scheduler and workers).")
        print(f"local pool and Dask pages byte-identical: {_same(tmp / 'local', tmp / 'dask')}")
        print(
            f"speed-up over the serial loop: --jobs {a.jobs} {serial['wall'] / local['wall']:.2f}x,"
            f" Dask {serial['wall'] / remote['wall']:.2f}x"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
