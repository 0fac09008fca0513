"""Figures: downsampling by hand, shared colour scales, embedded and byte-stable output."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.analysis.layer import analyse_layer
from lstm_report.figures import MAX_CELLS, heatmaps, layer_figures, pool_max_abs
from lstm_report.model.layers import RecurrentLayer
from tests.helpers import REPO


def test_pool_keeps_signed_largest_magnitude() -> None:
    a = np.array(
        [
            [1.0, -5.0, 2.0, 0.5],
            [0.1, 0.2, -3.0, 9.0],
            [7.0, 0.0, 0.0, 0.0],
            [-8.0, 1.0, 0.0, 0.0],
        ]
    )
    got = pool_max_abs(a, max_cells=2)
    np.testing.assert_array_equal(got, [[-5.0, 9.0], [-8.0, 0.0]])


def test_pool_uneven_blocks_ignore_padding() -> None:
    a = -np.ones((5, 3))
    a[4, 2] = -2.0
    got = pool_max_abs(a, max_cells=2)  # blocks of 3 rows x 2 cols, padded
    assert got.shape == (2, 2)
    np.testing.assert_array_equal(got, [[-1.0, -1.0], [-1.0, -2.0]])


def test_pool_matches_brute_force_on_random_large_matrix() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 520))
    got = pool_max_abs(a)
    br, bc = 3, 3  # ceil(600/256), ceil(520/256)
    assert got.shape == (200, 174) and max(got.shape) <= MAX_CELLS
    for r, c in [(0, 0), (57, 101), (199, 173)]:
        block = a[r * br : (r + 1) * br, c * bc : (c + 1) * bc]
        assert got[r, c] == block.flat[np.argmax(np.abs(block))]


def test_pool_shows_nan() -> None:
    a = np.zeros((4, 4))
    a[0, 1] = np.nan
    got = pool_max_abs(a, max_cells=2)
    assert np.isnan(got[0, 0]) and not np.isnan(got[1, 1])


def test_small_matrix_is_not_pooled() -> None:
    a = np.ones((3, 4))
    assert pool_max_abs(a) is a


def _layer(units: int, input_dim: int, seed: int = 0) -> RecurrentLayer:
    rng = np.random.default_rng(seed)
    return RecurrentLayer.from_keras_arrays(
        name="l<1>",
        direction="forward",
        kernel=rng.normal(size=(input_dim, 4 * units)).astype(np.float32),
        recurrent_kernel=rng.normal(size=(units, 4 * units)).astype(np.float32),
        bias=rng.normal(size=(4 * units,)).astype(np.float32),
        reads_input=True,
    )


def test_large_layer_is_pooled_and_says_so() -> None:
    la = analyse_layer(_layer(300, 4), [f"f{j}" for j in range(4)], "a")
    figs = layer_figures(la)
    assert figs.pooled is not None
    assert "U matrices of 300×300 shown as 150×150 (max-|w| pooling)" in figs.pooled


def test_heatmap_scale_is_shared_across_gates() -> None:
    mats = [np.full((2, 2), 0.1), np.full((2, 2), -3.0), np.zeros((2, 2)), np.ones((2, 2))]
    fig, _ = heatmaps(mats, "W", ["a", "b"], "layer")
    assert "±3" in fig.alt


def svg_text(uri: str) -> str:
    """The SVG of a figure's data URI (percent-encoded)."""
    from urllib.parse import unquote

    assert uri.startswith("data:image/svg+xml,")
    return unquote(uri.split(",", 1)[1])


def test_figures_are_embedded_data_uris_and_byte_stable() -> None:
    la = analyse_layer(_layer(6, 3), ["a", "b", "c"], "a")
    one = layer_figures(la)
    two = layer_figures(la)
    assert one == two
    heat = svg_text(one.heat_W.uri)
    # one image per gate, and the colour bar
    assert heat.startswith("<svg") and heat.count('href="data:image/png;base64,') == 5
    svg = svg_text(one.histograms.uri)
    assert svg.startswith("<svg") and "<image" not in svg
    for text in (heat, svg):
        assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "<script" not in text and "<style" not in text


@pytest.mark.parametrize("units", [1, 2])
def test_tiny_layers_draw(units: int) -> None:
    la = analyse_layer(_layer(units, 1), ["only"], "a")
    figs = layer_figures(la)
    assert figs.biases is not None and figs.spectra is not None


