"""A corpus of broken model files, generated from good ones: every way a file goes wrong.

    python -m tests.corpus GOOD.keras GOOD.h5 OUT_DIR    # writes the corpus, for a look

Used by tests/test_corpus.py; each file must give a clear one-line error naming it.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np


def _rezip(
    src: Path, dst: Path, edit: Callable[[Path], None] | None = None, drop: str | None = None
) -> None:
    """Copy a .keras zip, editing its weights file and/or dropping a member."""
    work = dst.with_suffix(".work")
    work.mkdir()
    with zipfile.ZipFile(src) as zf:
        zf.extractall(work)
    if edit is not None:
        edit(work / "model.weights.h5")
    with zipfile.ZipFile(dst, "w") as zf:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            if name != drop:
                zf.write(work / name, name)
    shutil.rmtree(work)


def _replace(path: str, data: np.ndarray) -> Callable[[Path], None]:
    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            del f[path]
            f[path] = data

    return edit


def _delete(path: str) -> Callable[[Path], None]:
    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            del f[path]

    return edit


def _huge(path: str) -> Callable[[Path], None]:
    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            del f[path]
            # declared, never written: 40 GB of float32 in a file of a few kilobytes
            f.create_dataset(path, shape=(100_000, 100_000), dtype="float32")

    return edit


def _bad_checksum(src: Path, dst: Path) -> None:
    """A copy in the newest HDF5 format (checksummed object headers), one header damaged."""
    with h5py.File(src) as f, h5py.File(dst, "w", libver="latest") as g:
        for key, value in f.attrs.items():
            g.attrs[key] = value
        f.copy(f["model_weights"], g, "model_weights")
    data = bytearray(dst.read_bytes())
    data[data.index(b"OHDR") + 8] ^= 0xFF
    dst.write_bytes(bytes(data))


def make_corpus(good_keras: Path, good_h5: Path, out: Path) -> dict[str, Path]:
    """Write the broken files; returns {case: path}. good_keras has a top-level LSTM 'lstm'
    (5 inputs, 4 units); good_h5 is a legacy full model."""
    out.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {}
    data = good_keras.read_bytes()
    cases["truncated zip"] = out / "truncated.keras"
    cases["truncated zip"].write_bytes(data[: len(data) // 2])
    cases["zip without weights"] = out / "no_weights.keras"
    _rezip(good_keras, cases["zip without weights"], drop="model.weights.h5")
    cases["zip without config"] = out / "no_config.keras"
    _rezip(good_keras, cases["zip without config"], drop="config.json")
    cases["missing dataset"] = out / "missing_dataset.keras"
    _rezip(good_keras, cases["missing dataset"], _delete("layers/lstm/cell/vars/1"))
    cases["wrong shape"] = out / "wrong_shape.keras"
    _rezip(
        good_keras,
        cases["wrong shape"],
        _replace("layers/lstm/cell/vars/1", np.zeros((4, 7), "float32")),
    )
    cases["kernel not 4 units wide"] = out / "not_4_units.keras"
    _rezip(
        good_keras,
        cases["kernel not 4 units wide"],
        _replace("layers/lstm/cell/vars/0", np.zeros((5, 15), "float32")),
    )
    cases["huge declared shape"] = out / "huge.keras"
    _rezip(good_keras, cases["huge declared shape"], _huge("layers/lstm/cell/vars/0"))
    cases["integer weights"] = out / "int_weights.keras"
    _rezip(
        good_keras,
        cases["integer weights"],
        _replace("layers/lstm/cell/vars/0", np.zeros((5, 16), "int32")),
    )
    cases["string weights"] = out / "str_weights.keras"
    _rezip(
        good_keras,
        cases["string weights"],
        _replace("layers/lstm/cell/vars/2", np.array([b"x"] * 16)),
    )
    h5 = good_h5.read_bytes()
    cases["truncated h5"] = out / "truncated.h5"
    cases["truncated h5"].write_bytes(h5[: len(h5) // 3])
    cases["h5 without weights"] = out / "no_model_weights.h5"
    shutil.copy(good_h5, cases["h5 without weights"])
    with h5py.File(cases["h5 without weights"], "r+") as f:
        del f["model_weights"]
    cases["damaged object header"] = out / "bad_checksum.h5"
    _bad_checksum(good_h5, cases["damaged object header"])
    cases["empty h5"] = out / "empty.h5"
    with h5py.File(cases["empty h5"], "w"):
        pass
    cases["garbage"] = out / "garbage.keras"
    cases["garbage"].write_bytes(bytes(range(256)) * 4)
    return cases


if __name__ == "__main__":
    for case, path in make_corpus(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])).items():
        print(f"{case:28} {path}")
