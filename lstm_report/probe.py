"""Load and validate probe data, shaped like the model input: float features
(sequences, steps, features), or token ids (sequences, steps) for a model that starts with
an Embedding."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np

from lstm_report.config import ModelSpec
from lstm_report.errors import ConfigError, listing, quote, shorten
from lstm_report.model import ModelWeights


@dataclass(frozen=True)
class ProbeShape:
    """What probe data must look like: the model input, without the batch axis."""

    features: int | None
    """Features per step (None: unknown); unused for token ids."""
    lstm_reads: bool = True
    """Whether an LSTM reads the model input itself (for the wording of errors)."""
    embedding: str | None = None
    """The Embedding that reads the input: the probe holds token ids, (sequences, steps)."""
    vocab: int | None = None

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
    readers = [w.input_dim for w in weights.lstms if w.reads_input]
    if readers:
        return ProbeShape(readers[0])
    return ProbeShape(weights.input_dim, lstm_reads=False)


def load_probe(spec: ModelSpec, expect: ProbeShape) -> np.ndarray | None:
    """The model's probe data, checked: float32 features, or int64 token ids; None when the
    config names none."""
    if spec.probe is None:
        return None
    p = spec.probe
    key = f"{spec.key}.probe"
    try:
        # allow_pickle=False: a probe file is data, never code.
        loaded = np.load(p.path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{key}: probe file not found: {p.path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{key}: {p.path} is a directory, not an .npy or .npz file") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"{key}: cannot read {p.path} as .npy/.npz: {shorten(str(exc), 200)}"
        ) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if p.array is None:
                if len(names) != 1:
                    raise ConfigError(
                        f"{key}: {p.path.name} holds {len(names)} arrays "
                        f"({listing(names)}); name one with 'array'"
                    )
                name = names[0]
            elif p.array not in names:
                raise ConfigError(
                    f"{key}.array: no array {quote(p.array)} in {p.path.name}; "
                    f"arrays: {listing(names)}"
                )
            else:
                name = p.array
            try:
                data = loaded[name]
            except ValueError as exc:  # an object array would need pickle
                raise ConfigError(
                    f"{key}: cannot read array {quote(name)}: {shorten(str(exc), 200)}"
                ) from None
    else:
        if p.array is not None:
            raise ConfigError(
                f"{key}.array: {p.path.name} is an .npy file with one array; remove 'array'"
            )
        data = loaded
    if data.dtype.kind not in "fiu":
        raise ConfigError(f"{key}: probe data must be numeric (float), got dtype {data.dtype}")
    if expect.embedding is not None:
        return _token_ids(data, expect, key, p.sequence)
    if data.ndim != 3:
        raise ConfigError(
            f"{key}: probe data must be shaped like the model input, {expect.describe()}; "
            f"got shape {data.shape}"
        )
    features = expect.features
    if features is not None and data.shape[2] != features:
        reads = "the model's LSTMs read" if expect.lstm_reads else "the model input has"
        raise ConfigError(
            f"{key}: probe data has {data.shape[2]} features per step, but {reads} {features}"
        )
    if 0 in data.shape:
        raise ConfigError(f"{key}: probe data is empty (shape {data.shape})")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise ConfigError(f"{key}: probe data has {bad} non-finite values (NaN or Inf)")
    if p.sequence >= data.shape[0]:
        raise ConfigError(
            f"{key}.sequence: index {p.sequence} is out of range for {data.shape[0]} sequences"
        )
    return data


def _token_ids(data: np.ndarray, expect: ProbeShape, key: str, sequence: int) -> np.ndarray:
    """Token ids for a model that starts with an Embedding: integers within its vocabulary."""
    if data.ndim != 2:
        raise ConfigError(
            f"{key}: probe data must be shaped like the model input, {expect.describe()}; "
            f"got shape {data.shape}"
        )
    if 0 in data.shape:
        raise ConfigError(f"{key}: probe data is empty (shape {data.shape})")
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
    if sequence >= data.shape[0]:
        raise ConfigError(
            f"{key}.sequence: index {sequence} is out of range for {data.shape[0]} sequences"
        )
    return data.astype(np.int64)
