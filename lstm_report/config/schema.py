"""What a config says, as frozen dataclasses: the models, the checks, the comparisons.

Parsing and its messages are in config/parse.py; reading a YAML file in config/yaml_file.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_report.model.checks import Checks
from lstm_report.readers.formats import model_stem

DEFAULT_TITLE = "LSTM weight report"

TOP_KEYS = ("title", "output", "models", "checks", "verify", "reader", "compare")
COMPARE_KEYS = ("baseline", "candidate", "layers")
MODEL_KEYS = (
    "path",
    "name",
    "layers",
    "feature_names",
    "unsafe",
    "probe",
    "reader",
    "activations",
    "external_data",
    "pad_token",
    "vocabulary",
    "dynamics",
)
READERS = ("auto", "direct", "keras")
EXTERNAL_DATA = ("model", "allow")
MAX_MODELS = 1000
"""A config names at most this many models: one page cannot show more, and a sweep over
thousands of models is a job for a batch command, not one report."""
ACTIVATION_KEYS = ("activation", "recurrent_activation")
PROBE_KEYS = ("path", "array", "sequence")
DYNAMICS_KEYS = ("inputs",)
DYNAMICS_INPUTS = ("zero", "mean")


CHECK_KEYS = tuple(Checks.__dataclass_fields__)


@dataclass(frozen=True)
class ProbeSpec:
    """Probe data for a model: an .npy array, or one named array of an .npz file."""

    path: Path
    array: str | None = None
    sequence: int = 0
    """Which sequence the hidden- and cell-state heatmaps show."""


def natural_key(path: Path | str) -> list[Any]:
    """Sort key putting epoch_5 before epoch_10: digit runs compare as numbers."""
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``models:``: which file to read and what to report on it."""

    index: int
    path: Path
    name: str
    layers: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    unsafe: bool = False
    probe: ProbeSpec | None = None
    reader: str = "auto"
    """``auto`` (direct where it can read the file, else Keras), ``direct`` or ``keras``."""
    activations: tuple[tuple[str, str], ...] = ()
    """Overrides for what weights-only files cannot tell: (key, activation name) pairs."""
    series: tuple[Path, ...] | None = None
    """A checkpoint series (glob or list, in natural order); ``path`` is its last file."""
    pad_token: int = 0
    """Token models: the id that blanks a token in the importance (``pad_token``)."""
    vocabulary: tuple[str, ...] | None = None
    """Token models: the name of each token id (``vocabulary``: a list, or a text file)."""
    external_data: str = "model"
    """Where an ONNX file's external data may be read from: ``model``, only the data file
    made for it (model.onnx.data beside it); ``allow``, any file inside its folder."""
    shown: tuple[str, ...] = ()
    """How the page names each file of ``series or (path,)``: as the config gave it,
    relative to the config (an absolute path: the file name). Never an absolute path."""
    dynamics: str | None = "zero"
    """What the input is held at for the fixed points (``zero`` or ``mean``, the probe's
    mean); None: no dynamics, fixed points or unit ablation (``dynamics: false``)."""

    @property
    def key(self) -> str:
        """The key path of this entry, for error messages: ``models[0]``."""
        return f"models[{self.index}]"

    def shown_path(self, path: Path | None = None) -> str:
        """How the page, the JSON and the Markdown name ``path`` (default: ``self.path``)."""
        path = self.path if path is None else path
        files = self.series or (self.path,)
        return dict(zip(files, self.shown)).get(path, path.name)


@dataclass(frozen=True)
class CompareSpec:
    """One entry of ``compare:``: two model names, and which layer is which."""

    index: int
    baseline: str
    candidate: str
    layers: tuple[tuple[str, str], ...] | None = None
    """``layers:``: (baseline layer name, candidate layer name) pairs, in the config's order;
    None: by name, else by position (analysis.compare.compare_models)."""
    saved_baseline: Path | None = None
    """Set where the baseline is a report's JSON written earlier (then ``baseline`` is the
    path as given): its numbers are compared, not weights (output/baseline.py)."""
    saved_candidate: Path | None = None
    where: str | None = None
    """How messages name this entry (default ``compare[index]``)."""

    @property
    def saved(self) -> bool:
        return self.saved_baseline is not None or self.saved_candidate is not None


@dataclass(frozen=True)
class Config:
    """A validated config. Paths are absolute (resolved against the config's folder)."""

    models: tuple[ModelSpec, ...]
    title: str = DEFAULT_TITLE
    output: Path | None = None
    source: Path | None = None
    checks: Checks = Checks()
    verify: bool | None = None
    """Replay vs Keras: True, False, or None (only when the model was read through Keras)."""
    compare: tuple[CompareSpec, ...] = ()

    def input_files(self, skip: Collection[int] = ()) -> Iterator[tuple[str, Path]]:
        """Every file a run reads, labelled for messages: config, models, checkpoints,
        probes. ``skip``: indexes of models already in memory (their files are not read)."""
        if self.source is not None:
            yield "the config", self.source
        for spec in self.models:
            if spec.index not in skip:
                if spec.series:
                    for n, path in enumerate(spec.series, 1):
                        yield f"{spec.key}'s checkpoint {n}", path
                else:
                    yield f"{spec.key}'s model", spec.path
            if spec.probe is not None:
                yield f"{spec.key}'s probe", spec.probe.path
        for c in self.compare:
            for role, saved in (("baseline", c.saved_baseline), ("candidate", c.saved_candidate)):
                if saved is not None:
                    yield f"{c.where or f'compare[{c.index}]'}'s {role}", saved


def page_name(name: str) -> str:
    """NAME.html for a model named NAME: a file in the current folder, whatever the name
    holds (path separators and control characters become ``_``)."""
    safe = re.sub(r"[/\\\x00-\x1f\x7f]", "_", name).strip()
    return f"{'_' if safe.startswith('.') or not safe else ''}{safe}.html"


def checkpoint_label(path: Path) -> str:
    """How ``model@label`` names one checkpoint of a series: the file name without its
    model suffix (readers.formats: ``epoch_3.keras``, ``epoch_3.weights.h5``, ``epoch_3.pt``,
    ``epoch_3.safetensors``, ``epoch_3.onnx`` are all ``epoch_3``)."""
    return model_stem(path.name)


def too_many_models(count: str) -> str:
    return (
        f"models: {count} models; one config names at most {MAX_MODELS:,} "
        "(split them into several configs; for sweeps, `lstm-report batch` builds one report "
        "per config)"
    )
