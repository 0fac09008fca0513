"""Issue 26.1: reports inline in notebooks (BuildResult._repr_html_, lstm_report.show)."""

from __future__ import annotations

import html.parser
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lstm_report
from lstm_report.errors import ConfigError
from lstm_report.integrations.notebook import FALLBACK_HEIGHT, iframe_html
from tests.helpers import REPO

ROOT = REPO


class _Frames(html.parser.HTMLParser):
    """Every start tag of a fragment, with its attributes (unescaped by the parser)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Frames()
    p.feed(fragment)
    p.close()
    return p.tags


def _state_dict(hidden: int = 5, inputs: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "rnn.weight_ih_l0": rng.normal(size=(4 * hidden, inputs)).astype(np.float32),
        "rnn.weight_hh_l0": rng.normal(size=(4 * hidden, hidden)).astype(np.float32),
        "rnn.bias_ih_l0": rng.normal(size=4 * hidden).astype(np.float32),
        "rnn.bias_hh_l0": rng.normal(size=4 * hidden).astype(np.float32),
        "head.weight": np.zeros((1, hidden), np.float32),
    }


class _FakeTensor:
    """What a torch tensor offers that as_array uses (torch is not installed here); the
    array is reachable only through detach().cpu().numpy()."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.shape = a.shape

    def detach(self) -> _FakeTensor:
        return self

    def cpu(self) -> _FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self._a

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise AssertionError("read through np.asarray, not .detach().cpu().numpy()")


def test_iframe_holds_the_page_as_escaped_text() -> None:
    page = '<!doctype html><p title="a&quot;b">x</p><script>alert("</iframe>")</script>'
    out = iframe_html(page, None)
    tags = _tags(out)
    # The page's own tags never become the notebook's: one div, one iframe, nothing else.
    assert [t for t, _ in tags] == ["div", "iframe"]
    attrs = tags[1][1]
    assert attrs["srcdoc"] == page
    assert f"height:{FALLBACK_HEIGHT}px" in str(attrs["style"])
    assert "<script" not in out and '</iframe>")' not in out


def test_show_state_dict_without_torch(tmp_path: Path) -> None:
    """A state dict of arrays and the same of tensors give the same report, whose W and U
    are PyTorch's weight_ih and weight_hh, gate for gate (i, f, g, o)."""
    sd = _state_dict()
    a = lstm_report.show(sd, output=tmp_path / "a.html", feature_names=["p", "q", "r"])
    b = lstm_report.show(
        {k: _FakeTensor(v) for k, v in sd.items()},
        output=tmp_path / "b.html",
        feature_names=["p", "q", "r"],
    )
    assert "torch" not in sys.modules
    (layer,) = a.report.models[0].layers
    H = 5
    for k, g in enumerate("ifco"):
        np.testing.assert_array_equal(
            layer.weights.kernel[:, k * H : (k + 1) * H],
            sd["rnn.weight_ih_l0"][k * H : (k + 1) * H].T,
        )
        np.testing.assert_array_equal(
            layer.weights.recurrent_kernel[:, k * H : (k + 1) * H],
            sd["rnn.weight_hh_l0"][k * H : (k + 1) * H].T,
        )
    assert a.data["models"] == b.data["models"]
    assert [f.name for f in layer.features] == ["p", "q", "r"]
    tags = _tags(a._repr_html_())
    assert [t for t, _ in tags] == ["div", "iframe", "p", "a"]
    assert tags[1][1]["srcdoc"] == (tmp_path / "a.html").read_text(encoding="utf-8")
    assert tags[3][1]["href"] == (tmp_path / "a.html").resolve().as_uri()


def test_show_writes_to_a_temporary_folder_and_saves_an_array_probe() -> None:
    sd = _state_dict(hidden=3, inputs=2)
    probe = np.random.default_rng(1).normal(size=(2, 6, 2)).astype(np.float32)
    r = lstm_report.show(sd, probe=probe, name="tiny")
    try:
        assert r.html_path.name == "tiny.html" and r.html_path.parent.name.startswith(
            "lstm-report-"
        )
        np.testing.assert_array_equal(np.load(r.html_path.parent / "probe.npy"), probe)
        (layer,) = r.report.models[0].layers
        assert layer.activity is not None and layer.activity.h.shape == (6, 3)
    finally:
        for p in r.html_path.parent.iterdir():
            p.unlink()
        r.html_path.parent.rmdir()


def test_show_model_file_and_live_model(simple_model: Any, tmp_path: Path) -> None:
    from_file = lstm_report.show(simple_model.path, output=tmp_path / "f.html")
    live = lstm_report.show(simple_model.model, output=tmp_path / "m.html", verify=False)
    w_file = from_file.report.models[0].layers[0].weights
    w_live = live.report.models[0].layers[0].weights
    kernel, recurrent, bias = simple_model.model.get_layer("lstm").get_weights()
    np.testing.assert_array_equal(w_file.kernel, kernel)
    np.testing.assert_array_equal(w_live.recurrent_kernel, recurrent)
    np.testing.assert_array_equal(w_live.bias, bias)


