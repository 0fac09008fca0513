"""Issue 26.4: `lstm-report figures`, every figure drawn by matplotlib from the page's geometry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.config.sources import model_file_config
from lstm_report.figures.chart import Chart
from lstm_report.figures.export import charts, write_figures
from lstm_report.pipeline import report_and_figures
from tests.conftest import write_config
from tests.helpers import REPO
from tests.test_end_to_end import run_main

ROOT = REPO
FEATURES = ["t$x$", "pressure", "a_b", "$\\alpha$", "e"]
"""simple_model reads 5 features; two names would be mathtext if matplotlib parsed them."""


@pytest.fixture(scope="module")
def drawn(simple_model: Any) -> tuple[Any, dict[str, Any]]:
    cfg = model_file_config(simple_model.path, feature_names=FEATURES)
    from dataclasses import replace

    return report_and_figures(replace(cfg, verify=False), generated="2026-01-01 00:00 UTC")


@pytest.mark.parametrize("fmt", ["pdf", "svg", "png"])
def test_reruns_write_the_same_bytes(
    drawn: tuple[Any, dict[str, Any]], tmp_path: Path, fmt: str
) -> None:
    report, figures = drawn
    (layer,) = report.models[0].layers
    lf = figures.layers[layer.anchor]
    few = {"s": (("heat", lf.heat_W), ("hist", lf.histograms))}  # text, lines and an image
    a = write_figures(report, few, tmp_path / "a", fmt, dpi=72)
    b = write_figures(report, few, tmp_path / "b", fmt, dpi=72)
    assert a == b and len(a) == 2
    for e in a:
        assert (tmp_path / "a" / e.file).read_bytes() == (tmp_path / "b" / e.file).read_bytes()
    first = (tmp_path / "a" / a[0].file).read_bytes()
    if fmt == "pdf":
        assert b"/CreationDate" not in first and b"/ModDate" not in first
        assert b"/FontFile2" in first  # TrueType fonts embedded, not merely named
    if fmt == "svg":
        assert b"<dc:date>" not in first


def test_figures_json_lists_every_file(drawn: tuple[Any, dict[str, Any]], tmp_path: Path) -> None:
    report, figures = drawn
    write_figures(report, figures, tmp_path, "svg", dpi=72)
    index = json.loads((tmp_path / "figures.json").read_text(encoding="utf-8"))
    files = sorted(p.name for p in tmp_path.iterdir() if p.name != "figures.json")
    assert sorted(e["file"] for e in index["figures"]) == files
    assert index["format"] == "svg"
    (layer,) = report.models[0].layers
    lf = figures.layers[layer.anchor]
    by_file = {e["file"]: e for e in index["figures"]}
    heat = by_file[f"{layer.anchor}-heat_W.svg"]
    assert heat == {
        "file": f"{layer.anchor}-heat_W.svg",
        "section": layer.anchor,
        "figure": "heat_W",
        "shows": lf.heat_W.alt,
        "model": report.models[0].name,
        "layer": layer.weights.label,
    }
    # Every figure the page has (an EmbeddedFigure of a layer section) has its file.
    page = {f"{layer.anchor}-{k}.svg" for k, v in vars(lf).items() if hasattr(v, "chart")}
    assert page <= set(files)


def _xy(line: Any) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in line.get_xydata()]


def test_plotted_data_is_the_chart_geometry(drawn: tuple[Any, dict[str, Any]]) -> None:
    from lstm_report.figures import mpl

    report, figures = drawn
    (layer,) = report.models[0].layers
    lf = figures.layers[layer.anchor]
    hist: Chart = lf.histograms.chart
    fig = mpl.figure(hist)
    for p, ax in zip(hist.panels, mpl.panel_axes(fig, hist)):
        expect = [list(g.points) for g in p.guides] + [list(ln.points) for ln in p.lines]
        assert [_xy(ln) for ln in ax.lines] == expect
        assert list(ax.get_xticks()) == [t.at for t in p.xticks]
        assert [t.get_text() for t in ax.get_xticklabels()] == [t.label for t in p.xticks]
        assert ax.get_xlim() == (p.x, p.x + p.w) and ax.get_ylim() == (p.y + p.h, p.y)
    # Heatmaps: the pooled matrix itself, on the page's ±vmax scale and colours.
    heat: Chart = lf.heat_W.chart
    fig = mpl.figure(heat)
    gates = [layer.weights.kernel[:, k * 4 : (k + 1) * 4] for k in range(4)]
    vmax = float(np.max(np.abs(layer.weights.kernel)))
    for p, ax, w in zip(heat.panels, mpl.panel_axes(fig, heat), gates):
        (im,) = ax.get_images()
        assert p.raster is not None
        np.testing.assert_array_equal(np.asarray(im.get_array()), w)  # 5×4: not pooled
        assert im.norm.vmin == -vmax and im.norm.vmax == pytest.approx(vmax)
        np.testing.assert_array_equal(
            np.round(im.cmap(np.arange(256))[:, :3] * 255).astype(np.uint8),
            __import__("lstm_report.figures.encode", fromlist=["x"]).diverging_lut(),
        )


def test_names_stay_literal_text(drawn: tuple[Any, dict[str, Any]]) -> None:
    from matplotlib.text import Text

    from lstm_report.figures import mpl

    report, figures = drawn
    (layer,) = report.models[0].layers
    heat: Chart = figures.layers[layer.anchor].heat_W.chart
    fig = mpl.figure(heat)
    ax = mpl.panel_axes(fig, heat)[0]
    labels = ax.get_yticklabels()
    shown = [Text._preprocess_math(t, t.get_text()) for t in labels]  # what gets drawn
    assert shown == [(name, False) for name in FEATURES]


@pytest.mark.slow  # two interpreters: ~5 s each on a loaded machine
def test_build_never_imports_matplotlib(simple_model: Any, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from lstm_report.cli import main\n"
        "args = ['{}', '{}', '-o', '{}', '--reader', 'direct', '--no-verify', '-q']\n"
        "assert main(args) == 0\n"
        "print('MPL', 'matplotlib' in sys.modules)\n"
    )
    for command, out in (("build", tmp_path / "r.html"), ("figures", tmp_path / "figs")):
        r = subprocess.run(
            [sys.executable, "-c", code.format(command, simple_model.path, out)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert f"MPL {command == 'figures'}" in r.stdout, r.stdout + r.stderr


def test_cli_writes_the_figures_and_refuses_a_file_as_folder(
    simple_model: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\nverify: false\n")
    out = tmp_path / "figs"
    code, err = run_main(capfd, "figures", str(cfg), "-o", str(out), "--format", "png")
    assert code == 0, err
    assert err.strip() == f"wrote {len(list(out.glob('*.png')))} figures and figures.json to {out}"
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, err = run_main(capfd, "figures", str(cfg), "-o", str(blocker))
    assert code == 1
    assert err == f"error: {blocker}: not a folder (figures go into a folder: -o DIR)\n"


def test_every_figure_of_a_report_has_a_chart(drawn: tuple[Any, dict[str, Any]]) -> None:
    report, figures = drawn
    entries = list(charts(report, figures))
    names = [e.file for e, _ in entries]
    assert len(names) == len(set(names))
    assert all(isinstance(c, Chart) for _, c in entries)


def test_a_layer_name_never_becomes_a_path(
    drawn: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    """A series' figures are named by their layer, which a file names: slugged, numbered
    where two slugs meet, the name itself kept in figures.json."""
    from lstm_report.figures.encode import EmbeddedFigure

    report, figures = drawn
    chart = next(iter(charts(report, figures)))[1]
    evil = {
        "m0-x-series": (
            ("../../evil", EmbeddedFigure("", "one", chart=chart)),
            ("..//EVIL", EmbeddedFigure("", "two", chart=chart)),
        )
    }
    written = write_figures(report, evil, tmp_path / "out", "svg", dpi=72)
    assert [(e.file, e.figure, e.layer) for e in written] == [
        ("m0-x-series-evil.svg", "../../evil", "../../evil"),
        ("m0-x-series-evil-2.svg", "..//EVIL", "..//EVIL"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
