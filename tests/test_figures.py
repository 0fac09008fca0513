"""Figures: downsampling by hand, shared colour scales, embedded and byte-stable output."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from lstm_report.analysis import analyse_layer
from lstm_report.figures import MAX_CELLS, heatmaps, layer_figures, pool_max_abs
from lstm_report.model import LSTMWeights


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


def _layer(units: int, input_dim: int, seed: int = 0) -> LSTMWeights:
    rng = np.random.default_rng(seed)
    return LSTMWeights(
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


def test_figures_are_embedded_data_uris_and_byte_stable() -> None:
    la = analyse_layer(_layer(6, 3), ["a", "b", "c"], "a")
    one = layer_figures(la)
    two = layer_figures(la)
    assert one == two
    assert one.heat_W.uri.startswith("data:image/png;base64,")
    svg = base64.b64decode(one.histograms.uri.split(",", 1)[1]).decode()
    assert svg.startswith("<?xml") and "<dc:date>" not in svg
    assert "http://" not in svg.replace("http://www.w3.org", "").replace(
        "http://purl.org", ""
    ).replace("http://creativecommons.org", "").replace("http://matplotlib.org", "")


@pytest.mark.parametrize("units", [1, 2])
def test_tiny_layers_draw(units: int) -> None:
    la = analyse_layer(_layer(units, 1), ["only"], "a")
    figs = layer_figures(la)
    assert figs.biases is not None and figs.spectra is not None


def _series_svg(name: str) -> str:
    """The SVG of a series figure whose checkpoints are labelled ``name``."""
    from lstm_report.analysis.series import Series, checkpoint_figures
    from lstm_report.figures import series_figures
    from lstm_report.model import ModelWeights

    w = _layer(2, 2)
    mw = ModelWeights("m", Path("m.keras"), (w,), reader="direct")
    keep = {(w.name, w.direction)}
    points = tuple(checkpoint_figures(f"{k}", mw, None, keep, label=name) for k in range(2))
    ((_, fig),) = series_figures(Series("m", points, "s"))
    return base64.b64decode(fig.uri.split(",", 1)[1]).decode()


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
