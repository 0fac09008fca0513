"""How much ReportCallback slows training: fit with and without it, same model and data.

    python benchmarks/bench_callback.py [--units 64] [--epochs 20]

Prints the fit time without the callback, with snapshots every epoch (every=1), and the
time of the final report written at the end of training (separately).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    a = ap.parse_args()
    import keras

    from lstm_report.keras import ReportCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 30, 8)).astype("float32")
    y = x[:, :, 0].sum(axis=1, keepdims=True)

    def model() -> keras.Model:
        keras.utils.set_random_seed(0)
        m = keras.Sequential(
            [keras.Input((30, 8)), keras.layers.LSTM(a.units), keras.layers.Dense(1)]
        )
        m.compile(optimizer="adam", loss="mse")
        m.fit(x[:64], y[:64], epochs=1, verbose=0)  # warm up tracing outside the timing
        return m

    out = Path(tempfile.mkdtemp()) / "r.html"
    m = model()
    t = time.perf_counter()
    m.fit(x, y, epochs=a.epochs, batch_size=64, verbose=0)
    plain = time.perf_counter() - t

    m = model()
    cb = ReportCallback(out, every=1)
    report_time = 0.0
    original = cb.on_train_end

    def timed_end(logs: object = None) -> None:
        nonlocal report_time
        t0 = time.perf_counter()
        original(logs)  # type: ignore[arg-type]
        report_time = time.perf_counter() - t0

    cb.on_train_end = timed_end  # type: ignore[method-assign]
    t = time.perf_counter()
    m.fit(x, y, epochs=a.epochs, batch_size=64, verbose=0, callbacks=[cb])
    total = time.perf_counter() - t
    training = total - report_time
    print(f"LSTM({a.units}), {a.epochs} epochs of 2048 sequences x 30 steps")
    print(f"fit without callback          {plain:7.2f} s")
    print(
        f"fit with callback (every=1)   {training:7.2f} s  ({100 * (training / plain - 1):+.1f}%)"
    )
    print(f"final report at train end     {report_time:7.2f} s  ({len(cb.snapshots)} snapshots)")


if __name__ == "__main__":
    main()