def _series_svg(name: str) -> str:
    """The SVG of a series figure whose checkpoints are labelled ``name``."""
    from lstm_report.analysis.series import Series, checkpoint_figures
    from lstm_report.figures import series_figures
    from lstm_report.model.layers import ModelWeights

    w = _layer(2, 2)
    mw = ModelWeights("m", Path("m.keras"), (w,), reader="direct")
    keep = {(w.name, w.direction)}
    points = tuple(checkpoint_figures(f"{k}", mw, None, keep, label=name) for k in range(2))
    ((_, fig),) = series_figures(Series("m", points, "s"))
    return svg_text(fig.uri)


@pytest.mark.parametrize("name", ["a $\\frac$", "$x_1$", "$\\alpha$ and $\\beta$", "a^b_c {}"])
def test_user_names_are_literal_text_never_mathtext(name: str) -> None:
    # Feature names label the W heatmap rows; checkpoint labels the series ticks.
    from xml.sax.saxutils import escape

    la = analyse_layer(_layer(2, 2), [name, "b"], "a")
    layer_figures(la)  # mathtext raised ValueError on "\\frac"
    svg = _series_svg(name)
    # Text is written as text: the label appears whole, as typed (mathtext would split it
    # into positioned pieces and drop the dollars).
    assert f">{escape(name)}</text>" in svg


# ---- the figures without matplotlib: colour map, pixels, ticks, text, bytes ---------------


def _pngs(uri: str) -> list[Any]:
    """The heatmap images inside a figure's SVG, as RGB arrays."""
    import io
    import re

    from PIL import Image

    out = []
    for data in re.findall(r'href="data:image/png;base64,([^"]+)"', svg_text(uri)):
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.mode in ("P", "RGB")
            out.append(np.asarray(im.convert("RGB")))
    return out


def test_lut_is_matplotlibs_rdbu_r() -> None:
    import matplotlib

    from lstm_report.figures.encode import diverging_lut

    ref = matplotlib.colormaps["RdBu_r"](np.arange(256))[:, :3] * 255
    lut = diverging_lut()
    assert lut.shape == (256, 3)
    assert np.abs(lut - ref).max() <= 1.0


def test_values_map_to_the_entries_matplotlib_picks() -> None:
    import matplotlib
    from matplotlib.colors import Normalize

    from lstm_report.figures.encode import colour_indices, diverging_lut

    x = np.concatenate([np.linspace(-2.5, 2.5, 2001), [-2.0, 2.0, 0.0]])
    got = diverging_lut()[colour_indices(x, 2.0)]
    want = matplotlib.colormaps["RdBu_r"](Normalize(-2.0, 2.0)(x))[:, :3] * 255
    assert np.abs(got - want).max() <= 1.0
    assert list(colour_indices(np.array([np.nan, np.inf, -np.inf, 1.0]), 1.0)) == [-1, -1, -1, 255]


def test_pooled_pixels_are_the_colours_of_the_hand_pooled_matrix() -> None:
    from lstm_report.figures.encode import diverging_lut

    rng = np.random.default_rng(3)
    m = rng.normal(size=(300, 300))
    m[7, 9] = np.nan
    m[0, 0] = 9.0  # the scale: ±9
    fig, note = heatmaps([m, -m, m, m], "U", None, "l")
    assert note == "U matrices of 300×300 shown as 150×150 (max-|w| pooling)"
    first, second = _pngs(fig.uri)[:2]
    assert first.shape == (150, 150, 3)  # native pooled resolution, scaled by the browser
    lut = diverging_lut()
    for shown, sign in ((first, 1.0), (second, -1.0)):
        # by hand: 2×2 blocks, each its value of largest magnitude (a NaN wins), then the
        # LUT entry floor((v + 9) / 18 · 256), and black for NaN
        blocks = (sign * m).reshape(150, 2, 150, 2).transpose(0, 2, 1, 3).reshape(150, 150, 4)
        mag = np.abs(blocks)
        pick = np.argmax(np.where(np.isnan(mag), np.inf, mag), axis=2)
        v = np.take_along_axis(blocks, pick[..., None], axis=2)[..., 0]
        entry = np.clip(np.floor((np.nan_to_num(v) + 9.0) / 18.0 * 256), 0, 255).astype(int)
        want = np.where(np.isnan(v)[..., None], 0, lut[entry])
        np.testing.assert_array_equal(shown, want)
    for r, c in [(0, 0), (1, 1), (3, 5), (40, 77), (149, 149)]:  # spot checks, spelled out
        block = m[2 * r : 2 * r + 2, 2 * c : 2 * c + 2]
        v = block.flat[np.argmax(np.abs(block))]
        assert list(first[r, c]) == list(lut[min(255, int(np.floor((v + 9.0) / 18.0 * 256)))])
    assert list(first[3, 4]) == [0, 0, 0]  # the NaN at (7, 9) wins its block, in black


