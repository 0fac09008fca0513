"""Issue 6: property-based tests of the config parser and the decomposition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_report.cells.lstm import split_keras_lstm
from lstm_report.config.parse import parse_config
from lstm_report.config.schema import MODEL_KEYS, TOP_KEYS
from lstm_report.errors import ConfigError

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where relative (and glob) paths resolve: never the real /tmp, whatever it holds."""
    return tmp_path_factory.mktemp("empty")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(list(TOP_KEYS) + ["extra", "Models"]), yaml_values, max_size=5)
)
def test_config_parser_never_crashes(empty_dir: Path, data: dict[str, Any]) -> None:
    # Any YAML-shaped input is either a valid config or a ConfigError with a one-line message.
    try:
        parse_config(data, base_dir=empty_dir)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)


def test_an_unknown_key_with_a_line_break_is_named_on_one_line(empty_dir: Path) -> None:
    # Found by the property test above: a YAML key "\n" split the message in two.
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [{"\n": None}]}, base_dir=empty_dir)
    assert str(err.value).startswith("models[0].'\\n': unknown key (valid keys: path,")
    assert "\n" not in str(err.value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(list(MODEL_KEYS) + ["paths"]), yaml_values, max_size=4),
        min_size=1,
        max_size=3,
    )
)
def test_model_entries_never_crash(empty_dir: Path, models: list[dict[str, Any]]) -> None:
    try:
        cfg = parse_config({"models": models}, base_dir=empty_dir)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert len(cfg.models) == len(models)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 9), st.integers(1, 7), st.booleans(), st.integers(0, 2**32 - 1))
def test_split_gates_partitions_the_arrays(
    units: int, input_dim: int, bias: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(input_dim, 4 * units))
    rk = rng.normal(size=(units, 4 * units))
    b = rng.normal(size=4 * units) if bias else None
    gates = split_keras_lstm(kernel, rk, b, where="LSTM", unit_forget_bias=True)
    assert [g.gate for g in gates] == ["i", "f", "c", "o"]
    np.testing.assert_array_equal(np.hstack([g.W for g in gates]), kernel)
    np.testing.assert_array_equal(np.hstack([g.U for g in gates]), rk)
    for k, g in enumerate(gates):
        assert g.W.shape == (input_dim, units) and g.U.shape == (units, units)
        # gate k owns exactly columns k*u .. (k+1)*u - 1
        np.testing.assert_array_equal(g.W[:, 0], kernel[:, k * units])
        if b is not None:
            assert g.b is not None and g.b[-1] == b[(k + 1) * units - 1]