def test_show_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    class Module:
        def state_dict(self) -> dict[str, Any]:
            return {}

    with pytest.raises(ConfigError, match=r"^show: got a Module; pass its state_dict\(\)"):
        lstm_report.show(Module(), output=tmp_path / "x.html")
    with pytest.raises(ConfigError, match="^show: expected a keras.Model"):
        lstm_report.show(3, output=tmp_path / "x.html")
    with pytest.raises(Exception, match="no nn.LSTM or nn.GRU weights"):
        lstm_report.show({"fc.weight": np.zeros((2, 2))}, output=tmp_path / "x.html")


# ---- a real notebook, run headlessly, its output shown in Chromium ---------------------------


NOTEBOOK_CELL = """\
import numpy as np
import lstm_report
rng = np.random.default_rng(0)
H, I = 4, 3
state = {{
    "lstm.weight_ih_l0": rng.normal(size=(4 * H, I)).astype("float32"),
    "lstm.weight_hh_l0": rng.normal(size=(4 * H, H)).astype("float32"),
    "lstm.bias_ih_l0": np.zeros(4 * H, "float32"),
    "lstm.bias_hh_l0": np.zeros(4 * H, "float32"),
}}
lstm_report.show(state, feature_names=["a", "b", "c"], output={output!r})
"""


@pytest.fixture(scope="module")
def notebook_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The text/html output of a notebook cell that calls show, run by a real kernel."""
    pytest.importorskip("nbclient")
    import nbformat
    from nbclient import NotebookClient

    tmp = tmp_path_factory.mktemp("notebook")
    page = tmp / "report.html"
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CELL.format(output=str(page))))
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}
        ).execute()
    finally:
        if env_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = env_path
    (out,) = nb.cells[0].outputs
    assert out["output_type"] == "execute_result"
    return out["data"]["text/html"], page


def test_notebook_cell_shows_the_iframe(notebook_output: tuple[str, Path]) -> None:
    fragment, page = notebook_output
    tags = _tags(fragment)
    assert [t for t, _ in tags] == ["div", "iframe", "p", "a"]
    assert tags[1][1]["srcdoc"] == page.read_text(encoding="utf-8")


JUPYTER_LIKE = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:"
)
"""A notebook page's own policy where it sets one: Chromium applies it inside a srcdoc frame
too, beside the report's (a policy without inline scripts stops the report's scripts and
the sizing: docs/notebooks.md)."""


@pytest.mark.browser
@pytest.mark.parametrize("policy", [None, JUPYTER_LIKE], ids=["no-policy", "jupyter-like"])
def test_notebook_iframe_runs_in_chromium(
    notebook_output: tuple[str, Path], tmp_path: Path, policy: str | None
) -> None:
    """The cell's output in a page as a notebook shows it: the frame loads with no console
    error or CSP complaint, the report's own script runs inside it (the tables sort), its
    images load, and the frame is sized to its page."""
    from tests.test_browser import CHROMIUM, FLAGS, _require, _wait_for

    _require()
    from playwright.sync_api import sync_playwright

    fragment, _ = notebook_output
    host = tmp_path / "notebook.html"
    meta = (
        "" if policy is None else f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    )
    host.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>nb</title></head>"
        f"<body><div class='output'>{fragment}</div></body></html>",
        encoding="utf-8",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(host.as_uri())
            page.wait_for_load_state("load")
            _wait_for(page, "document.querySelector('iframe').style.height !== '800px'")
            frame = page.frames[1]
            buttons = frame.evaluate("document.querySelectorAll('th > button.sort').length")
            inner = frame.evaluate("document.documentElement.scrollHeight")
            images = frame.evaluate(
                "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
            )
            height = page.evaluate(
                "document.querySelector('iframe').getBoundingClientRect().height"
            )
            page.wait_for_timeout(200)
            assert errors == []
            assert buttons > 0
            assert images and all(images)
            assert height > FALLBACK_HEIGHT and height >= inner  # the frame never scrolls
        finally:
            browser.close()


def test_an_array_probe_never_lands_beside_the_output(tmp_path: Path) -> None:
    mine = tmp_path / "probe.npy"
    mine.write_bytes(b"the user's own file")
    probe = np.ones((1, 4, 2), np.float32)
    r = lstm_report.show(_state_dict(hidden=3, inputs=2), probe=probe, output=tmp_path / "r.html")
    assert mine.read_bytes() == b"the user's own file"
    assert r.report.models[0].layers[0].activity is not None
