"""The CLI as a process: signals, exit statuses, temporary files, what reaches stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from lstm_report.cli import main
from tests.conftest import write_config


def _state(pid: int) -> str | None:
    """The /proc state letter of a process (Z: a zombie, dead), None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()[0]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.fixture(scope="module")
def big_config(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two LSTM(256): a report that takes a few seconds to verify."""
    d = tmp_path_factory.mktemp("big")
    m = keras.Sequential(
        [
            keras.Input((20, 64)),
            keras.layers.LSTM(256, return_sequences=True, name="a"),
            keras.layers.LSTM(256, name="b"),
        ]
    )
    m.save(d / "big.keras")
    return write_config(d, "models: [big.keras]\n")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)]
)
def test_signal_stops_the_run(big_config: Path, tmp_path: Path, signum: int, status: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with open(tmp_path / "stderr", "w") as err:
        # --verify: the run loads Keras and replays both layers, seconds of work to interrupt
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lstm_report",
                "build",
                str(big_config),
                "--verify",
                "-o",
                str(out / "r.html"),
            ],
            stderr=err,
        )
    try:
        time.sleep(1.5)  # reading, analysing, importing Keras
        assert p.poll() is None, "the run ended before the signal"
        assert _children(p.pid) == []  # figures are drawn in the run's own process
        sent = time.monotonic()
        p.send_signal(signum)
        assert p.wait(timeout=20) == status
        assert time.monotonic() - sent < 5
    finally:
        for pid in {p.pid, *_children(p.pid)}:  # never leave a process behind
            if _state(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)
        p.wait()
    message = {signal.SIGTERM: "error: terminated\n", signal.SIGINT: "error: interrupted\n"}
    assert (tmp_path / "stderr").read_text() == message.get(signum, "")
    assert list(out.iterdir()) == []


# Sends a signal to itself right after the report's temporary file is written: the most
# delicate moment, when there is a file to clean up.
SIGNAL_WHILE_WRITING = """
import os, signal, sys
from lstm_report.cli import main
real = os.fsync
def fsync(fd):
    real(fd)
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
os.fsync = fsync
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("name", "status"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGKILL", -9)])
def test_no_temporary_file_survives_a_signal(
    simple_model: Any, tmp_path: Path, name: str, status: int
) -> None:
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    out = tmp_path / "out"
    args = ["build", str(cfg), "-o", str(out / "r.html"), "--json", str(out / "r.json")]
    p = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_WRITING, name, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == status, p.stderr
    left = sorted(out.iterdir())
    if name != "SIGKILL":
        assert left == []
        return
    # SIGKILL runs no code: the file stays, named so that the next run knows it is ours
    assert len(left) == 1 and left[0].name.startswith(".r.html.lstm-report-")
    assert left[0].name.split("lstm-report-")[1].split("-")[0].isdigit()
    fresh = out / ".r.html.lstm-report-999999999-abcdefgh.tmp"  # dead, but just written
    fresh.write_text("x")
    theirs = out / ".r.html.abcdefgh.tmp"  # not ours
    theirs.write_text("x")
    old = time.time() - 3600
    for f in (left[0], theirs):
        os.utime(f, (old, old))
    assert main(args + ["-q"]) == 0
    assert sorted(f.name for f in out.iterdir()) == sorted(
        [fresh.name, theirs.name, "r.html", "r.json"]
    )


def test_no_temporary_file_survives_an_internal_error(simple_model: Any, tmp_path: Path) -> None:
    # A lone surrogate cannot be encoded: the write fails half-way with a non-OSError.
    # (A config refuses one up front, so the Config is edited after parsing.)
    from dataclasses import replace

    from lstm_report import build_report
    from lstm_report.config.yaml_file import load_config

    cfg = load_config(write_config(tmp_path, f"models: [{simple_model.path}]\n"))
    out = tmp_path / "out"
    with pytest.raises(UnicodeEncodeError):
        build_report(replace(cfg, title="a\ud800b"), output=out / "r.html")
    assert list(out.iterdir()) == []


@pytest.fixture(scope="module")
def noisy_config(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weights so large that numpy overflows, and a feature name in a script of its own."""
    import numpy as np

    d = tmp_path_factory.mktemp("noisy")
    m = keras.Sequential([keras.Input((7, 5)), keras.layers.LSTM(4, name="lstm")])
    rng = np.random.default_rng(0)
    m.set_weights([(rng.normal(size=w.shape) * 1e37).astype(np.float32) for w in m.get_weights()])
    m.save(d / "huge.keras")
    np.save(d / "probe.npy", np.full((3, 7, 5), 100, np.float32))
    return write_config(
        d, 'models: [{path: huge.keras, probe: probe.npy, feature_names: ["中", b, c, d, e]}]\n'
    )


def test_quiet_is_quiet(noisy_config: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "lstm_report", "build", str(noisy_config), "-q"]
        + ["-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and r.stderr == ""


def test_library_warnings_become_warning_lines(noisy_config: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "lstm_report", "build", str(noisy_config)]
        + ["-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert all(line.startswith(("warning: ", "wrote ")) for line in lines), r.stderr
    # The figures' text is drawn by the browser in its own fonts: a feature name such as 中
    # needs no warning about a font that lacks it; it labels its heatmap row as typed.
    assert not any("glyph" in line for line in lines)
    assert quote(">中</text>") in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "RuntimeWarning" not in r.stderr and "overflow" not in r.stderr


# TensorFlow warns, in several lines on its own logger, when one kind of tf.function is
# traced in 5 of its last 10 calls (at most twice per process): lstm-report's Keras calls
# (a predict per occluded feature, each on a sub-model of its own) do that. A spy on that
# logger counts what TensorFlow logs, to prove the trigger real; "user" then retraces a
# function of its own, whose warning is the user's to see (-q ends with the run).
RETRACING = """
import logging, sys
import numpy as np
import keras
import tensorflow as tf

d, mode = sys.argv[1], sys.argv[2]
logged = []
tf_logger = logging.getLogger("tensorflow")
real_warning = tf_logger.warning
def warning(msg, *args, **kwargs):  # a spy: records what TensorFlow logs, then logs it
    logged.append(str(msg))
    real_warning(msg, *args, **kwargs)
tf_logger.warning = warning
from lstm_report.cli import main
from lstm_report.keras import ReportCallback

keras.utils.set_random_seed(1)
# A Cropping1D is not among the layers lstm-report replays in numpy: Keras runs the
# model (and its sub-models) on the probe, which is what retraces.
model = keras.Sequential(
    [
        keras.Input((10, 6)),
        keras.layers.Cropping1D((1, 0)),
        keras.layers.LSTM(4, name="lstm"),
        keras.layers.Dense(1),
    ]
)
model.compile(loss="mse")
x = np.random.default_rng(0).standard_normal((16, 10, 6)).astype(np.float32)
np.save(d + "/p.npy", x)
model.save(d + "/m.keras")
print("---start", file=sys.stderr, flush=True)
args = ["build", d + "/m.keras", "--reader", "keras", "--probe", d + "/p.npy"]
if mode == "fit":
    callback = ReportCallback(d + "/fit.html", probe=d + "/p.npy")
    model.fit(x, x[:, -1, :1], epochs=1, verbose=0, callbacks=[callback])
    assert callback.error is None, callback.error
else:
    assert main([*args, *(["-q"] if mode == "quiet" else []), "-o", d + "/r.html"]) == 0
# lstm-report's own Keras calls no longer retrace on this model (the probe runs in numpy):
# what its calls would trigger, triggered inside them, must not print either.
from lstm_report.readers.keras.load import keras_calls
with keras_calls():
    for n in range(1, 7):
        tf.function(lambda t: t * 2)(tf.zeros((n,)))
print(sum("triggered tf.function retracing" in m for m in logged))
print("---user", file=sys.stderr, flush=True)
for n in range(1, 7):
    tf.function(lambda t: t + 1)(tf.zeros((n,)))
"""


def test_tensorflow_retracing_warnings_are_not_printed(tmp_path: Path) -> None:
    runs = {}
    for mode in ("quiet", "default", "fit"):
        (tmp_path / mode).mkdir()
        runs[mode] = subprocess.Popen(
            [sys.executable, "-c", RETRACING, str(tmp_path / mode), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for mode, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        assert int(out) > 0, "lstm-report's calls no longer make TensorFlow warn: find a trigger"
        ours, user = err.split("---start\n", 1)[1].split("---user\n")
        expected = {"quiet": "", "default": f"wrote {tmp_path / mode / 'r.html'}\n", "fit": ""}
        assert ours == expected[mode], (mode, err)
        assert "triggered tf.function retracing" in user, (mode, err)


def test_nothing_written_in_the_home_folder(simple_model: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KERAS_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
    }
    env["HOME"] = str(home)
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    args = [sys.executable, "-m", "lstm_report", "build", str(cfg), "--reader", "keras"]
    # Keras (reader and verification) runs, and imports matplotlib (its font cache).
    # Two runs side by side (one per core): by default the cache is ~/.cache/lstm-report;
    # a folder the user chose is kept.
    other = home.parent / "other-home"
    other.mkdir()
    runs = [
        subprocess.Popen(
            [*args, "--verify", "-o", str(tmp_path / "r.html")],
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        ),
        subprocess.Popen(
            [*args, "-o", str(tmp_path / "r2.html")],
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "HOME": str(other), "KERAS_HOME": str(tmp_path / "mine")},
        ),
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert list(home.iterdir()) == []
    cache = tmp_path / "cache" / "lstm-report"
    assert (cache / "keras" / "keras.json").is_file()
    assert any((cache / "matplotlib").iterdir())
    assert [p.name for p in other.iterdir()] == [".cache"]
    assert [p.name for p in (other / ".cache").iterdir()] == ["lstm-report"]
    assert [p.name for p in (other / ".cache" / "lstm-report").iterdir()] == ["matplotlib"]
    assert (tmp_path / "mine" / "keras.json").is_file()
