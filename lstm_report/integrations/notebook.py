"""Reports inline in Jupyter and VS Code: the page in an ``<iframe srcdoc>``, and ``show``.

The iframe keeps the report's styles and scripts to itself (as ydata-profiling's
``to_notebook_iframe()`` does): the page is the ``srcdoc`` attribute, attribute-escaped, so
nothing of it is markup of the notebook. Its own Content-Security-Policy meta still
applies inside the frame (and Chromium also applies the notebook's policy to a srcdoc
frame, which the report's hashed scripts satisfy whenever the notebook allows scripts).
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_report.errors import ConfigError

FALLBACK_HEIGHT = 800
"""The frame's height (px) until it has loaded and can be sized to its page."""

_FIT = (
    "try{var d=this.contentDocument;if(d&&d.documentElement)"
    "{this.style.height=(d.documentElement.scrollHeight+4)+'px';}}catch(e){}"
)
"""The frame's onload: as tall as its page, so the notebook scrolls, not the frame (the
notebook's own script, allowed where the notebook trusts its outputs; else the fallback)."""


def iframe_html(page: str, path: Path | None = None, title: str = "lstm-report") -> str:
    """The report ``page`` in an iframe (its own document), with a link to its file."""
    frame = (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" title="{html.escape(title)}" '
        f'style="width:100%;height:{FALLBACK_HEIGHT}px;border:0" '
        f'onload="{html.escape(_FIT, quote=True)}"></iframe>'
    )
    if path is None:
        return f"<div>{frame}</div>"
    href = _href(path)
    link = (
        f'<p style="margin:4px 0"><a href="{html.escape(href, quote=True)}" target="_blank" '
        f'rel="noopener">{html.escape(str(path))}</a></p>'
    )
    return f"<div>{frame}{link}</div>"


def _href(path: Path) -> str:
    """A link the notebook's server resolves (relative, under the working folder), else a
    file: URI (VS Code and local viewers open those)."""
    absolute = path.resolve()
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return absolute.as_uri()


def result_html(html_path: Path, title: str) -> str:
    """A written report as a notebook shows it."""
    return iframe_html(html_path.read_text(encoding="utf-8"), html_path, title)


# ---- show: one line from a model in memory or a file ----------------------------------------


def show(
    model_or_path: Any,
    *,
    probe: Any = None,
    feature_names: Sequence[str] | None = None,
    output: str | Path | None = None,
    name: str | None = None,
    title: str | None = None,
    **options: Any,
) -> Any:
    """Build the report of a ``keras.Model``, a PyTorch ``state_dict()`` (a mapping of
    tensors or arrays) or a model file, and return the BuildResult (a notebook shows it
    inline). ``probe`` is a path to an .npy/.npz, or an array; the page goes to ``output``
    (default: a new temporary folder). ``options`` are further config keys (``checks``,
    ``layers``, ...)."""
    from lstm_report.pipeline import build_report

    folder = Path(tempfile.mkdtemp(prefix="lstm-report-")) if output is None else None
    page_name = f"{_safe(name or _default_name(model_or_path))}.html"
    out = Path(output) if output is not None else folder / page_name  # type: ignore[operator]
    # An array probe is saved where nothing of the user's can be: the temporary folder.
    probe_path = _probe_path(probe, folder)
    if isinstance(model_or_path, (str, Path, os.PathLike)):
        from lstm_report.config.schema import model_file_config

        cfg = model_file_config(
            os.fspath(model_or_path),
            name=name,
            probe=probe_path,
            feature_names=list(feature_names) if feature_names is not None else None,
        )
        if options or title:
            from dataclasses import replace

            if title:
                cfg = replace(cfg, title=title)
            if options:
                raise ConfigError(
                    f"show: {', '.join(sorted(options))}: for a model file, put these in a "
                    "config file and call build_report"
                )
        return build_report(cfg, output=out)
    opts: dict[str, Any] = dict(options)
    if probe_path is not None:
        opts["probe"] = probe_path
    if feature_names is not None:
        opts["feature_names"] = list(feature_names)
    if name is not None:
        opts["name"] = name
    if title is not None:
        opts["title"] = title
    if isinstance(model_or_path, Mapping):
        opts["weights"] = state_dict_weights(model_or_path, name or "model")
        return build_report(_Snapshot(name or "model"), output=out, options=opts)
    if hasattr(model_or_path, "get_weights"):
        return build_report(model_or_path, output=out, options=opts)
    if hasattr(model_or_path, "state_dict"):
        raise ConfigError(
            f"show: got a {type(model_or_path).__name__}; pass its state_dict() "
            "(a mapping of tensors), a keras.Model or a model file"
        )
    raise ConfigError(
        f"show: expected a keras.Model, a state_dict() mapping or a model file, "
        f"got {type(model_or_path).__name__}"
    )


class _Snapshot:
    """build_report's in-memory entry: a model with ``get_weights``, its weights given as
    ``options['weights']`` (as ReportCallback passes a snapshot), so no Keras is involved."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_weights(self) -> list[Any]:  # never called: options["weights"] is used
        raise AssertionError("a snapshot's weights are passed as options['weights']")


def as_array(value: Any) -> Any:
    """A tensor or array as a numpy array, without importing torch: a torch tensor is
    ``.detach().cpu().numpy()``, anything else ``np.asarray``."""
    import numpy as np

    if all(hasattr(value, a) for a in ("detach", "cpu", "numpy")):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()  # numpy has no bfloat16
        return np.asarray(value.numpy())
    return np.asarray(value)


def state_dict_weights(state: Mapping[Any, Any], name: str) -> Any:
    """The ModelWeights of a PyTorch state dict in memory (nn.LSTM/nn.GRU keys)."""
    import math

    from lstm_report.errors import ModelLoadError
    from lstm_report.model.layers import RecurrentModel
    from lstm_report.readers.frameworks import framework_model
    from lstm_report.readers.torch.rnn import cells_from_state_dict, is_rnn_key

    where = f"{name} (state dict)"
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise ConfigError(f"show: state dict keys are strings, got {type(key).__name__}")
        if is_rnn_key(key):
            arrays[key] = as_array(value)
    cells, other = cells_from_state_dict(arrays, where=where)
    if not cells and not other:
        raise ModelLoadError(
            f"{where}: no nn.LSTM or nn.GRU weights (no key like weight_ih_l0 or, for a cell, "
            "weight_ih)"
        )
    total = sum(math.prod(getattr(v, "shape", ()) or (1,)) for v in state.values())
    found = RecurrentModel(
        source=where, framework="PyTorch state dict", cells=cells, other=other, total_params=total
    )
    return framework_model(found, Path(where), name, "pytorch")


def _probe_path(probe: Any, folder: Path | None) -> str | None:
    """The probe's path: as given, or an array saved to ``folder`` (a new temporary one
    when None: never beside the user's output, where it could replace a file)."""
    if probe is None or isinstance(probe, (str, Path, os.PathLike)):
        return None if probe is None else os.fspath(probe)
    import numpy as np

    path = (folder or Path(tempfile.mkdtemp(prefix="lstm-report-probe-"))) / "probe.npy"
    np.save(path, as_array(probe), allow_pickle=False)
    return str(path)


def _default_name(model: Any) -> str:
    if isinstance(model, (str, Path, os.PathLike)):
        return Path(os.fspath(model)).stem
    return str(getattr(model, "name", "model"))


def _safe(name: str) -> str:
    from lstm_report.config.schema import page_name

    return page_name(name).removesuffix(".html")
