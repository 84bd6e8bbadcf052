"""docs/backprop.md: every stated derivative and range checked against autodiff on a dense grid."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tasks.deep_mlp.activations import lecun

DOC = Path(__file__).resolve().parents[2] / "docs" / "backprop.md"
FUNCTIONS = {"relu": keras.activations.relu, "tanh": keras.activations.tanh,
             "sigmoid": keras.activations.sigmoid, "lecun": lecun}
# Wide enough to reach every saturation, narrow enough that float64 keeps each open bound strict.
GRID = np.concatenate([np.linspace(-15.0, 15.0, 300_001), [0.0]])
NAMESPACE = {"tanh": np.tanh, "exp": np.exp, "where": np.where,
             "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v))}


def doc_table() -> dict[str, dict[str, str]]:
    """Rows of the per-activation table: ``{activation: {"f": ..., "df": ..., "range": ...}}``."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in FUNCTIONS:
            rows[cells[0]] = {"f": cells[1], "df": cells[2], "range": cells[3]}
    return rows


def evaluate(expression: str, x: np.ndarray) -> np.ndarray:
    return np.asarray(eval(expression, {"__builtins__": {}}, {**NAMESPACE, "x": x}), dtype=np.float64)  # noqa: S307


def autodiff(name: str, x: np.ndarray) -> np.ndarray:
    values = tf.constant(x, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(values)
        outputs = FUNCTIONS[name](values)
    return tape.gradient(outputs, values).numpy()


def test_the_table_covers_every_activation_of_the_study():
    assert set(doc_table()) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_stated_function_and_derivative_match_autodiff(name):
    row = doc_table()[name]
    np.testing.assert_allclose(evaluate(row["f"], GRID), np.asarray(FUNCTIONS[name](GRID)), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(evaluate(row["df"], GRID), autodiff(name, GRID), rtol=1e-6, atol=1e-12)


def parse_range(text: str):
    """``{0, 1}`` (a set) or an interval like ``(0, 1/4]`` whose ends may be arithmetic."""
    if text.startswith("{"):
        return {float(Fraction(v.strip())) for v in text[1:-1].split(",")}
    match = re.fullmatch(r"([(\[])(.+),(.+)([)\]])", text)
    assert match, f"range {text!r} is neither a set nor an interval"
    low, high = (float(evaluate(end, np.zeros(1)).reshape(-1)[0]) for end in match.group(2, 3))
    return match.group(1) == "[", low, high, match.group(4) == "]"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_stated_range_of_the_derivative_holds_and_is_tight(name):
    stated = parse_range(doc_table()[name]["range"])
    derivative = autodiff(name, GRID)
    if isinstance(stated, set):
        assert set(np.unique(derivative).tolist()) == stated
        return
    low_closed, low, high, high_closed = stated
    assert (derivative >= low).all() if low_closed else (derivative > low).all()
    assert (derivative <= high + 1e-12).all() if high_closed else (derivative < high).all()
    # Tight: the grid comes within a hair of both ends, and a closed end is reached.
    assert derivative.min() - low < 1e-6
    assert high - derivative.max() < 1e-9


def test_numbers_quoted_in_the_text():
    text = DOC.read_text()
    x = tf.constant(1.0, dtype=tf.float64)
    assert "below 0.42" in text and autodiff("tanh", np.array([1.0]))[0] < 0.42
    assert "1e-3` at 5 layers, `1e-12` at 20 and `1e-24` at 40" in text
    for layers, stated in ((5, 1e-3), (20, 1e-12), (40, 1e-24)):
        assert 0.5 < 0.25**layers / stated < 2.0
    assert "≈ 1.154" in text and round(1.7159 * 2 / 3 + 0.01, 3) == 1.154
    assert "|z| = 0.58" in text
    crossing = GRID[(GRID > 0) & (autodiff("lecun", GRID) >= 1.0)].max()
    assert abs(crossing - 0.58) < 0.005
    assert "f(±1) = ±1.01" in text and float(lecun(x)) == pytest.approx(1.01, abs=1e-4)
    assert float(1.7159 * tf.tanh(2 * x / 3)) == pytest.approx(1.0, abs=1e-4)
