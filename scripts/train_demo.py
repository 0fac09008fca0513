"""Retrain the built-in demo model: configs/demo/demo_lstm.keras.

A synthetic task whose answer is known. Six input features; the target is the running
sum of two of them over the whole 30-step window,

    y = sum_t (pressure[t] - 0.5 * humidity[t]) / sqrt(30),

so the LSTM must carry information across up to 30 steps, and the four other features
are noise. A small L2 penalty on the input kernel lets the weights of the useless
features decay, so the report's feature importance visibly recovers the two that matter.

Run from the repository root:  python scripts/train_demo.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

FEATURES = ["temperature", "pressure", "wind", "humidity", "noise_a", "noise_b"]
STEPS = 30
OUT = Path(__file__).resolve().parent.parent / "configs" / "demo"


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, STEPS, len(FEATURES))).astype("float32")
    drive = x[:, :, FEATURES.index("pressure")] - 0.5 * x[:, :, FEATURES.index("humidity")]
    y = drive.sum(axis=1, keepdims=True) / np.sqrt(STEPS)
    return x, y.astype("float32")


def build_model():  # type: ignore[no-untyped-def]
    import keras

    reg = keras.regularizers.L2(1e-3)
    inputs = keras.Input((STEPS, len(FEATURES)), name="sensors")
    h = keras.layers.LSTM(16, return_sequences=True, kernel_regularizer=reg, name="encoder")(inputs)
    h = keras.layers.LSTM(8, name="summary")(h)
    outputs = keras.layers.Dense(1, name="head")(h)
    return keras.Model(inputs, outputs, name="demo_lstm")


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(42)
    rng = np.random.default_rng(42)
    x, y = make_data(6000, rng)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    OUT.mkdir(parents=True, exist_ok=True)
    ckpt = OUT / "checkpoints"
    ckpt.mkdir(exist_ok=True)
    keep = {1, 3, 10, 25}  # a short series for the checkpoint and comparison sections

    class Checkpoints(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            if epoch + 1 in keep:
                self.model.save(ckpt / f"epoch_{epoch + 1}.keras")

    model.fit(
        x,
        y,
        epochs=int(os.environ.get("DEMO_EPOCHS", "25")),
        batch_size=64,
        validation_split=0.1,
        verbose=2,
        callbacks=[Checkpoints()],
    )
    model.save(OUT / "demo_lstm.keras")
    # Probe data for the gate-activity section: fresh sequences drawn like the training data.
    probe, _ = make_data(64, np.random.default_rng(11))
    np.save(OUT / "probe.npy", probe)
    xt, yt = make_data(500, np.random.default_rng(7))
    mse = float(np.mean((model.predict(xt, verbose=0) - yt) ** 2))
    print(f"test MSE {mse:.4f} (target variance {float(yt.var()):.3f})")
    print(f"wrote {OUT / 'demo_lstm.keras'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
