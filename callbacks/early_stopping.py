"""Stops fitting when a monitored metric stops improving."""

from __future__ import annotations

from callbacks.monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stops after ``patience`` epochs without an improvement of at least ``min_delta``."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0, mode: str = "auto"):
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.best = self.worst
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer, task):
        value = self.monitored(trainer, task)
        if self.improved(value, self.best):
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
