"""Logs the optimizer's learning rate every epoch, as Keras's TensorBoard callback does."""

from __future__ import annotations

import keras

from callbacks.callback import Callback


class LearningRateMonitor(Callback):
    """Writes ``epoch_learning_rate`` to the train writer at the end of every epoch."""

    def on_train_epoch_end(self, trainer, task):
        optimizer = getattr(task.model, "optimizer", None)
        if optimizer is None:
            return
        # One host read per epoch; schedules report the rate of the current iteration.
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        trainer.logger.log_scalars({"learning_rate": rate}, trainer.current_epoch, "train")
