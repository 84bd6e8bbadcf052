"""MonitorCallback: the base of callbacks that watch one metric, as Keras's ``MonitorCallback``."""

from __future__ import annotations

import math

from callbacks.callback import Callback
from common.errors import BadArgument, UserError

# Names of metrics that grow as a model improves; ``mode="auto"`` watches any other name fall.
HIGHER_IS_BETTER = ("acc", "f1", "auc", "precision", "recall")


class MonitorCallback(Callback):
    """Watches ``monitor`` in ``trainer.metrics``: ``mode`` is ``min``, ``max`` or ``auto`` (max for
    accuracy-like names), and ``improved()`` says whether a value beats another by ``min_delta``."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0) -> None:
        if mode == "auto":
            mode = "max" if any(key in monitor for key in HIGHER_IS_BETTER) else "min"
        if mode not in ("min", "max"):
            raise BadArgument(f"{type(self).__name__} mode {mode!r} is unknown; use min, max or auto")
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta

    @property
    def worst(self) -> float:
        """A value every real one improves on: where a record starts."""
        return math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float, reference: float) -> bool:
        """True when ``value`` beats ``reference`` by more than ``min_delta`` in this callback's direction."""
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def monitored(self, trainer, task) -> float:
        """The monitored metric's current value; a metric the run never logs is a UserError naming those it does."""
        if self.monitor not in trainer.metrics:
            raise UserError(f"{type(self).__name__} monitors {self.monitor!r}, which task {task.name} never logs; "
                            f"it logs: {', '.join(sorted(trainer.metrics))}")
        return trainer.metrics[self.monitor]