def test_heatmap_png_is_a_palette_of_the_colours_used() -> None:
    import io

    from PIL import Image

    from lstm_report.figures.encode import heat_png

    data = heat_png(np.array([[1.0, -1.0], [0.0, np.nan]]), 1.0)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "P" and im.size == (2, 2)
        assert len(im.getpalette() or []) == 4 * 3
        assert set(im.info) <= {"transparency"}  # no time, no software, no text chunks
    assert heat_png(np.array([[1.0, -1.0], [0.0, np.nan]]), 1.0) == data


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        (0.0, 1.0),
        (-0.37, 0.52),
        (0.013, 0.0141),
        (-3e-5, 2e-5),
        (0.0, 1234.5),
        (5.0, 5.0),
        (-1e7, 3e7),
        (0.2, 0.9),
        (-0.734, 0.734),
    ],
)
def test_ticks_are_nice_numbers_covering_the_data(lo: float, hi: float) -> None:
    from lstm_report.figures.scales import nice_limits, tick_label

    a, b, ticks = nice_limits(lo, hi)
    assert a == ticks[0] <= lo and b == ticks[-1] >= hi
    assert 2 <= len(ticks) <= 11
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0], rtol=1e-9)
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert any(np.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    for t in ticks:  # on the step's grid, without float noise
        assert np.isclose(t / steps[0], round(t / steps[0]))
    labels = [tick_label(t, ticks) for t in ticks]
    assert len(set(labels)) == len(labels)  # distinct labels: enough decimals
    assert all("-" not in s for s in labels)  # a true minus sign


def test_unit_axes_have_integer_ticks() -> None:
    from lstm_report.figures.heatmap import index_axis
    from lstm_report.figures.scales import inner_ticks, nice_limits

    for n in (1, 2, 3, 7, 16, 300, 1024):
        _, ticks = index_axis(n, min(n, 256), 0.0, 200.0)
        assert ticks and all(t.label.isdigit() for t in ticks), n
        assert int(ticks[-1].label) <= n - 1
    assert inner_ticks(0, 2, 8, integer=True) == [0, 1, 2]
    assert all(float(t).is_integer() for t in nice_limits(0, 3, 8, integer=True, zero=True)[2])


def test_log_ticks_cover_the_data() -> None:
    from lstm_report.figures.scales import Scale, log_limits

    lo, hi, ticks = log_limits(0.0042, 37.0)
    assert lo == 0.001 and hi == 100.0 and lo <= 0.0042 and hi >= 37.0
    assert [t for t in ticks if t in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)] == [
        0.001,
        0.01,
        0.1,
        1.0,
        10.0,
        100.0,
    ]
    s = Scale(lo, hi, 0.0, 500.0, log=True)
    assert np.allclose([s(0.001), s(0.1), s(100.0)], [0.0, 200.0, 500.0])
    _, _, few = log_limits(1.0, 9.0)
    assert few == [1.0, 2.0, 5.0, 10.0]


