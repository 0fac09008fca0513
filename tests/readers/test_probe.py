"""Probe files (issue 15): read as hostile, checked from their header before anything is
allocated; the ordinary errors are in tests/analysis/test_dynamics.py (test_probe_errors)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.config.schema import ModelSpec, ProbeSpec
from lstm_report.errors import ConfigError
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.probe import ProbeShape, load_probe, probe_shape
from tests import hostile
from tests.helpers import FIXTURES
from tests.hostile import assert_refused, run_cli

GRU_ONNX = "onnx_gru_lbr1_bidirectional.onnx"


def spec(path: Path, array: str | None = None) -> ModelSpec:
    return ModelSpec(index=0, path=Path("m.keras"), name="m", probe=ProbeSpec(path, array))


def probe_config(tmp: Path, model: Path, probe: str) -> Path:
    cfg = tmp / "c.yaml"
    cfg.write_text(f"models:\n  - path: {model}\n    probe: {probe}\n")
    return cfg


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom"])
def test_probe_that_is_not_a_regular_file(kind: str, simple_model: Any, tmp_path: Path) -> None:
    # In a subprocess: reading a FIFO waits forever.
    path = tmp_path / "fifo.npy" if kind == "fifo" else Path(kind)
    if kind == "fifo":
        os.mkfifo(path)
    r = run_cli(probe_config(tmp_path, simple_model.path, str(path)), tmp_path, timeout=30)
    line = assert_refused(r, tmp_path, "models[0].probe", str(path))
    assert "not a regular file" in line


@pytest.mark.parametrize("kind", ["npy", "npz stored"])
def test_header_declaring_trillions_is_refused_before_allocating(kind: str, tmp_path: Path) -> None:
    header = hostile.npy_header((1_000_000, 1_000_000, 5))
    if kind == "npy":
        probe = tmp_path / "huge.npy"
        probe.write_bytes(header + b"\0" * 4096)
        where = "huge.npy"
    else:
        probe = tmp_path / "huge.npz"
        with zipfile.ZipFile(probe, "w") as zf:
            zf.writestr("x.npy", header + b"\0" * 4096)
        where = "array 'x' in huge.npz"
    with pytest.raises(
        ConfigError,
        match=rf"^models\[0\]\.probe: {where} declares shape \(1000000, 1000000, 5\) \(18,626.5 GiB\); "
        r"probe data is limited to 256 MiB",
    ):
        load_probe(spec(probe), ProbeShape(5))


@pytest.mark.parametrize("kind", ["npy", "npz stored"])
def test_header_declaring_more_than_the_file_holds(kind: str, tmp_path: Path) -> None:
    header = hostile.npy_header((10, 100, 5))
    data = header + np.zeros((10, 100, 5), "<f4").tobytes()[:-4]
    if kind == "npy":
        probe = tmp_path / "short.npy"
        probe.write_bytes(data)
    else:
        probe = tmp_path / "short.npz"
        with zipfile.ZipFile(probe, "w") as zf:
            zf.writestr("x.npy", data)
    with pytest.raises(
        ConfigError, match=r"declares shape \(10, 100, 5\) \(20,000 bytes\) but holds 19,996 bytes"
    ):
        load_probe(spec(probe), ProbeShape(5))


def test_compressed_member_inflating_to_gigabytes_is_refused(
    simple_model: Any, tmp_path: Path
) -> None:
    probe = hostile.npz_bomb(tmp_path / "bomb.npz", (100_000, 1000, 5))
    assert probe.stat().st_size < 4 * 2**20
    r = run_cli(probe_config(tmp_path, simple_model.path, probe.name), tmp_path)
    line = assert_refused(r, tmp_path, "array 'x' in bomb.npz")
    assert "decompression bomb" in line


def test_compressed_probe_within_the_limits_is_read(tmp_path: Path) -> None:
    want = np.random.default_rng(0).normal(size=(3, 7, 5)).astype(np.float32)
    np.savez_compressed(tmp_path / "p.npz", x=want)
    np.testing.assert_array_equal(load_probe(spec(tmp_path / "p.npz"), ProbeShape(5)), want)
    np.save(tmp_path / "p.npy", np.asfortranarray(want.astype(np.float64)))
    np.testing.assert_array_equal(load_probe(spec(tmp_path / "p.npy"), ProbeShape(5)), want)


def test_object_dtype_is_refused_without_unpickling(tmp_path: Path) -> None:
    probe = tmp_path / "obj.npy"
    np.save(probe, np.array([[[None] * 5]], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match=r"must be numeric \(float\), got dtype object"):
        load_probe(spec(probe), ProbeShape(5))


def test_a_probe_of_the_wrong_width_names_what_reads_it(tmp_path: Path) -> None:
    """A GRU is no LSTM: the error says what reads the model input."""
    model = read_model(ModelSpec(index=0, path=FIXTURES / "frameworks" / GRU_ONNX, name="g"))
    expect = probe_shape(model)
    assert expect.readers == "GRUs" and expect.features is not None
    np.save(tmp_path / "p.npy", np.zeros((2, 3, expect.features + 1), dtype=np.float32))
    with pytest.raises(ConfigError, match=rf"but the model's GRUs read {expect.features}$"):
        load_probe(spec(tmp_path / "p.npy"), expect)
    assert ProbeShape(5).readers == "LSTMs"  # the default: an LSTM reads it
