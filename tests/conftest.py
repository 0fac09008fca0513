"""Shared fixtures: real Keras models, built once per session and saved to disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parent.parent

# The processes the tests start run the code under test, wherever pytest was started from:
# this checkout comes before any installed copy (tests/test_packaging.py removes it again).
if str(REPO) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The suite's own $XDG_CACHE_HOME: a warm cache from an earlier run (or the user's)
    would spare the tests the very work they check."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


# A suite run inside GitHub Actions must not append every test's summary to the job's page
# (tests/output/test_ci.py sets its own).
os.environ.pop("GITHUB_STEP_SUMMARY", None)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject.toml): one worker per core, at most 4. Each worker imports
    TensorFlow once and runs a share of the tests; more workers than cores only add imports,
    and many tests start processes of their own."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))


@pytest.fixture(scope="session")
def keras() -> Any:
    import keras

    keras.utils.set_random_seed(1234)
    return keras


@dataclass(frozen=True)
class DemoRun:
    """``lstm-report demo`` run once per session in a fresh process: its page and JSON."""

    html: Path
    json: Path
    stderr: str


# The demo run takes a while (TensorFlow, a series, a comparison, figures), so it starts in
# the background as soon as the session knows it will be needed, and the tests that need it
# wait for it. It runs once per session even with pytest-xdist: the first worker to claim its
# folder (shared by the workers) starts it, the others wait for its status file.
_DEMO_RUNNER = """
import os, subprocess, sys
out, args = sys.argv[1], sys.argv[2:]
with open(os.path.join(out, "stderr.txt"), "w") as err:
    code = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=err, timeout=600).returncode
with open(os.path.join(out, "status.tmp"), "w") as f:
    f.write(str(code))
os.replace(os.path.join(out, "status.tmp"), os.path.join(out, "status"))
"""


def _demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is in a shared one
        base = base.parent
    return base / "demo-run"


@pytest.fixture(scope="session", autouse=True)
def _demo_in_background(
    _own_cache: None, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    import subprocess
    import sys

    if not any("demo_run" in item.fixturenames for item in request.session.items):
        yield
        return
    out = _demo_dir(tmp_path_factory)
    try:
        out.mkdir()
    except FileExistsError:  # another worker runs it
        yield
        return
    html, data = out / "demo.html", out / "demo.json"
    args = [sys.executable, "-m", "lstm_report", "demo", "-o", str(html), "--json", str(data)]
    runner = subprocess.Popen([sys.executable, "-c", _DEMO_RUNNER, str(out), *args])
    yield
    runner.wait()  # another worker may still be waiting for it


@pytest.fixture(scope="session")
def demo_run(_demo_in_background: None, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    import time

    out = _demo_dir(tmp_path_factory)
    status = out / "status"
    deadline = time.monotonic() + 660
    while not status.exists():
        assert time.monotonic() < deadline, "lstm-report demo did not finish"
        time.sleep(0.1)
    stderr = (out / "stderr.txt").read_text()
    assert status.read_text() == "0", stderr
    return DemoRun(out / "demo.html", out / "demo.json", stderr)


@dataclass(frozen=True)
class Saved:
    path: Path
    model: Any


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a local Dask cluster (2 worker processes, 1 thread each), started
    once for the tests that compare it with the local pool."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def _save(model: Any, path: Path) -> Saved:
    model.save(path)
    return Saved(path, model)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def simple_model(keras: Any, models_dir: Path) -> Saved:
    """Input(7, 5) -> LSTM(4) -> Dense(1), weights randomised so every gate differs."""
    m = keras.Sequential(
        [
            keras.Input((7, 5)),
            keras.layers.LSTM(4, name="lstm"),
            keras.layers.Dense(1, name="head"),
        ],
        name="simple",
    )
    _randomise(m)
    return _save(m, models_dir / "simple.keras")


@pytest.fixture(scope="session")
def complex_model(keras: Any, models_dir: Path) -> Saved:
    """Nested model with a masked LSTM, a Bidirectional without bias, and a GRU beside them."""
    inp = keras.Input((7, 5), name="x")
    inner_in = keras.Input((7, 5))
    masked = keras.layers.Masking()(inner_in)
    inner = keras.Model(
        inner_in,
        keras.layers.LSTM(4, return_sequences=True, name="inner_lstm")(masked),
        name="encoder",
    )
    h = inner(inp)
    h = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True, use_bias=False), name="bi"
    )(h)
    h = keras.layers.GRU(2, name="gru")(h)
    m = keras.Model(inp, keras.layers.Dense(1, name="head")(h), name="complex")
    _randomise(m)
    return _save(m, models_dir / "complex.keras")


@pytest.fixture(scope="session")
def legacy_h5_model(keras: Any, models_dir: Path) -> Saved:
    """A stacked LSTM saved in the legacy HDF5 full-model format."""
    m = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(5, return_sequences=True, name="first"),
            keras.layers.LSTM(2, name="second", go_backwards=True),
        ],
        name="legacy",
    )
    _randomise(m)
    return _save(m, models_dir / "legacy.h5")


def _randomise(model: Any, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])


def write_config(tmp: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


@dataclass(frozen=True)
class ConvSaved:
    """A tiny model around one Keras ConvLSTM (issue 25), saved, with what Keras says of it."""

    path: Path
    kind: str
    """ConvLSTM1D, ConvLSTM2D or ConvLSTM3D."""
    name: str
    """The ConvLSTM layer's name."""
    arrays: tuple[np.ndarray, ...]
    """Its get_weights(): kernel, recurrent_kernel, bias."""
    x: np.ndarray
    """A batch of model inputs."""
    h: np.ndarray
    """The ConvLSTM layer's output on x, as Keras computes it (return_sequences=True)."""
    total: int
    """Keras' count of the whole model's parameters."""
    lstm: tuple[np.ndarray, ...] = ()
    """The get_weights() of the LSTM behind it (the mixed model only)."""


