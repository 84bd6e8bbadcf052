"""Stops a run whose loss becomes NaN or infinite; the Trainer never checkpoints such an epoch."""

from __future__ import annotations

import math

from callbacks.callback import Callback


class TerminateOnNaN(Callback):
    """Checks the loss on logged steps and at epoch end, so it adds no host sync of its own."""

    def __init__(self, monitor: str = "train_loss") -> None:
        self.monitor = monitor
        self.stopped_at_step: int | None = None

    def _check(self, trainer) -> None:
        value = trainer.metrics.get(self.monitor)
        if value is not None and not math.isfinite(value):
            self.stopped_at_step = trainer.global_step
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        if trainer.logged_this_step:
            self._check(trainer)

    def on_train_epoch_end(self, trainer, task):
        self._check(trainer)
