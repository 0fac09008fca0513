"""Issue 20: index pages (site and batch) name GRUs as recurrent layers, carry the same
columns, and never say "reports from ." when run in the reports folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lstm_report.cli import main
from tests.helpers import FIXTURES

FIX = FIXTURES / "frameworks"
SWEEP_COLUMNS = ("Top input", "Memory τ", "Findings", "Largest change")


def _report(folder: Path, fixture: str, name: str) -> None:
    model = folder / fixture
    model.write_bytes((FIX / fixture).read_bytes())
    assert main(["build", str(model), "-q", "--no-cache", "-o", str(folder / f"{name}.html")]) == 0


def _head(html: str) -> list[str]:
    thead = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th [^>]*>(.*?)</th>", thead)]


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    d = tmp_path / "my-runs"
    d.mkdir()
    _report(d, "torch_state_dict.safetensors", "mixed")  # LSTMs and GRUs
    _report(d, "onnx_lstm_bidirectional.onnx", "lstm")
    return d


def test_site_with_grus_says_recurrent_and_has_the_sweep_columns(
    reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(reports)
    assert main(["site", ".", "-o", str(tmp_path / "site"), "-q"]) == 0
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "<h1>Recurrent network reports</h1>" in html
    assert "LSTM reports" not in html and "LSTM layers" not in html
    head = _head(html)
    assert "Recurrent layers" in head and "Recurrent parameters" in head
    assert all(c in head for c in SWEEP_COLUMNS), head
    assert "from <code>.</code>" not in html
    assert "2 reports from <code>my-runs</code>" in html  # the folder's own name
    # one row per report, every row as many cells as the head has columns
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 2 and all(r.count("<td") == len(head) for r in rows)


def test_site_of_lstms_only_says_lstm(tmp_path: Path) -> None:
    d = tmp_path / "lstms"
    d.mkdir()
    _report(d, "onnx_lstm_bidirectional.onnx", "lstm")
    assert main(["site", str(d), "-o", str(tmp_path / "site"), "-q"]) == 0
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "<h1>LSTM reports</h1>" in html and "LSTM layers" in _head(html)


def test_batch_in_the_runs_folder_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "sweep"
    runs.mkdir()
    (runs / "gru.onnx").write_bytes((FIX / "onnx_gru_lbr0_reverse.onnx").read_bytes())
    (runs / "lstm.onnx").write_bytes((FIX / "onnx_lstm_bidirectional.onnx").read_bytes())
    monkeypatch.chdir(runs)
    assert main(["batch", "gru.onnx", "lstm.onnx", "-o", str(tmp_path / "site"), "-q"]) == 0
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "from <code>.</code>" not in html and "from <code>sweep</code>" in html
    assert "<h1>Recurrent network reports</h1>" in html
    assert "Recurrent layers" in _head(html)
