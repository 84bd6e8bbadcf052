"""Stops fitting when a monitored metric stops improving."""

from __future__ import annotations

import math

from callbacks.callback import Callback


class EarlyStopping(Callback):
    """Stops after ``patience`` epochs without an improvement of at least ``min_delta``."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0, mode: str = "auto"):
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "f1", "auc", "precision", "recall")) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r} is unknown; use min, max or auto")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch: int | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_epoch_end(self, trainer, task):
        if self.monitor not in trainer.metrics:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which the run does not report; "
                           f"choose one of {', '.join(sorted(trainer.metrics))}")
        value = trainer.metrics[self.monitor]
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait, self.stopped_epoch = state["best"], state["wait"], state["stopped_epoch"]
