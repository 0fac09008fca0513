"""Load and validate probe data, shaped like the model input: float features
(sequences, steps, features), or token ids (sequences, steps) for a model that starts with
an Embedding.

A probe file is read as hostile (docs/formats.md, "Hostile files"): a regular file only;
the ``.npy`` header is read first, and its shape, dtype and declared size are checked
against the model, the bytes actually there and MAX_PROBE_BYTES before anything is
allocated; an ``.npz`` member may not inflate past ZIP_MAX_RATIO; nothing is unpickled.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ConfigError, first_line, listing, quote
from lstm_report.fileio.limits import (
    MAX_PROBE_BYTES,
    open_hostile,
    size_text,
    zip_member_problem,
)
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.formats import EMPTY_ZIP_SIGNATURE, NPY_MAGIC, ZIP_SIGNATURE

ZIP_MAGIC = (ZIP_SIGNATURE, EMPTY_ZIP_SIGNATURE)


@dataclass(frozen=True)
class ProbeShape:
    """What probe data must look like: the model input, without the batch axis."""

    features: int | None
    """Features per step (None: unknown); unused for token ids."""
    lstm_reads: bool = True
    """Whether a recurrent layer reads the model input itself (for the wording of errors)."""
    readers: str = "LSTMs"
    """What reads it, for errors: ``LSTMs``, ``GRUs`` or ``recurrent layers`` (both)."""
    embedding: str | None = None
    """The Embedding that reads the input: the probe holds token ids, (sequences, steps)."""
    vocab: int | None = None

    @property
    def ndim(self) -> int:
        return 2 if self.embedding is not None else 3

    def describe(self) -> str:
        if self.embedding is not None:
            below = f" from 0 to {self.vocab - 1}" if self.vocab else ""
            return f"(sequences, steps) of token ids{below} for Embedding {self.embedding!r}"
        return f"(sequences, steps, {self.features if self.features else 'features'})"


def probe_shape(weights: ModelWeights) -> ProbeShape:
    """The probe shape a model takes, from what its reader found."""
    if weights.embedding is not None:
        e = weights.embedding
        return ProbeShape(None, lstm_reads=False, embedding=e.name, vocab=e.vocab)
    readers = [w for w in weights.layers if w.reads_input]
    if readers:
        kinds = {w.cell.kind for w in readers}
        words = f"{next(iter(kinds))}s" if len(kinds) == 1 else "recurrent layers"
        return ProbeShape(readers[0].input_dim, readers=words)
    return ProbeShape(weights.input_dim, lstm_reads=False)


def load_probe(spec: ModelSpec, expect: ProbeShape) -> np.ndarray | None:
    """The model's probe data, checked: float32 features, or int64 token ids; None when the
    config names none."""
    if spec.probe is None:
        return None
    p = spec.probe
    key = f"{spec.key}.probe"
    not_npy = "not an .npy or .npz file"
    with open_hostile(
        p.path,
        missing=lambda: ConfigError(f"{key}: probe file not found: {p.path}"),
        directory=lambda: ConfigError(f"{key}: {p.path} is a directory, {not_npy}"),
        special=lambda what: ConfigError(f"{key}: {p.path} is {what}, {not_npy}"),
        unreadable=lambda why: ConfigError(f"{key}: cannot read {p.path}: {why}"),
    ) as fh:
        try:
            data = _read(fh, spec, expect)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
            why = first_line(exc)
            raise ConfigError(f"{key}: cannot read {p.path} as .npy/.npz: {why}") from None
    if 0 in data.shape:
        raise ConfigError(f"{key}: probe data is empty (shape {data.shape})")
    data = _token_ids(data, expect, key) if expect.embedding is not None else _features(data, key)
    if p.sequence >= data.shape[0]:
        raise ConfigError(
            f"{key}.sequence: index {p.sequence} is out of range for {data.shape[0]} sequences"
        )
    return data


def _read(fh: IO[bytes], spec: ModelSpec, expect: ProbeShape) -> np.ndarray:
    assert spec.probe is not None
    p = spec.probe
    key = f"{spec.key}.probe"
    head = fh.read(len(NPY_MAGIC))
    fh.seek(0)
    if head.startswith(ZIP_MAGIC):
        return _read_npz(fh, spec, expect)
    if head != NPY_MAGIC:
        raise ValueError("not an .npy or .npz file")
    if p.array is not None:
        raise ConfigError(
            f"{key}.array: {p.path.name} is an .npy file with one array; remove 'array'"
        )
    stored = os.fstat(fh.fileno()).st_size
    _check_header(fh, stored, key, p.path.name, expect)
    fh.seek(0)
    return np.lib.format.read_array(fh, allow_pickle=False)  # a probe file is data, never code


def _read_npz(fh: IO[bytes], spec: ModelSpec, expect: ProbeShape) -> np.ndarray:
    assert spec.probe is not None
    p = spec.probe
    key = f"{spec.key}.probe"
    with zipfile.ZipFile(fh) as zf:
        members = {(n[:-4] if n.endswith(".npy") else n): n for n in zf.namelist()}
        names = list(members)
        if p.array is None:
            if len(names) != 1:
                raise ConfigError(
                    f"{key}: {p.path.name} holds {len(names)} arrays "
                    f"({listing(names)}); name one with 'array'"
                )
            name = names[0]
        elif p.array not in members:
            raise ConfigError(
                f"{key}.array: no array {quote(p.array)} in {p.path.name}; arrays: {listing(names)}"
            )
        else:
            name = p.array
        info = zf.getinfo(members[name])
        where = f"array {quote(name)} in {p.path.name}"
        _check_member(info, key, where)
        with zf.open(info) as member:
            _check_header(member, info.file_size, key, where, expect)
        with zf.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)


def _check_member(info: zipfile.ZipInfo, key: str, where: str) -> None:
    """What the zip's headers say, checked before a byte is inflated."""
    problem = zip_member_problem(info)
    if problem is not None:
        raise ConfigError(f"{key}: {where} {problem}")


