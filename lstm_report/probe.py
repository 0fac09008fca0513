"""Load and validate probe data: a float array (sequences, steps, features)."""

from __future__ import annotations

import zipfile

import numpy as np

from lstm_report.config import ModelSpec
from lstm_report.errors import ConfigError, listing, quote, shorten


def load_probe(spec: ModelSpec, features: int | None) -> np.ndarray | None:
    """The model's probe data as float32, checked; None when the config names none."""
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
    if data.ndim != 3:
        raise ConfigError(
            f"{key}: probe data must be shaped (sequences, steps, features), got shape {data.shape}"
        )
    if data.dtype.kind not in "fiu":
        raise ConfigError(f"{key}: probe data must be numeric (float), got dtype {data.dtype}")
    if features is not None and data.shape[2] != features:
        raise ConfigError(
            f"{key}: probe data has {data.shape[2]} features per step, "
            f"but the model's LSTMs read {features}"
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
