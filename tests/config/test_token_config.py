"""Config keys of token models: ``pad_token``, ``vocabulary`` (a list or a bounded text
file), and the CLI's ``--pad-token``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_report.config import entry as config_module
from lstm_report.config.parse import parse_config
from lstm_report.config.sources import model_file_config
from lstm_report.errors import ConfigError


def _model(tmp_path: Path, **entry: object) -> object:
    cfg = parse_config({"models": [{"path": "m.keras", **entry}]}, base_dir=tmp_path)
    return cfg.models[0]


def test_defaults_and_a_vocabulary_list(tmp_path: Path) -> None:
    m = _model(tmp_path)
    assert m.pad_token == 0 and m.vocabulary is None  # type: ignore[attr-defined]
    m = _model(tmp_path, pad_token=3, vocabulary=["<pad>", "the", 7])
    assert m.pad_token == 3 and m.vocabulary == ("<pad>", "the", "7")  # type: ignore[attr-defined]


def test_a_vocabulary_file_one_token_per_line(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("<pad>\nhello\nworld\n", encoding="utf-8")
    m = _model(tmp_path, vocabulary="vocab.txt")
    assert m.vocabulary == ("<pad>", "hello", "world")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"pad_token": -1}, r"models\[0\]\.pad_token: expected a token id"),
        ({"pad_token": True}, r"models\[0\]\.pad_token: expected a token id"),
        ({"pad_token": "0"}, r"models\[0\]\.pad_token: expected a token id"),
        ({"vocabulary": "missing.txt"}, r"models\[0\]\.vocabulary: vocabulary file not found"),
        ({"vocabulary": [["a"]]}, r"models\[0\]\.vocabulary\[0\]: expected a string"),
        ({"vocabulary": 3}, r"models\[0\]\.vocabulary: expected a list of tokens or a file"),
        ({"vocabulary": "."}, r"models\[0\]\.vocabulary: .* is not a regular file"),
    ],
)
def test_bad_token_settings(tmp_path: Path, entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _model(tmp_path, **entry)


def test_a_vocabulary_file_is_read_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "MAX_VOCABULARY_BYTES", 10)
    (tmp_path / "vocab.txt").write_text("a\n" * 20, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"vocabulary: vocab.txt is larger than"):
        _model(tmp_path, vocabulary="vocab.txt")


def test_pad_token_flag_for_a_model_file(tmp_path: Path) -> None:
    cfg = model_file_config(tmp_path / "m.keras", pad_token=5)
    assert cfg.models[0].pad_token == 5
