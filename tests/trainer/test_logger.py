"""TensorBoard output of a run: exact tags in the event files, and the real server's HTTP API."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks import LearningRateMonitor
from tasks.toy.task import ToyTask
from tests.tensorboard_events import read_scalars, read_tags
from tests.tensorboard_server import serve_tensorboard, wait_for
from trainer import Callback, Trainer


class WeightHistogram(Callback):
    def on_train_epoch_end(self, trainer, task):
        trainer.logger.log_histogram("hidden/kernel", task.model.get_layer("hidden").kernel, trainer.current_epoch)


@pytest.fixture
def run(trainer_config, tmp_path):
    trainer = Trainer(trainer_config(max_epochs=2, run_name="tb", log_every_n_steps=4),
                      callbacks=[LearningRateMonitor(), WeightHistogram()])
    task = ToyTask()
    trainer.fit(task)
    trainer.test(task)
    return trainer.run_dir


def test_event_files_hold_the_expected_tags(run):
    train = read_tags(run / "train")
    assert train["scalars"] >= {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss", "batch_accuracy"}
    assert train["histograms"] == {"hidden/kernel"}
    assert "config" in train["text"]
    assert read_tags(run / "validation")["scalars"] == {"epoch_loss", "epoch_accuracy"}
    assert read_tags(run / "test")["scalars"] == {"epoch_loss", "epoch_accuracy"}


def test_scalars_are_written_per_epoch_and_per_logged_step(run):
    epochs = read_scalars(run / "train", "epoch_loss")
    assert [step for step, _ in epochs] == [0, 1]
    assert epochs[1][1] < epochs[0][1]  # the toy task learns
    batches = read_scalars(run / "train", "batch_loss")
    assert [step for step, _ in batches] == [4, 8, 12, 16, 20, 24, 28, 32]
    learning_rate = read_scalars(run / "train", "epoch_learning_rate")
    assert np.allclose([v for _, v in learning_rate], 1e-2)


def test_hparams_are_logged(run):
    assert read_tags(run / "train").get("hparams")


@pytest.mark.slow
def test_real_tensorboard_server_shows_scalars_and_histograms(run):
    logdir = run.parent
    with serve_tensorboard(logdir) as url:
        scalars = wait_for(f"{url}/data/plugin/scalars/tags", lambda d: "tb/validation" in d)
        assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(scalars["tb/train"])
        assert set(scalars["tb/validation"]) == {"epoch_loss", "epoch_accuracy"}
        histograms = wait_for(f"{url}/data/plugin/histograms/tags", lambda d: "tb/train" in d)
        assert "hidden/kernel" in histograms["tb/train"]
        points = wait_for(f"{url}/data/plugin/scalars/scalars?run=tb/validation&tag=epoch_loss",
                          lambda d: len(d) == 2)
        assert [p[1] for p in points] == [0, 1]
