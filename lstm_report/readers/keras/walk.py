"""The one walk over a Keras config's recurrent layers: each split into its halves (a
Bidirectional's two), then analysed (LSTMs, GRUs, ConvLSTMs) or listed (the rest) by the
reader's own access to the arrays: a stored file's groups or a live model's objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.model.layers import OtherLayer, RecurrentLayer
from lstm_report.readers.keras.conv import CONV_KINDS, conv_layer
from lstm_report.readers.keras.h5 import ANALYSED, build_lstms, cell_kind, other_layer
from lstm_report.readers.keras.topology import FoundLayer, Half, find_recurrent, split_halves


class HalvesReader(Protocol):
    """What one reader knows of the halves of a found layer."""

    def kinds(self, found: FoundLayer, halves: Sequence[Half]) -> set[str]:
        """The kinds of its halves (``{"LSTM"}``: an LSTM, or a Bidirectional of two)."""
        ...

    def layers(self, found: FoundLayer, halves: Sequence[Half]) -> list[RecurrentLayer]:
        """The analysed layers, one a half (called only for kinds in ANALYSED)."""
        ...

    def other(self, found: FoundLayer, kinds: set[str]) -> OtherLayer:
        """The layer as listed, not analysed."""
        ...

    def arrays(self, found: FoundLayer, half: Half) -> list[np.ndarray]:
        """One half's weight arrays as stored (kernel, recurrent kernel, bias)."""
        ...

    where: str
    """The file, for messages."""


Walked = tuple[list[RecurrentLayer], list[OtherLayer], list[ConvRecurrentLayer]]
"""The analysed LSTMs and GRUs, the listed layers, the ConvLSTMs, each in config order."""


def walk_recurrent(config: Mapping[str, Any], reader: HalvesReader) -> Walked:
    """The analysed and the listed recurrent layers of a config, in config order."""
    lstms: list[RecurrentLayer] = []
    others: list[OtherLayer] = []
    convs: list[ConvRecurrentLayer] = []
    for found in find_recurrent(config):
        halves = split_halves(found)
        kinds = reader.kinds(found, halves)
        if kinds in ANALYSED:
            lstms += reader.layers(found, halves)
        elif found.class_name in CONV_KINDS:  # a Bidirectional ConvLSTM stays listed
            convs.append(conv_layer(found, reader.arrays(found, halves[0]), reader.where))
        else:
            others.append(reader.other(found, kinds))
    return lstms, others, convs


class StoredHalves:
    """A file's halves: kinds from the config, arrays from the file (``arrays_of``), each
    found layer first checked against the file (``check``: its weights group is there)."""

    def __init__(
        self,
        arrays_of: Callable[[FoundLayer, Half], list[np.ndarray]],
        *,
        legacy: bool,
        where: str,
        check: Callable[[FoundLayer], None] | None = None,
    ) -> None:
        self.arrays_of, self.legacy, self.where, self.check = arrays_of, legacy, where, check

    def kinds(self, found: FoundLayer, halves: Sequence[Half]) -> set[str]:
        if self.check is not None:
            self.check(found)
        return {cell_kind(h.class_name, h.config) for h in halves}

    def layers(self, found: FoundLayer, halves: Sequence[Half]) -> list[RecurrentLayer]:
        # Lazily, a half at a time: a half is read and checked before the next is read.
        arrays = ((h, self.arrays_of(found, h)) for h in halves)
        return build_lstms(found, self.legacy, arrays, self.where)

    def other(self, found: FoundLayer, kinds: set[str]) -> OtherLayer:
        return other_layer(found, kinds)

    def arrays(self, found: FoundLayer, half: Half) -> list[np.ndarray]:
        return self.arrays_of(found, half)


def read_stored(
    config: Mapping[str, Any],
    arrays_of: Callable[[FoundLayer, Half], list[np.ndarray]],
    *,
    legacy: bool,
    where: str,
    check: Callable[[FoundLayer], None] | None = None,
) -> Walked:
    """walk_recurrent over a stored file (StoredHalves)."""
    return walk_recurrent(config, StoredHalves(arrays_of, legacy=legacy, where=where, check=check))
