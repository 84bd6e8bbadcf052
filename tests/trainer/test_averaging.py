"""Weight averaging on the toy task: EMA (the optimizer's own) and SWA, used for validation, files and export."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from callbacks import ModelCheckpoint
from tasks.toy.task import ToyConfig, ToyTask
from trainer import Callback, Trainer


def weights_of(model):
    return [np.array(w.numpy()) for w in model.trainable_weights]


class ExportingToy(ToyTask):
    """Exports in on_fit_end, as the real tasks do."""

    def on_fit_end(self, trainer, task):
        self.exported = weights_of(self.model)


def raw_checkpoint_weights(run_dir, config):
    """The raw weights in the run's resumable checkpoint, loaded into a fresh toy model."""
    keras.backend.clear_session()
    model = ToyTask(config).build_model()
    tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(str(run_dir / "checkpoints"))).expect_partial()
    return weights_of(model)


def test_ema_weights_differ_from_raw_and_are_validated_saved_and_exported(trainer_config):
    config = ToyConfig(samples=64, batch_size=16)
    task = ExportingToy(config)
    trainer = Trainer(trainer_config(max_epochs=3, run_name="ema", weight_averaging="ema", ema_decay=0.9),
                      callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=1)])
    trainer.fit(task)
    averages = [np.array(v.numpy()) for v in task.model.optimizer._model_variables_moving_average]
    for exported, average in zip(task.exported, averages, strict=True):
        np.testing.assert_allclose(exported, average, rtol=1e-6)
    raw = raw_checkpoint_weights(trainer.run_dir, config)
    assert max(float(np.abs(r - a).max()) for r, a in zip(raw, averages, strict=True)) > 1e-3
    # Validation saw the averaged weights: evaluating them gives the logged val_loss.
    keras.backend.clear_session()
    fresh = ToyTask(config)
    model = fresh.build_model()
    model.load_weights(trainer.run_dir / "checkpoints/last.weights.h5")
    np.testing.assert_allclose(weights_of(model)[0], averages[0], rtol=1e-6)
    loss = model.evaluate(*fresh.val_data(), batch_size=16, verbose=0)[0]
    assert loss == np.float32(loss) and abs(loss - trainer.metrics["val_loss"]) < 1e-4


class RawAtEpochEnd(Callback):
    """The raw weights after each epoch's last step (before the Trainer swaps averages in)."""

    def __init__(self):
        self.epochs = []

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        if batch_idx == trainer.num_train_batches - 1:
            self.epochs.append(weights_of(task.model))


def test_swa_averages_the_epochs_from_its_start_and_resumes(trainer_config):
    raw = RawAtEpochEnd()
    task = ExportingToy(ToyConfig(samples=64, batch_size=16))
    trainer = Trainer(trainer_config(max_epochs=4, run_name="swa", weight_averaging="swa", swa_epoch_start=0.5),
                      callbacks=[raw])
    trainer.fit(task)
    expected = [np.mean([epoch[i] for epoch in raw.epochs[2:]], axis=0) for i in range(len(raw.epochs[0]))]
    for exported, average in zip(task.exported, expected, strict=True):
        np.testing.assert_allclose(exported, average, rtol=1e-5, atol=1e-6)
    assert not np.allclose(task.exported[0], raw.epochs[-1][0])

    # Split 3 + 1 epochs: the average and its count come back with --resume.
    for epochs, resume in ((3, False), (4, True)):
        keras.backend.clear_session()
        split = ExportingToy(ToyConfig(samples=64, batch_size=16))
        Trainer(trainer_config(max_epochs=epochs, run_name="split", weight_averaging="swa", swa_epoch_start=2,
                               resume=resume)).fit(split)
    for a, b in zip(task.exported, split.exported, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_spawned_trainer_averages_where_its_own_shorter_schedule_says(trainer_config):
    parent = Trainer(trainer_config(max_epochs=10, run_name="parent", weight_averaging="swa", swa_epoch_start=0.5))
    child = parent.spawn(ToyTask(), "child", max_epochs=4, seed=7)
    assert (child.config.max_epochs, child.config.seed, child.config.seeds) == (4, 7, 1)
    # Built from its final configuration: SWA starts at half of 4 epochs, not of the parent's 10.
    assert child._averaging.start_epoch == 2
