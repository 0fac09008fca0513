"""Issue 25 item 10: a model whose recurrent layers are Keras ConvLSTMs is counted and named
as such on the page, in the JSON, the Markdown summary, the JUnit XML and the site index:
every count checked against Keras' own arrays, every statistic against slices of them."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from lstm_report.templating import fmt_num
from tests.conftest import CONV_SHAPES, ConvSaved

KINDS = list(CONV_SHAPES)


def _size(arrays: tuple[np.ndarray, ...]) -> int:
    return sum(int(a.size) for a in arrays)


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def _conv_taus(saved: ConvSaved) -> np.ndarray:
    """Each filter's τ = 1/(1 − σ(b_f)), b_f the second quarter of the bias (i, f, c, o)."""
    bias = saved.arrays[2]
    F = bias.size // 4
    return 1 / (1 - _sig(bias[F : 2 * F]))


@pytest.fixture(scope="module")
def built(conv_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each model's page, JSON, Markdown and JUnit XML, built by the CLI in one folder."""
    d = tmp_path_factory.mktemp("conv-pages")
    out: dict[str, Any] = {"dir": d}
    for key, saved in conv_models.items():
        stem = d / key.lower()
        args = ["build", str(saved.path), "-q", "--no-dynamics", "-o", f"{stem}.html"]
        args += ["--json", f"{stem}.json", "--markdown", f"{stem}.md", "--junit", f"{stem}.xml"]
        assert main(args) == 0
        out[key] = {
            ext: Path(f"{stem}.{ext}").read_text(encoding="utf-8")
            for ext in ("html", "json", "md", "xml")
        }
    return out


def _md_table(md: str) -> dict[str, str]:
    block = md.split("| Headline | Value |", 1)[1].split("\n\n", 1)[0]
    rows = [r for r in block.splitlines()[2:] if r.startswith("| ")]
    return dict(tuple(c.strip() for c in r.strip("|").split(" | ", 1)) for r in rows)


@pytest.mark.parametrize("kind", KINDS)
def test_page_counts_and_names_the_convlstm(kind: str, built: dict, conv_models: dict) -> None:
    saved, html = conv_models[kind], " ".join(built[kind]["html"].split())
    params = _size(saved.arrays)
    _, kw = CONV_SHAPES[kind]
    channels = CONV_SHAPES[kind][0][-1]
    assert f"· 1 {kind} layer section</p>" in html
    assert "LSTM layer section" not in html
    assert f'<th class="num">{kind} parameters</th><th>{kind} layers</th>' in html
    row = html.split('<table class="data sortable">', 1)[1].split("</table>", 1)[0]
    assert f'<td class="num">{params:,}</td>' in row
    assert f'<td class="num">{saved.total:,}</td>' in row
    (anchor,) = re.findall(r'<section class="layer conv-layer" id="([^"]+)">', html)
    cell = f'<a href="#{anchor}">conv</a> <span class="dim">({kind}, {channels}→{kw["filters"]} filters)</span>'
    assert cell in row and ">none<" not in row
    assert f"{saved.total:,} parameters, {params:,} in the analysed {kind} layers" in html
    ks = kw["kernel_size"]
    ks = "×".join(map(str, (ks,) * (saved.arrays[0].ndim - 2) if isinstance(ks, int) else ks))
    plural = "s" if channels != 1 else ""  # ConvLSTM3D's one channel: "1 input channel"
    head = f"({kind}, {kw['filters']} filters, kernel {ks}, {channels} input channel{plural})"
    assert f'conv <span class="dim">{head}</span></h3>' in html
    toc = html.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    assert f'<a href="#{anchor}">layer conv</a>' in toc
    # the LSTM explainer is about arrays this model does not have; its section explains its own
    assert "How Keras stores" not in html and 'id="layout"' not in html
    assert (
        "No findings:" in html
        and "ConvLSTM layers are checked for non-finite weights only." in html
    )


@pytest.mark.parametrize("kind", KINDS)
def test_json_counts_the_convlstm(kind: str, built: dict, conv_models: dict) -> None:
    saved = conv_models[kind]
    (m,) = json.loads(built[kind]["json"])["models"]
    assert m["lstm_params"] == _size(saved.arrays) and m["total_params"] == saved.total
    (c,) = m["conv_layers"]
    assert c["params"] == _size(saved.arrays)
    assert all(g[a]["nonfinite"] == 0 for g in c["gates"] for a in ("kernel", "bias"))


@pytest.mark.parametrize("kind", KINDS)
def test_markdown_counts_and_describes_the_convlstm(
    kind: str, built: dict, conv_models: dict
) -> None:
    saved, md = conv_models[kind], built[kind]["md"]
    table = _md_table(md)
    assert table["Recurrent layers"] == "1"
    assert table["Recurrent parameters"] == f"{_size(saved.arrays):,}"
    taus = _conv_taus(saved)
    assert (
        table["Median memory timescale τ"] == f"{fmt_num(float(np.median(taus)))} steps (at rest)"
    )
    assert "LSTM layers" not in table and "LSTM parameters" not in table
    kernel, rec, bias = (np.asarray(a, np.float64) for a in saved.arrays)
    F = bias.size // 4
    _, kw = CONV_SHAPES[kind]
    name = saved.path.name.replace("_", "\\_")  # Markdown escapes the underscore
    ks = kw["kernel_size"]
    ks = "×".join(map(str, (ks,) * (kernel.ndim - 2) if isinstance(ks, int) else ks))
    channels = kernel.shape[-2]
    assert f"**{name} › conv**: {kind}, {F} filters, kernel {ks}, {channels} input channel" in md
    assert f", {_size(saved.arrays):,} parameters." in md
    rows = {
        r.split(" | ")[0].strip("| "): r for r in md.splitlines() if re.match(r"\| [ifco] \|", r)
    }
    assert list(rows) == ["i", "f", "c", "o"]
    for k, gate in enumerate("ifco"):
        K, R, b = (
            kernel[..., k * F : (k + 1) * F],
            rec[..., k * F : (k + 1) * F],
            bias[k * F : (k + 1) * F],
        )
        want = [K.mean(), K.std(), np.sqrt((K**2).sum()), R.mean(), R.std(), np.sqrt((R**2).sum())]
        want += [b.mean(), b.std()]
        assert rows[gate] == f"| {gate} | " + " | ".join(fmt_num(float(v)) for v in want) + " |"
    forget = _sig(bias[F : 2 * F])
    assert (
        "Forget gate at rest σ(b_f), per filter: "
        + ", ".join(fmt_num(float(f)) for f in forget)
        + "; timescale τ = 1/(1 − σ(b_f)): "
        + ", ".join(fmt_num(float(t)) for t in taus)
        + " steps."
    ) in md


def test_a_convlstm_beside_an_lstm(built: dict, conv_models: dict) -> None:
    """Two kinds: "recurrent" layers, both counted, the LSTM explainer kept for the LSTM."""
    saved, out = conv_models["mixed"], built["mixed"]
    params = _size(saved.arrays) + _size(saved.lstm)
    html = " ".join(out["html"].split())
    assert "· 2 recurrent layer sections</p>" in html
    assert '<th class="num">Recurrent parameters</th><th>Recurrent layers</th>' in html
    assert f"{saved.total:,} parameters, {params:,} in the analysed recurrent layers" in html
    assert "How Keras stores an LSTM" in html
    (m,) = json.loads(out["json"])["models"]
    assert m["lstm_params"] == params
    table = _md_table(out["md"])
    assert table["Recurrent layers"] == "2" and table["Recurrent parameters"] == f"{params:,}"
    units = saved.lstm[2].size // 4
    lstm_taus = 1 / (1 - _sig(saved.lstm[2][units : 2 * units]))
    median = statistics.median([*_conv_taus(saved), *lstm_taus])
    assert table["Median memory timescale τ"] == f"{fmt_num(median)} steps (at rest)"


def test_junit_has_the_convlstm_check(built: dict) -> None:
    xml = built["ConvLSTM2D"]["xml"]
    assert '<testcase classname="only_convlstm2d.keras.conv" name="nonfinite-weights"' in xml
    assert 'tests="1" failures="0" errors="0"' in xml


def test_a_nan_in_a_kernel_is_a_finding(keras: Any, tmp_path: Path) -> None:
    """The one check a ConvLSTM's kernels get: the page must not say they are all finite."""
    inp = keras.Input((3, 4, 1))
    conv = keras.layers.ConvLSTM1D(2, 2, name="conv")
    model = keras.Model(inp, keras.layers.Flatten()(conv(inp)))
    kernel, rec, bias = conv.get_weights()
    kernel[1, 0, 5] = np.nan  # tap 1, gate c (columns 4-5 of 8), filter 1
    rec[0, 1, 0] = np.inf  # gate i
    conv.set_weights([kernel, rec, bias])
    model.save(tmp_path / "nan.keras")
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    args = ["build", str(tmp_path / "nan.keras"), "-q", "-o", str(tmp_path / "r.html")]
    assert main([*args, "--json", str(js), "--junit", str(xml)]) == 0
    data = json.loads(js.read_text(encoding="utf-8"))
    (f,) = data["findings"]
    assert (f["severity"], f["code"], f["layer"]) == ("error", "nonfinite-weights", "conv")
    assert f["message"].startswith("2 non-finite weights (NaN or Inf) in R_i (1), K_c (1);")
    gates = {g["gate"]: g for g in data["models"][0]["conv_layers"][0]["gates"]}
    assert (
        gates["c"]["kernel"]["nonfinite"] == 1 and gates["i"]["recurrent_kernel"]["nonfinite"] == 1
    )
    assert gates["f"]["kernel"]["nonfinite"] == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No findings" not in html and "nonfinite-weights" in html
    assert 'errors="1"' in xml.read_text(encoding="utf-8")


def test_site_index_counts_the_convlstms(built: dict, conv_models: dict, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert main(["site", str(built["dir"]), "-o", str(site), "-q"]) == 0
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "<h1>Recurrent network reports</h1>" in html and "LSTM layers" not in html
    body = html.split("<tbody>", 1)[1]
    for key, saved in conv_models.items():
        params = _size(saved.arrays) + _size(saved.lstm)
        layers = 2 if saved.lstm else 1
        row = body.split(f'href="reports/{key.lower()}.html"', 1)[1].split("</tr>", 1)[0]
        cells = re.findall(r'<td class="num" data-sort="([^"]+)">', row)
        assert cells[:2] == [str(layers), str(params)], (key, cells)


def test_the_verified_takeaway_does_not_claim_the_convlstm(
    conv_models: dict, tmp_path: Path
) -> None:
    """--verify replays the LSTM against Keras, not the ConvLSTM: the sentence says so."""
    out = tmp_path / "mixed.json"
    path = conv_models["mixed"].path
    args = ["build", str(path), "-q", "--no-dynamics", "--verify", "-o", str(tmp_path / "m.html")]
    assert main([*args, "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    (verified,) = [t for t in data["takeaways"] if t["code"] == "verified"]
    name = data["models"][0]["name"]
    assert verified["text"].startswith(
        f"The per-gate matrices of every LSTM and GRU layer of {name} (its ConvLSTM layers "
        "are not replayed against Keras) reproduce Keras' own output"
    )
