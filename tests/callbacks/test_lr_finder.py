"""The learning-rate range test on the toy task: the sweep, the per-batch loss, the suggestion, the curve."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from callbacks.lr_finder import LearningRateFinder
from common.errors import UserError
from tasks.toy.task import ToyConfig, ToyTask
from tests.tensorboard_events import read_tags
from trainer.tuning import find_learning_rate


def test_sweep_records_each_batch_loss_suggests_a_rate_and_draws_the_curve(trainer_config, tmp_path):
    finder = LearningRateFinder(min_lr=1e-5, max_lr=10.0, num_steps=80)
    task = ToyTask(ToyConfig(samples=256, batch_size=32))
    trainer, suggestion = find_learning_rate(task, trainer_config(run_name="lr"), finder)
    rates = np.array(finder.rates)
    np.testing.assert_allclose(rates[1:] / rates[:-1], (10.0 / 1e-5) ** (1 / 79), rtol=1e-6)  # exponential
    assert rates[0] == pytest.approx(1e-5) and finder.stopped_early == (len(rates) < 80)
    assert 1e-5 < suggestion < 10.0 and suggestion in finder.rates
    # The suggestion sits where the loss falls: the smoothed loss there is below where the sweep began.
    assert finder.smoothed[finder.rates.index(suggestion)] < finder.smoothed[0]
    run = tmp_path / "logs/toy/lr"
    saved = json.loads((run / "lr_find.json").read_text())
    assert saved["suggestion"] == suggestion and len(saved["losses"]) == len(rates)
    assert (run / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lr_find" in read_tags(run / "train").get("images", set())


def test_each_recorded_loss_is_that_batch_loss_not_the_running_mean(trainer_config):
    # A rate too small to move the weights: every batch's loss is the untrained model's loss on it.
    finder = LearningRateFinder(min_lr=1e-12, max_lr=1e-11, num_steps=10)
    task = ToyTask(ToyConfig(samples=64, batch_size=16))
    find_learning_rate(task, trainer_config(checkpoint=False), finder)
    x, y = task.train_data()
    order = np.random.default_rng([42, 0]).permutation(64)
    expected = [float(keras.losses.sparse_categorical_crossentropy(y[i], task.model(x[i])).numpy().mean())
                for i in np.array_split(order, 4)]
    np.testing.assert_allclose(finder.losses[:4], expected, rtol=1e-4)


def test_an_empty_range_is_a_user_error():
    with pytest.raises(UserError, match="the rate range 1 to 0.1 is empty"):
        LearningRateFinder(min_lr=1.0, max_lr=0.1)