def _texts(svg: str) -> list[str]:
    """The text of every <text> of an SVG, as an XML parser reads it."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("name", ["$x_1$", "<b>", "a&b", "\"q\" 'q'", "a $\\frac$ b"])
def test_names_are_escaped_text_in_the_svg(name: str) -> None:
    import markupsafe

    la = analyse_layer(_layer(2, 2), [name, "b"], "a")
    heat = svg_text(layer_figures(la).heat_W.uri)
    series = _series_svg(name)
    for svg in (heat, series):  # a row label of the heatmap; a checkpoint's tick label
        assert name in _texts(svg)  # the name, whole, as the reader sees it
        assert f">{markupsafe.escape(name)}</text>" in svg
        assert "<b>" not in svg


def test_every_figure_kind_is_byte_identical_across_processes() -> None:
    import hashlib
    import subprocess
    import sys

    code = (
        "import hashlib, sys\n"
        "from tests.figures.test_figures import _all_figures\n"
        "sys.stdout.write(hashlib.sha256(_all_figures().encode()).hexdigest())\n"
    )
    here = hashlib.sha256(_all_figures().encode()).hexdigest()
    assert _all_figures() == _all_figures()
    root = REPO
    env = {**__import__("os").environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "123"}
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, check=True
    ).stdout
    assert there == here


def _all_figures() -> str:
    """The URIs of every kind of figure: layer (with probe activity), comparison, series."""
    from lstm_report.analysis.activity import probe_activity
    from lstm_report.analysis.compare import compare_models
    from lstm_report.analysis.probing import LayerRun
    from lstm_report.config.resolve import pair_layers
    from lstm_report.figures import comparison_figures

    w = _layer(5, 3)
    probe = np.random.default_rng(1).normal(size=(2, 7, 3)).astype(np.float32)
    activity, _ = probe_activity(w, probe, 1)
    la = analyse_layer(w, ["a", "b", "c"], "a", run=LayerRun(activity, probe))
    assert la.activity is not None and la.timescales is not None
    figs = layer_figures(la)
    assert None not in (figs.activity, figs.saturation, figs.states, figs.memory)
    base, cand = ("a", (w,)), ("b", (_layer(5, 3, seed=2),))
    comp = compare_models(base, cand, 0, pair_layers(base, cand, "c0"))
    return "\n".join([repr(figs), repr(comparison_figures(comp.layers[0])), _series_svg("x")])


def test_pool_rows_and_columns_separately() -> None:
    a = np.arange(24.0).reshape(4, 6)
    got = pool_max_abs(a, max_cells=4, max_cols=3)  # rows kept, columns in pairs
    np.testing.assert_array_equal(got, a.reshape(4, 3, 2).max(axis=2))


def test_a_heatmap_has_at_most_one_cell_per_pixel() -> None:
    # A U panel is under 200 px wide: 1,000 units are pooled to fit it, never squeezed by
    # the browser (which would drop pooled cells between screen pixels).
    m = np.random.default_rng(0).normal(size=(1000, 1000))
    fig, note = heatmaps([m, m, m, m], "U", None, "l")
    (first, *_) = _pngs(fig.uri)
    assert note is not None and first.shape[0] < 256 and first.shape[1] < 256
    import re

    svg = svg_text(fig.uri)
    width = float(
        re.findall(
            r'<image href="data:image/png;base64,[^"]+" x="[^"]+" y="[^"]+" width="([^"]+)"', svg
        )[0]
    )
    assert first.shape[1] <= width
    assert f"shown as {first.shape[0]}×{first.shape[1]}" in note


@pytest.mark.parametrize("strip", [1 << 16, 50])
def test_pool_by_strips_equals_the_first_largest_rule(
    strip: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path (block max and min, a strip at a time) must give what the general rule
    # gives on the whole matrix: ties, zeros, signs, padding, NaN, integers, float32.
    from lstm_report.figures import encode

    monkeypatch.setattr(encode, "POOL_STRIP_CELLS", strip)
    rng = np.random.default_rng(4)
    cases = [
        rng.normal(size=(600, 520)).astype(np.float32),
        rng.integers(-3, 4, size=(301, 257)).astype(np.float64),  # many ties
        np.where(rng.random((97, 64)) < 0.5, -0.0, 0.0),
        rng.integers(-5, 5, size=(40, 33)),
    ]
    nan = rng.normal(size=(70, 90))
    nan[3, 4] = np.nan
    nan[60, 80] = -np.inf
    cases.append(nan)
    for a in cases:
        for cells, cols in ((256, None), (16, 7), (9, 30)):
            got = pool_max_abs(a, cells, cols)
            rows, n = a.shape
            br = -(-rows // cells) if rows > cells else 1
            limit = cells if cols is None else cols
            bc = -(-n // limit) if n > limit else 1
            if br == bc == 1:
                assert got is a
                continue
            want = encode._pool_first(a, br, bc, -(-n // bc))
            assert got.dtype == want.dtype == np.float64
            np.testing.assert_array_equal(got, want)
            assert np.array_equal(np.signbit(got), np.signbit(want))


def test_delta_heatmaps_name_the_input_features(demo_run: Any) -> None:
    # The demo compares demo@epoch_1 with demo: ΔW of the first layer has one row per input
    # feature, named as the config names them; the second layer's inputs are units.
    import re
    from html import unescape

    html = demo_run.html.read_text()
    figs = {
        unescape(alt): unescape(src)
        for src, alt in re.findall(r'<img src="([^"]+)" alt="([^"]+)"', html)
    }
    delta_w = {
        alt: src for alt, src in figs.items() if alt.startswith("Heatmaps of the input weights ΔW")
    }
    encoder = svg_text(next(src for alt, src in delta_w.items() if " of encoder," in alt))
    summary = svg_text(next(src for alt, src in delta_w.items() if " of summary," in alt))
    for name in ("temperature", "pressure", "wind", "humidity", "noise_a", "noise_b"):
        assert f">{name}</text>" in encoder
        assert f">{name}</text>" not in summary


# ---- issue 20: histograms that show every value, tiles, the per-step chart --------------------


def _inverse(ticks: Any) -> Any:
    """Pixel -> data along an axis, from two of its tick marks (position and label)."""
    (p0, v0), (p1, v1) = [(t.at, float(t.label.replace("\u2212", "-"))) for t in ticks[:2]]
    return lambda px: v0 + (np.asarray(px, float) - p0) * (v1 - v0) / (p1 - p0)


def _mass(panel: Any, line: Any, lo: float = -np.inf, hi: float = np.inf) -> float:
    """The area under a histogram outline (steps), in data units, of the bins in [lo, hi]."""
    fx, fy = _inverse(panel.xticks), _inverse(panel.yticks)
    pts = np.array(line.points)
    xs, ys = fx(pts[:, 0]), fy(pts[:, 1])
    area = 0.0
    for k in range(1, len(pts) - 1, 2):  # (edge, height), (next edge, height) pairs
        left, right, height = xs[k], xs[k + 1], ys[k]
        if lo <= left and right <= hi:
            area += (right - left) * height
    return area


def _demo_like_layer(units: int = 16, inputs: int = 6, outlier: float | None = None) -> Any:

    rng = np.random.default_rng(4)
    k = (0.2 * rng.normal(size=(inputs, 4 * units))).astype(np.float32)
    if outlier is not None:
        k[0, 0] = outlier
    r = (0.2 * rng.normal(size=(units, 4 * units))).astype(np.float32)
    b = (0.05 * rng.normal(size=4 * units)).astype(np.float32)
    b[units : 2 * units] = np.linspace(1.0, 1.1, units)  # the demo's forget biases
    return RecurrentLayer.from_keras_arrays("l", "forward", k, r, b).cell.gates


def test_weight_histograms_draw_the_forget_biases_where_they_are() -> None:
    from lstm_report.figures.encode import GATE_COLORS
    from lstm_report.figures.histogram import histogram_chart

    chart = histogram_chart(_demo_like_layer())
    panels = {p.title: p for p in chart.panels}
    assert list(panels) == ["input weights W", "recurrent weights U", "biases b"]
    b = panels["biases b"]
    (f_line,) = [ln for ln in b.lines if ln.color == GATE_COLORS["f"]]
    # every forget bias is drawn: the area under its line is 1, all of it in the bins that
    # hold 1.0 to 1.1 (a bin is at most 0.15 wide here), none at an edge or at 0.37
    # (to the 0.1 px the outline is drawn at)
    assert _mass(b, f_line) == pytest.approx(1.0, rel=5e-3)
    assert _mass(b, f_line, 0.85, 1.25) == pytest.approx(1.0, rel=5e-3)
    assert not b.notes  # nothing outside the bins
    # each family has its own density axis: the tallest line reaches the top half of it
    for p in panels.values():
        fy = _inverse(p.yticks)
        top = max(float(fy(y)) for ln in p.lines for _, y in ln.points)
        assert top > 0.5 * float(p.yticks[-1].label.replace("\u2212", "-"))


def test_far_outliers_are_counted_not_clipped_into_the_edge() -> None:
    from lstm_report.figures.histogram import histogram_chart

    chart = histogram_chart(_demo_like_layer(units=16, inputs=64, outlier=1000.0))
    w = next(p for p in chart.panels if p.title == "input weights W")
    # the bins cover the central weights, and the one at 1000 is counted at the right edge
    assert float(w.xticks[-1].label) < 5
    assert [n.text for n in w.notes] == ["1 beyond ▸"]
    assert "outliers counted at the edges" in w.xlabel
    # and every other value of gate i is drawn (not 1% of them cut off by percentiles)
    assert _mass(w, w.lines[0]) > 0.995


def test_step_chart_has_a_y_axis_and_step_ticks() -> None:
    from lstm_report.figures.importance import step_chart, step_geometry

    values = [0.5 + 0.01 * j for j in range(30)]
    values[16] = 2.0
    fig = step_chart(values, "m")
    assert fig is not None and "largest 2 at step 16" in fig.alt
    geometry = step_geometry(values)
    assert geometry is not None
    (p,) = geometry.panels
    assert p.ylabel and len(p.yticks) >= 3 and p.yticks[0].label == "0"
    steps = [int(t.label) for t in p.xticks]
    assert steps[0] == 0 and len(steps) >= 4 and all(b > a for a, b in zip(steps, steps[1:]))
    # the tallest bar is over step 16 as the axis reads it, at its height on the y axis
    fx, fy = _inverse(p.xticks), _inverse(p.yticks)
    tall = min(p.rects, key=lambda r: r.y)
    assert float(fx(tall.x + tall.w / 2)) == pytest.approx(16, abs=0.05)
    assert float(fy(tall.y)) == pytest.approx(2.0, rel=1e-2)
    assert len(p.rects) == 30


def test_tiles_hold_every_panel_inside_their_view() -> None:
    from lstm_report.figures.histogram import histogram_chart
    from lstm_report.figures.svg import tiles

    chart = histogram_chart(_demo_like_layer())
    pieces = tiles(chart)
    assert [p for t in pieces for p in t.panels] != []
    assert len(pieces) == len(chart.panels) + 1  # and the legend on its own
    for t in pieces:
        for p in t.panels:
            assert t.x0 <= p.x - 7 and p.x + p.w <= t.x0 + t.width
            for tick in p.xticks:
                assert t.x0 <= tick.at <= t.x0 + t.width
        assert t.width == int(t.width)  # whole px: never scaled by a hair on a phone
    la = analyse_layer(_layer(6, 3), ["a", "b", "c"], "a")
    heat = layer_figures(la).heat_W
    # the four heatmaps and the colour bar, each once, across the tiles
    assert sum(svg_text(t.uri).count("<image") for t in heat.tiles) == 5


def test_histograms_of_large_strided_blocks_count_as_numpy_does() -> None:
    # density bins a float64 block at a time, and bin_range copies each gate straight into
    # place: the same counts and range as numpy on one float64 copy of the whole array.
    from lstm_report.analysis.norms import BLOCK
    from lstm_report.figures.histogram import bin_range, density

    rng = np.random.default_rng(4)
    kernel = rng.standard_t(3, (600, 4 * 700)).astype(np.float32)
    kernel[5, 3] = np.nan
    gates = [kernel[:, k * 700 : (k + 1) * 700] for k in range(4)]
    assert gates[1].size > BLOCK
    span = bin_range(gates)
    assert span is not None
    every = np.concatenate([g.astype(np.float64).ravel() for g in gates])
    every = every[np.isfinite(every)]
    lo, hi = np.percentile(every.astype(np.float32), [0.5, 99.5])
    width = hi - lo
    inside = every[(every >= lo - width) & (every <= hi + width)]
    assert (span.lo, span.hi) == (float(inside.min()), float(inside.max()))
    h = density(gates[0], "#000", "i", span)
    assert h is not None
    v = gates[0].astype(np.float64).ravel()
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=40, range=(span.lo, span.hi))
    np.testing.assert_array_equal(h.edges, edges)
    np.testing.assert_array_equal(h.heights, counts / (v.size * np.diff(edges)))
    assert (h.below, h.above) == (int(np.sum(v < span.lo)), int(np.sum(v > span.hi)))
