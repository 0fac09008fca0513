"""Read LSTM weights straight from the file with h5py: no TensorFlow, no Keras, no code run.

Three layouts (see docs/formats.md for the sources these rules were taken from):

* ``.keras`` (Keras 3): a zip with ``config.json`` and ``model.weights.h5``. Groups in the
  weights file are named after the layer *class* (``layers/lstm_1/cell/vars/0``), made
  unique per container in ``model.layers`` order, not after the layer's name.
* legacy ``.h5`` full model (Keras 2 / tf.keras, or Keras 3's legacy writer): the config
  in the ``model_config`` attribute, weights in ``model_weights/<layer name>``, each
  group listing its datasets in the ``weight_names`` attribute.
* legacy ``.h5`` weights only (``save_weights``): the same groups at the root and no
  architecture, so LSTMs are recognised from weight names and shapes.

Anything that does not match exactly raises DirectReadError; the caller falls back to
Keras or reports it. Nothing is guessed silently. A damaged or hostile file raises
CorruptModelError, which no reader tries.
"""

from __future__ import annotations

import zipfile

from lstm_report.errors import CorruptModelError, ModelLoadError
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.files import ModelFile
from lstm_report.readers.keras.archive import keras3_groups, read_keras_zip
from lstm_report.readers.keras.h5 import (
    Activations,
    DirectReadError,
    cudnn_to_lstm,
    read_array,
)
from lstm_report.readers.keras.legacy_h5 import read_legacy_full
from lstm_report.readers.keras.weights_only import read_keras3_weights, read_weights_only

__all__ = [
    "Activations",
    "CorruptModelError",
    "DirectReadError",
    "cudnn_to_lstm",
    "keras3_groups",
    "read",
    "read_array",
]


def read(
    info: ModelFile, *, name: str, where: str, assume: Activations = Activations()
) -> ModelWeights:
    """Read every LSTM of the file. Raises DirectReadError for what it cannot read safely."""
    import h5py  # h5py is loaded only when an HDF5 file is read

    try:
        if info.format == "keras":
            return read_keras_zip(info, name, where)
        with h5py.File(info.path, "r") as f:
            if info.config is not None:
                return read_legacy_full(f, info, name, where)
            if "layer_names" not in f.attrs and "layers" in f:
                return read_keras3_weights(f, info, name, where, assume)
            return read_weights_only(f, info, name, where, assume)
    except ModelLoadError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        raise DirectReadError(f"{where}: cannot read {info.path.name} directly: {exc}") from exc
