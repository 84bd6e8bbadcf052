"""The Callback base: empty hooks the Trainer fires in a fixed order, plus the Keras adapter."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.task import Task
    from trainer.trainer import Trainer


class Callback:
    """Observes a run through public trainer state; its only write is ``trainer.should_stop = True``."""

    def __new__(cls, *args, **kwargs):
        # The constructor's arguments name this instance's state in a checkpoint (see ``state_key``).
        instance = super().__new__(cls)
        instance._init_arguments = (args, kwargs)
        return instance

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint: its class and arguments, as Lightning's
        ``EarlyStopping{'min_delta': 0.0, 'mode': 'min', 'monitor': 'val_loss', 'patience': 3}``, so two
        callbacks of one class keep their own state."""
        args, kwargs = getattr(self, "_init_arguments", ((), {}))
        try:
            bound = inspect.signature(type(self).__init__).bind(self, *args, **kwargs)
        except TypeError:
            return type(self).__qualname__
        bound.apply_defaults()
        arguments = {k: _describe(v) for k, v in list(bound.arguments.items())[1:]}
        return f"{type(self).__qualname__}{dict(sorted(arguments.items()))}"

    def setup(self, trainer: Trainer, task: Task, stage: str) -> None:
        """Called when fit, validate, test or predict begins, after the model is built."""

    def teardown(self, trainer: Trainer, task: Task, stage: str) -> None:
        """Called when fit, validate, test or predict ends, even after an exception."""

    def on_exception(self, trainer: Trainer, task: Task, exception: BaseException) -> None:
        """Called when the run raises, before teardown."""

    def on_fit_start(self, trainer: Trainer, task: Task) -> None:
        """Called when fit starts, after a resumed checkpoint is loaded."""

    def on_fit_end(self, trainer: Trainer, task: Task) -> None:
        """Called when fit ends normally."""

    def on_train_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """Called when a training epoch starts."""

    def on_train_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """Called when a training epoch and its validation have ended; ``trainer.metrics`` holds both."""

    def on_train_batch_start(self, trainer: Trainer, task: Task, batch_idx: int) -> None:
        """Called when a training step is about to run (its batch is fetched inside the compiled step)."""

    def on_train_batch_end(self, trainer: Trainer, task: Task, outputs: dict, batch: Any, batch_idx: int) -> None:
        """Called when a training batch has run; ``outputs`` are device tensors (reading one syncs)."""

    def on_validation_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """Called when a validation pass starts."""

    def on_validation_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """Called when a validation pass ends; its metrics are in ``trainer.metrics``."""

    def on_test_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """Called when a test pass starts."""

    def on_test_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """Called when a test pass ends; its metrics are in ``trainer.metrics``."""

    def on_predict_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """Called when a predict pass starts."""

    def on_predict_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """Called when a predict pass ends."""

    def on_save_checkpoint(self, trainer: Trainer, task: Task, path: str) -> None:
        """Called when a checkpoint has been written to ``path``."""

    def state_dict(self) -> dict:
        """Called when a checkpoint is written; returns this callback's (or task's) JSON-able state."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Called when a run resumes, with what ``state_dict`` returned."""


def _describe(value):
    """A short, stable stand-in for an argument: plain values as they are, arrays by type and shape."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__}{list(shape)}" if shape is not None else type(value).__name__


class KerasCallbackAdapter(Callback):
    """Runs a plain ``keras.callbacks.Callback`` inside the Trainer.

    Keras callbacks expect float logs every batch, so an adapted callback costs one host sync
    per training step; ``model.stop_training = True`` is honoured as ``trainer.should_stop``.
    """

    def __init__(self, keras_callback) -> None:
        self.keras_callback = keras_callback

    @property
    def state_key(self) -> str:
        return f"keras:{type(self.keras_callback).__name__}"

    def setup(self, trainer, task, stage):
        self.keras_callback.set_model(task.model)
        self.keras_callback.set_params({"epochs": trainer.config.effective.max_epochs, "verbose": 0})
        if stage == "fit":
            self.keras_callback.on_train_begin()

    def on_fit_end(self, trainer, task):
        self.keras_callback.on_train_end(logs=dict(trainer.metrics))

    def on_train_epoch_start(self, trainer, task):
        self.keras_callback.on_epoch_begin(trainer.current_epoch)

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        self.keras_callback.on_train_batch_end(batch_idx, logs={k: float(v) for k, v in outputs.items()})
        self._forward_stop(trainer, task)

    def on_train_epoch_end(self, trainer, task):
        # Keras names train metrics bare ("loss") and validation metrics "val_loss".
        logs = {k.removeprefix("train_"): v for k, v in trainer.metrics.items() if k.startswith(("train_", "val_"))}
        self.keras_callback.on_epoch_end(trainer.current_epoch, logs=logs)
        self._forward_stop(trainer, task)

    @staticmethod
    def _forward_stop(trainer, task) -> None:
        if getattr(task.model, "stop_training", False):
            trainer.should_stop = True
