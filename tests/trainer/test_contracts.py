"""What a Lightning user relies on: exact resume, per-instance callback state, one task per Trainer,
checked batch sizes, bounded memory, and separate folders per worker."""

from __future__ import annotations

import gc
import json
import types
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from callbacks import EarlyStopping
from common.errors import UserError
from tasks.toy.task import ToyConfig, ToyTask
from trainer import Trainer


class NoisyToy(ToyTask):
    """Dropout in the model, and two random ops in the step: a Keras augmentation layer held by the
    task and a ``tf.random.Generator`` draw, as augmentation and random attack starts are."""

    def build_model(self):
        c = self.config
        model = keras.Sequential([
            keras.Input((c.features,)),
            keras.layers.Dense(c.hidden, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(c.classes, activation="softmax"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        self.augmentation = keras.layers.GaussianNoise(0.3)
        self.generator = tf.random.Generator.from_seed(7)
        return model

    def train_step(self, batch):
        x, y = batch
        x = self.augmentation(x, training=True) * self.generator.uniform((1, self.config.features), 0.5, 1.5)
        return self.model.train_step((x, y))


def test_resume_is_bit_for_bit_with_dropout_and_random_ops_in_the_step(trainer_config):
    straight = NoisyToy(ToyConfig(samples=256))
    Trainer(trainer_config(max_epochs=3, run_name="straight")).fit(straight)

    keras.backend.clear_session()
    Trainer(trainer_config(max_epochs=2, run_name="split")).fit(NoisyToy(ToyConfig(samples=256)))
    keras.backend.clear_session()
    resumed = NoisyToy(ToyConfig(samples=256))
    Trainer(trainer_config(max_epochs=3, run_name="split", resume=True)).fit(resumed)

    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(straight.generator.state.numpy(), resumed.generator.state.numpy())


def test_two_callbacks_of_one_class_keep_their_own_state(trainer_config, tmp_path):
    def stoppers():
        return [EarlyStopping(monitor="val_loss", patience=50), EarlyStopping(monitor="val_accuracy", patience=50)]

    first = stoppers()
    Trainer(trainer_config(max_epochs=2, run_name="two"), callbacks=first).fit(ToyTask(ToyConfig(samples=128)))
    saved = json.loads((tmp_path / "logs/toy/two/checkpoints/state-2.json").read_text())["callbacks"]
    assert "EarlyStopping{'min_delta': 0.0, 'mode': 'auto', 'monitor': 'val_loss', 'patience': 50}" in saved
    assert len([k for k in saved if k.startswith("EarlyStopping")]) == 2

    keras.backend.clear_session()
    again = stoppers()
    Trainer(trainer_config(max_epochs=2, run_name="two", resume=True), callbacks=again).fit(
        ToyTask(ToyConfig(samples=128)))
    assert [s.best for s in again] == [s.best for s in first]
    assert again[0].best != again[1].best


def test_a_trainer_reused_for_another_task_runs_that_task(trainer_config):
    a, b = ToyTask(ToyConfig(samples=128)), ToyTask(ToyConfig(samples=128, hidden=8))
    trainer = Trainer(trainer_config(max_epochs=1))
    trainer.fit(a)
    reused = trainer.validate(b)
    expected = b.model.evaluate(*b.val_data(), verbose=0, return_dict=True)
    assert reused["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert reused["accuracy"] == pytest.approx(expected["accuracy"])
    assert trainer.validate(a)["loss"] == pytest.approx(trainer.metrics["val_loss"])
    with pytest.raises(UserError, match="already fit a toy model .*trainer.spawn"):
        trainer.fit(b)


@pytest.mark.parametrize("size", [0, -4])
def test_a_bad_batch_size_is_one_line_exit_2_and_leaves_no_run_folder(tmp_path, size):
    import cli

    result = CliRunner().invoke(cli.app, ["fit", "toy", "--batch-size", str(size), "--logdir", str(tmp_path / "logs"),
                                          "--progress", "none"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --batch-size must be at least 1, got {size}")
    assert not (tmp_path / "logs").exists()


def test_new_arrays_every_epoch_do_not_pile_up(trainer_config):
    returned = []

    class FreshArrays(ToyTask):
        def train_data(self):
            x, y = (a.copy() for a in self._train)
            returned.append(weakref.ref(x))
            return x, y

    trainer = Trainer(trainer_config(max_epochs=4, checkpoint=False))
    trainer.fit(FreshArrays(ToyConfig(samples=128)))
    gc.collect()
    assert len(returned) == 4
    assert [r() is None for r in returned] == [True, True, True, False]  # the trainer holds the last copy only


def test_spawned_trainers_of_a_worker_write_under_workers(trainer_config, tmp_path):
    resolver = types.SimpleNamespace(task_type="worker", task_id=1, cluster_spec=lambda: types.SimpleNamespace(
        as_dict=lambda: {"worker": ["a:1", "b:2"]}))
    worker = Trainer(trainer_config(run_name="study"))
    worker.strategy = types.SimpleNamespace(cluster_resolver=resolver, num_replicas_in_sync=2)
    worker.is_chief = False
    task = ToyTask()
    child = worker.spawn(task, "5-relu")
    assert worker.resolve_run_dir(task) == tmp_path / "logs/toy/study/workers/worker-1"
    assert child.resolve_run_dir(task) == tmp_path / "logs/toy/study/5-relu/workers/worker-1"
    assert not child.is_chief
