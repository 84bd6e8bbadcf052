"""The Trainer on the built-in toy task: hooks, checkpoints, resume, stopping, seeding, Keras callbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import EarlyStopping, TerminateOnNaN
from tasks.toy.task import ToyConfig, ToyTask
from tests.conftest import ROOT
from trainer import Callback, Trainer


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_") or name in ("setup", "teardown"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append(name)
        return object.__getattribute__(self, name)


def weights_of(task):
    return [w.numpy().copy() for w in task.model.weights]


def test_hooks_fire_in_lightning_order(trainer_config):
    recorder = Recorder()
    task = ToyTask(ToyConfig(samples=64, batch_size=32))
    Trainer(trainer_config(max_epochs=2), callbacks=[recorder]).fit(task)
    epoch = ["on_train_epoch_start",
             "on_train_batch_start", "on_train_batch_end", "on_train_batch_start", "on_train_batch_end",
             "on_validation_epoch_start", "on_validation_epoch_end", "on_train_epoch_end", "on_save_checkpoint"]
    assert recorder.calls == ["setup", "on_fit_start", *epoch, *epoch, "on_fit_end", "teardown"]


def test_exception_fires_on_exception_then_teardown(trainer_config):
    class Boom(ToyTask):
        def on_train_epoch_end(self, trainer, task):
            raise RuntimeError("boom")

    recorder = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        Trainer(trainer_config(), callbacks=[recorder]).fit(Boom())
    assert recorder.calls[-2:] == ["on_exception", "teardown"]


def test_resume_continues_epochs_and_optimizer_state(trainer_config, tmp_path):
    straight = ToyTask()
    Trainer(trainer_config(max_epochs=3, run_name="straight")).fit(straight)

    first = ToyTask()
    Trainer(trainer_config(max_epochs=2, run_name="split")).fit(first)
    keras.backend.clear_session()
    resumed_task = ToyTask()
    resumed = Trainer(trainer_config(max_epochs=3, run_name="split", resume=True))
    resumed.fit(resumed_task)

    assert resumed.current_epoch == 3
    assert int(resumed_task.model.optimizer.iterations) == int(straight.model.optimizer.iterations)
    for a, b in zip(weights_of(straight), weights_of(resumed_task), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    state = json.loads((tmp_path / "logs/toy/split/checkpoints/state-3.json").read_text())
    assert state["epoch"] == 3 and state["global_step"] == resumed.global_step


def test_checkpoints_are_pruned_and_atomic(trainer_config, tmp_path):
    Trainer(trainer_config(max_epochs=4, run_name="r", keep_checkpoints=2)).fit(ToyTask())
    folder = tmp_path / "logs/toy/r/checkpoints"
    assert sorted(p.name for p in folder.glob("state-*.json")) == ["state-3.json", "state-4.json"]
    assert not list(folder.glob("*.tmp"))
    assert "ckpt-4" in (folder / "checkpoint").read_text()


def test_early_stopping_stops_when_validation_stalls(trainer_config):
    class Frozen(ToyTask):  # evaluates instead of stepping: nothing learns, so val_loss never improves
        def train_step(self, batch):
            return self.model.test_step(batch)

    task = Frozen()
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    trainer = Trainer(trainer_config(max_epochs=10), callbacks=[stopper])
    trainer.fit(task)
    assert trainer.current_epoch == 3
    assert stopper.stopped_epoch == 2


def test_terminate_on_nan_keeps_last_good_checkpoint(trainer_config, tmp_path):
    class Diverges(ToyTask):
        def train_step(self, batch):
            outputs = super().train_step(batch)
            poisoned = tf.where(self.model.optimizer.iterations > 20, np.nan, outputs["loss"])
            return {**outputs, "loss": poisoned}

    trainer = Trainer(trainer_config(max_epochs=5, run_name="nan"), callbacks=[TerminateOnNaN()])
    trainer.fit(Diverges())  # 16 steps per epoch: the loss turns NaN during epoch 2
    assert trainer.should_stop and trainer.current_epoch == 2
    index = (tmp_path / "logs/diverges/nan/checkpoints/checkpoint").read_text()
    assert 'model_checkpoint_path: "ckpt-1"' in index


def test_same_seed_gives_same_metrics_and_other_seed_differs(trainer_config):
    runs = []
    for seed in (7, 7, 8):
        keras.backend.clear_session()
        runs.append(Trainer(trainer_config(seed=seed, checkpoint=False)).fit(ToyTask()))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_plain_keras_callbacks_run_and_can_stop(trainer_config):
    class Epochs(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((epoch, sorted(logs)))

    epochs = Epochs()
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    trainer = Trainer(trainer_config(max_epochs=5), callbacks=[epochs, stop])
    trainer.fit(ToyTask())
    assert trainer.current_epoch == 2  # min_delta=10 means no epoch ever improves enough
    assert epochs.seen[0] == (0, ["accuracy", "loss", "val_accuracy", "val_loss"])


def test_limit_and_fast_dev_run(trainer_config, tmp_path):
    trainer = Trainer(trainer_config(max_epochs=2, limit_train_batches=3))
    trainer.fit(ToyTask())
    assert trainer.global_step == 6

    quick = Trainer(trainer_config(max_epochs=5, fast_dev_run=True, run_name="quick"))
    quick.fit(ToyTask())
    assert quick.global_step == 1 and quick.current_epoch == 1
    assert not (tmp_path / "logs/toy/quick/checkpoints").exists()


def test_validate_test_predict(trainer_config):
    task = ToyTask()
    trainer = Trainer(trainer_config())
    trainer.fit(task)
    assert set(trainer.validate(task)) == {"loss", "accuracy"}
    assert trainer.test(task)["accuracy"] == pytest.approx(trainer.metrics["val_accuracy"])
    predictions = trainer.predict(task)
    assert predictions.shape == (128, 4)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)


def test_run_folder_has_config_metrics_and_report(trainer_config, tmp_path):
    trainer = Trainer(trainer_config(run_name="rep", seed=3))
    trainer.fit(ToyTask())
    run = tmp_path / "logs/toy/rep"
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 3 and config["task_config"]["samples"] == 512
    assert "keras" in config["packages"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and "val_accuracy" in metrics["metrics"]
    report = (run / "report.md").read_text()
    assert "val_accuracy" in report and "Seed 3" in report


def test_resume_without_a_name_continues_the_newest_run_even_for_studies(trainer_config, tmp_path):
    from trainer.report import new_run_dir

    task_dir = tmp_path / "logs" / "study"
    for run, child in (("old", "a"), ("new", "b")):
        index = task_dir / run / child / "checkpoints" / "checkpoint"
        index.parent.mkdir(parents=True)
        index.write_text("x")
    newest = (task_dir / "new" / "b" / "checkpoints" / "checkpoint").stat().st_mtime + 10
    os.utime(task_dir / "old" / "a" / "checkpoints" / "checkpoint", (newest, newest))
    assert new_run_dir(task_dir, None, resume=True) == task_dir / "old"
    assert new_run_dir(task_dir, None, resume=False).parent == task_dir


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from common.files import write_atomic

    target = tmp_path / "metrics.json"
    write_atomic(target, "old")

    class Unprintable:
        def __str__(self):
            raise RuntimeError("disk full")

    with pytest.raises(TypeError):
        write_atomic(target, Unprintable())
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert target.stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_importing_the_trainer_keeps_tensorflow_start_up_lines_off_stderr():
    """The README's "Trainer from Python": a script's stderr is as quiet as the CLI's (absl's I0000 lines, oneDNN)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TRAINLAB_VERBOSE_TF")}
    script = "from trainer import Trainer\nimport tensorflow as tf\nprint(int(tf.constant(1) + 1))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=300)
    assert result.returncode == 0 and result.stdout == "2\n", result.stderr
    assert result.stderr == ""
