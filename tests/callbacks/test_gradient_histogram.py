"""GradientHistogram and GradientProbe: tags and steps in TensorBoard, correct values, no side effects."""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import GradientHistogram
from callbacks.gradients import GradientProbe
from tasks.toy.task import ToyConfig, ToyTask
from tests.tensorboard_events import read_scalars, read_tags
from trainer import Trainer


def toy_probe(task: ToyTask, samples: int = 16):
    x, y = task.train_data()
    return x[:samples], y[:samples]


def test_histograms_and_max_scalars_every_n_steps(trainer_config, tmp_path):
    task = ToyTask(ToyConfig(samples=64, batch_size=16))  # 4 steps per epoch
    callback = GradientHistogram(toy_probe(task), every_n_steps=3)
    Trainer(trainer_config(max_epochs=2, run_name="g"), callbacks=[callback]).fit(task)
    assert callback.logged_steps == [0, 3, 6]
    tags = read_tags(tmp_path / "logs/toy/g/train")
    assert {"gradients/hidden", "gradients/output"} <= tags["histograms"]
    assert {"max_abs_gradient/hidden", "max_abs_gradient/output"} <= tags["scalars"]
    steps = [step for step, _ in read_scalars(tmp_path / "logs/toy/g/train", "max_abs_gradient/hidden")]
    assert steps == [0, 3, 6]


def test_logged_max_equals_the_probe_on_the_final_weights(trainer_config, tmp_path):
    task = ToyTask(ToyConfig(samples=64, batch_size=16))
    probe_batch = toy_probe(task)
    # 4 steps per epoch and every 4: the last write is after the last update of the run.
    Trainer(trainer_config(max_epochs=1, run_name="v"), callbacks=[GradientHistogram(probe_batch, 4)]).fit(task)
    logged = dict(read_scalars(tmp_path / "logs/toy/v/train", "max_abs_gradient/output"))
    expected = GradientProbe(task.model, *probe_batch).max_abs()["output"]
    assert logged[4] == pytest.approx(expected, rel=1e-5)
    assert logged[0] != pytest.approx(logged[4], rel=1e-5)  # the weights moved between step 0 and 4


def test_probe_matches_a_hand_written_tape():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh", name="a"),
                              keras.layers.Dense(3, activation="softmax", name="b")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    y = np.arange(8) % 3
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x)))
    grads = tape.gradient(loss, model.trainable_variables)
    expected = {"a": max(np.abs(grads[0]).max(), np.abs(grads[1]).max()),
                "b": max(np.abs(grads[2]).max(), np.abs(grads[3]).max())}
    assert GradientProbe(model, x, y).max_abs() == pytest.approx(expected, rel=1e-5)


def test_probe_works_for_a_conv_net_and_leaves_it_unchanged():
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, name="conv"),
        keras.layers.BatchNormalization(name="norm"),
        keras.layers.Dropout(0.5),
        keras.layers.Flatten(),
        keras.layers.Dense(2, activation="softmax", name="head"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).random((6, 8, 8, 1)).astype("float32")
    before = [w.numpy().copy() for w in model.weights]  # includes batch-norm moving statistics
    probe = GradientProbe(model, x, np.array([0, 1, 0, 1, 0, 1]))
    first, second = probe.max_abs(), probe.max_abs()
    assert list(first) == ["conv", "norm", "head"]  # Dropout and Flatten have no weights
    assert first == second  # inference mode: dropout off, so the probe is deterministic
    for old, new in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())


def test_spawned_copies_start_clean_and_bad_interval_is_refused(trainer_config):
    task = ToyTask(ToyConfig(samples=32, batch_size=16))
    callback = GradientHistogram(toy_probe(task), every_n_steps=1)
    Trainer(trainer_config(max_epochs=1), callbacks=[callback]).fit(task)
    clone = copy.deepcopy(callback)  # what Trainer.spawn does; teardown dropped the compiled function
    assert clone._log is None and clone.logged_steps == [0, 1, 2]
    with pytest.raises(ValueError, match="every_n_steps must be at least 1, got 0"):
        GradientHistogram(toy_probe(task), every_n_steps=0)


def test_layer_histograms_match_tensorboards_own_buckets():
    from tensorboard.plugins.histogram.summary_v2 import _buckets

    from callbacks.gradients import layer_histograms

    rng = np.random.default_rng(2)
    values = [tf.constant(rng.normal(size=size).astype("float32")) for size in (7, 50, 333)] + [tf.zeros(5)]
    histograms = layer_histograms(values).numpy()
    for index, layer in enumerate(values[:3]):
        reference = _buckets(layer, tf.constant(30)).numpy()
        np.testing.assert_allclose(histograms[index][:, :2], reference[:, :2], rtol=1e-12)
        np.testing.assert_array_equal(histograms[index][:, 2], reference[:, 2])
    assert histograms[3][0].tolist() == [0.0, 1.0, 5.0] and histograms[3][:, 2].sum() == 5