def _check_header(
    fh: IO[bytes] | Any, stored: int, key: str, where: str, expect: ProbeShape
) -> None:
    """Read an .npy header; check shape, dtype and declared size before any allocation.

    stored: the bytes of the whole .npy (a file, or a zip member once inflated).
    """
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    if dtype.kind not in "fiu" or dtype.hasobject:
        raise ConfigError(f"{key}: probe data must be numeric (float), got dtype {dtype}")
    if len(shape) != expect.ndim:
        raise ConfigError(
            f"{key}: probe data must be shaped like the model input, {expect.describe()}; "
            f"got shape {tuple(shape)}"
        )
    features = expect.features
    if expect.embedding is None and features is not None and shape[2] != features:
        reads = f"the model's {expect.readers} read" if expect.lstm_reads else "the model input has"
        raise ConfigError(
            f"{key}: probe data has {shape[2]} features per step, but {reads} {features}"
        )
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_PROBE_BYTES:
        raise ConfigError(
            f"{key}: {where} declares shape {shape} ({size_text(declared)}); probe data is "
            f"limited to {size_text(MAX_PROBE_BYTES)} (use fewer or shorter sequences)"
        )
    present = stored - fh.tell()
    if declared > present:
        raise ConfigError(
            f"{key}: {where} declares shape {shape} ({declared:,} bytes) but holds "
            f"{max(present, 0):,} bytes of data (truncated or damaged file)"
        )


def _features(data: np.ndarray, key: str) -> np.ndarray:
    """Float features as float32, all finite."""
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise ConfigError(f"{key}: probe data has {bad} non-finite values (NaN or Inf)")
    return data


def _token_ids(data: np.ndarray, expect: ProbeShape, key: str) -> np.ndarray:
    """Token ids for a model that starts with an Embedding: integers within its vocabulary."""
    if data.dtype.kind == "f":
        if not np.isfinite(data).all() or (data != np.round(data)).any():
            raise ConfigError(
                f"{key}: probe data must be token ids (integers) for Embedding "
                f"{expect.embedding!r}, got non-integer values"
            )
    lo, hi = data.min(), data.max()
    if lo < 0 or (expect.vocab is not None and hi >= expect.vocab):
        bad = lo if lo < 0 else hi
        raise ConfigError(
            f"{key}: token id {int(bad)} is outside the vocabulary of Embedding "
            f"{expect.embedding!r} (0 to {(expect.vocab or 1) - 1})"
        )
    return data.astype(np.int64)
