"""The cells package's public names: what a gated recurrent cell is, in any framework.

The public names: base.py's dataclasses, and kinds.py's functions that dispatch by kind to
lstm.py and gru.py (each kind's numpy step and Keras split; conv_lstm.py for ConvLSTM).
Modules of the package import the defining module, never this file, so that nothing
imports in a circle.
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
    Order,
    activations,
    flat_matmul,
    gates_of,
    memory_gate,
    replay_inputs,
)
from lstm_report.cells.kinds import equations, from_keras, replay, replay_layers

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
    "Order",
    "activations",
    "equations",
    "flat_matmul",
    "from_keras",
    "gates_of",
    "memory_gate",
    "replay",
    "replay_layers",
    "replay_inputs",
]