CONV_SHAPES: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "ConvLSTM1D": ((5, 7, 2), dict(filters=3, kernel_size=3, padding="same")),
    "ConvLSTM2D": ((4, 5, 6, 2), dict(filters=3, kernel_size=(3, 2), strides=(1, 2))),
    "ConvLSTM3D": ((3, 4, 4, 3, 1), dict(filters=2, kernel_size=2, padding="same")),
}
"""Each kind's input (steps, *space, channels) and layer settings: tiny, so the tests are fast."""


def _conv_model(keras: Any, kind: str, path: Path, seed: int, lstm: bool = False) -> ConvSaved:
    """Input -> ConvLSTM (random biases) [-> LSTM(2)] -> Dense(1), saved to path."""
    shape, kw = CONV_SHAPES[kind]
    inp = keras.Input(shape)
    conv = getattr(keras.layers, kind)(return_sequences=True, name="conv", **kw)
    h = conv(inp)
    if lstm:
        h = keras.layers.LSTM(2, name="lstm")(keras.layers.Reshape((shape[0], -1))(h))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    rng = np.random.default_rng(seed)
    kernel, rec, bias = conv.get_weights()
    conv.set_weights([kernel, rec, rng.normal(0, 1, bias.shape).astype(bias.dtype)])
    model.save(path)
    x = rng.normal(size=(2, *shape)).astype(np.float32)
    h_keras = np.asarray(keras.Model(inp, conv.output)(x))
    after = tuple(model.get_layer("lstm").get_weights()) if lstm else ()
    arrays = tuple(conv.get_weights())
    return ConvSaved(path, kind, "conv", arrays, x, h_keras, model.count_params(), after)


@pytest.fixture(scope="session")
def conv_models(keras: Any, models_dir: Path) -> dict[str, ConvSaved]:
    """One model per ConvLSTM kind, the ConvLSTM its only recurrent layer, and ``mixed``: a
    ConvLSTM1D feeding an LSTM."""
    out = {
        kind: _conv_model(keras, kind, models_dir / f"only_{kind.lower()}.keras", seed)
        for seed, kind in enumerate(CONV_SHAPES)
    }
    out["mixed"] = _conv_model(keras, "ConvLSTM1D", models_dir / "mixed_conv.keras", 9, True)
    return out
