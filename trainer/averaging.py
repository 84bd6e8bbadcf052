"""Weight averaging: the optimizer's own EMA, or Lightning-style stochastic weight averaging (SWA).

The Trainer swaps the averaged weights into the model for validation and the epoch-end callbacks
(so ModelCheckpoint files hold them) and swaps the raw weights back before training resumes; the
resumable checkpoint keeps both. At the end of fit the averaged weights stay in the model, so a
task's export in ``on_fit_end`` writes them. Only trainable weights are averaged, as Keras's EMA
does (batch-norm statistics stay those of the raw model).
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from trainer.config import TrainerConfig
from trainer.optimization import inner_optimizer


class NoAveraging:
    """Training without averaging: every hook is free."""

    enabled = False

    def on_train_epoch_end(self, model, epoch: int) -> None:
        pass

    def swapped(self, model):
        return contextlib.nullcontext()

    def finalize(self, model) -> None:
        pass

    def trackables(self) -> dict:
        return {}

    def build(self, model) -> None:
        pass


class WeightAveraging(NoAveraging):
    """Base of the averaging methods: ``averages(model)`` is None until there is an average."""

    enabled = True

    def averages(self, model) -> list | None:
        raise NotImplementedError

    @contextlib.contextmanager
    def swapped(self, model):
        """The averaged weights in the model for the ``with`` block; the raw ones afterwards."""
        averages = self.averages(model)
        if averages is None:
            yield
            return
        raw = [np.array(v.numpy()) for v in model.trainable_variables]
        for variable, average in zip(model.trainable_variables, averages, strict=True):
            variable.assign(average)
        try:
            yield
        finally:
            for variable, value in zip(model.trainable_variables, raw, strict=True):
                variable.assign(value)

    def finalize(self, model) -> None:
        averages = self.averages(model)
        if averages is not None:
            for variable, average in zip(model.trainable_variables, averages, strict=True):
                variable.assign(average)


class ExponentialMovingAverage(WeightAveraging):
    """The optimizer's ``use_ema`` average (set by ``configure_optimizer``), updated inside every step."""

    def averages(self, model):
        optimizer = inner_optimizer(model)
        if optimizer is None or not optimizer.built or not optimizer.use_ema:
            return None
        return optimizer._model_variables_moving_average


class StochasticWeightAveraging(WeightAveraging):
    """An equal average of the weights at the end of each epoch from ``start_epoch`` on (Lightning's SWA
    without its learning-rate schedule). The average and its count live in the resumable checkpoint."""

    def __init__(self, start_epoch: int) -> None:
        self.start_epoch = start_epoch
        self._module = tf.Module()
        self._module.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="swa_count")
        self._module.averages = None

    def _ensure(self, model) -> list:
        if self._module.averages is None:
            self._module.averages = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                                 name=f"swa_{i}") for i, v in enumerate(model.trainable_variables)]
        return self._module.averages

    def trackables(self) -> dict:
        return {"swa": self._module}

    def on_train_epoch_end(self, model, epoch: int) -> None:
        if epoch < self.start_epoch:
            return
        count = float(self._module.count.numpy())
        for average, variable in zip(self._ensure(model), model.trainable_variables, strict=True):
            value = keras.ops.convert_to_numpy(variable.value)
            average.assign(average.numpy() + (value - average.numpy()) / (count + 1))
        self._module.count.assign_add(1)

    def averages(self, model):
        if int(self._module.count.numpy()) == 0:
            return None
        return self._ensure(model)

    def build(self, model) -> None:
        """Creates the average's variables so a resumed checkpoint can fill them."""
        self._ensure(model)


def make_averaging(config: TrainerConfig) -> NoAveraging:
    if config.weight_averaging == "ema":
        return ExponentialMovingAverage()
    if config.weight_averaging == "swa":
        start = config.swa_epoch_start
        epoch = int(start * config.max_epochs) if isinstance(start, float) else start
        return StochasticWeightAveraging(epoch)
    return NoAveraging()
