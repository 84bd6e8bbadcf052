"""MirroredStrategy on two logical CPU devices against one device: same metrics, same predictions.

The jobs run once, in a fresh process (``two_devices.py``), because TensorFlow fixes its devices
when first used; each test below checks one promise on what that process wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("two_devices") / "runs.json"
    result = subprocess.run([sys.executable, "-m", "tests.trainer.two_devices", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_second_run_really_has_two_replicas(runs):
    assert runs["default"]["toy"]["replicas"] == 1
    assert runs["mirrored"]["toy"]["replicas"] == 2


def test_mirrored_fit_gives_the_metrics_of_one_device(runs):
    one, two = runs["default"]["toy"]["fit"], runs["mirrored"]["toy"]["fit"]
    assert one.keys() == two.keys() == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-5), key


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_evaluation_covers_every_sample_including_an_uneven_last_batch(runs, stage):
    expected = runs["default"]["toy"]["evaluate"]
    for strategy in ("default", "mirrored"):
        measured = runs[strategy]["toy"][stage]
        assert measured["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6), strategy
        assert measured["loss"] == pytest.approx(expected["loss"], rel=1e-5), strategy


def test_predict_returns_every_row_in_order(runs):
    one, two = (np.array(runs[s]["toy"]["predict"]) for s in ("default", "mirrored"))
    assert one.shape == two.shape == (97, 4)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


def test_robust_train_loss_is_per_sample_under_two_replicas(runs):
    one, two = runs["default"]["robust"]["train_loss"], runs["mirrored"]["robust"]["train_loss"]
    assert two == pytest.approx(one, rel=1e-3)
