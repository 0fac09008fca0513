"""Two checkouts side by side: is one slower? For refactors that must not change speed.

    python benchmarks/bench_checkouts.py OLD_CHECKOUT [NEW_CHECKOUT] [--rounds 5]

Each round runs, in fresh processes and alternating which checkout goes first, the same
jobs with each checkout on PYTHONPATH: ``lstm-report --help``; a build of the built-in demo
(configs/demo.yaml, JSON and Markdown too, verification off so TensorFlow stays out); and
the same build with its checkpoint series cold (no cache). Prints the median seconds of
each and the ratio NEW/OLD; ratios near 1.0 (within the spread printed) are noise.
NEW_CHECKOUT defaults to this one. Make OLD_CHECKOUT with ``git worktree add DIR COMMIT``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

JOBS = {
    "--help": ["--help"],
    "demo build": [
        "build",
        "configs/demo.yaml",
        "--no-verify",
        "--json",
        "{out}/r.json",
        "--markdown",
        "{out}/r.md",
        "-o",
        "{out}/r.html",
        "-q",
    ],
    "demo build, no cache": [
        "build",
        "configs/demo.yaml",
        "--no-verify",
        "--no-cache",
        "-o",
        "{out}/r.html",
        "-q",
    ],
}


def run(checkout: Path, args: list[str]) -> float:
    """Seconds of one `python -m lstm_report ARGS` with ``checkout`` first on the path."""
    with tempfile.TemporaryDirectory() as out:
        env = {
            **os.environ,
            "PYTHONPATH": str(checkout),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "SOURCE_DATE_EPOCH": "0",
            "XDG_CACHE_HOME": out,
        }
        argv = [a.format(out=out) for a in args]
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "lstm_report", *argv],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: lstm-report {' '.join(args)} failed:\n{done.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path, nargs="?", default=HERE)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    sides = {"old": a.old.resolve(), "new": a.new.resolve()}
    print(f"old: {sides['old']}\nnew: {sides['new']}\nload average: {os.getloadavg()[0]:.1f}")
    for job, args in JOBS.items():
        times: dict[str, list[float]] = {"old": [], "new": []}
        run(sides["old"], args), run(sides["new"], args)  # warm the file cache
        for r in range(a.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for side in order:
                times[side].append(run(sides[side], args))
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        spread = max(statistics.pstdev(t) / statistics.median(t) for t in times.values())
        print(
            f"{job:24s} old {old:6.2f} s   new {new:6.2f} s   new/old {new / old:5.2f}"
            f"   (spread ±{spread:.0%})"
        )


if __name__ == "__main__":
    main()
