"""What a gated recurrent cell is, independent of the framework that trained it.

The public names, re-exported from base.py (the dataclasses and the dispatch by kind);
lstm.py, gru.py and conv_lstm.py hold each kind's numpy step and Keras split. Modules of
the package import base.py itself, never this file, so that nothing imports in a circle.
"""

from __future__ import annotations

from lstm_report.cells.base import (
    GATE_TITLES,
    GRU_GATES,
    LSTM_GATES,
    CellTrace,
    CellWeights,
    Direction,
    Gate,
    GateWeights,
    Kind,
    RecurrentModel,
    activations,
    equations,
    flat_matmul,
    from_keras,
    gates_of,
    replay,
    replay_inputs,
    replay_layers,
)

__all__ = [
    "GATE_TITLES",
    "GRU_GATES",
    "LSTM_GATES",
    "CellTrace",
    "CellWeights",
    "Direction",
    "Gate",
    "GateWeights",
    "Kind",
    "RecurrentModel",
    "activations",
    "equations",
    "flat_matmul",
    "from_keras",
    "gates_of",
    "replay",
    "replay_inputs",
    "replay_layers",
]
