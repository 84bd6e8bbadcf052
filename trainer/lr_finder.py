"""The learning-rate range test (Smith 2017; Lightning's ``Tuner.lr_find``).

The rate grows exponentially from ``min_lr`` to ``max_lr`` over ``num_steps`` training steps while
the loss of every batch is recorded; the test stops early once the smoothed loss passes
``diverge_factor`` times its best. The suggestion is the rate where the smoothed loss falls fastest
(the steepest negative slope against log10(rate)), as Lightning suggests. It writes
``lr_find.json``, ``lr_find.png`` and the same figure as the TensorBoard image ``lr_find``.

It trains the task's model, so it runs in its own run folder and is not a way to start a run.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from trainer.callback import Callback
from trainer.config import TrainerConfig
from trainer.errors import UserError
from trainer.files import atomic_path, write_atomic
from trainer.optimization import inner_optimizer


class LearningRateFinder(Callback):
    """Sets the rate before each step and derives each batch's loss from the running mean Keras returns."""

    # fastai's and Lightning's smoothing of the recorded loss.
    smoothing = 0.98

    def __init__(self, min_lr: float = 1e-7, max_lr: float = 1.0, num_steps: int = 200,
                 diverge_factor: float = 4.0) -> None:
        if not 0 < min_lr < max_lr:
            raise UserError(f"the rate range {min_lr:g} to {max_lr:g} is empty; give 0 < --min-lr < --max-lr")
        if num_steps < 10:
            raise UserError(f"--num-steps must be at least 10 to draw a curve, got {num_steps}")
        self.min_lr, self.max_lr, self.num_steps, self.diverge_factor = min_lr, max_lr, num_steps, diverge_factor
        self.rates: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._rate = min_lr
        self._total = self._weight = 0.0

    def setup(self, trainer, task, stage):
        optimizer = inner_optimizer(task.model)
        if optimizer is None or not hasattr(optimizer.learning_rate, "assign"):
            raise UserError(f"task {task.name}'s optimizer has no settable learning rate (a schedule or none); "
                            "the range test needs a constant rate to sweep")

    def on_train_batch_start(self, trainer, task, batch_idx):
        fraction = len(self.losses) / (self.num_steps - 1)
        self._rate = self.min_lr * (self.max_lr / self.min_lr) ** fraction
        inner_optimizer(task.model).learning_rate.assign(self._rate)

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        if "loss" not in outputs:
            raise UserError(f"task {task.name}'s training step reports no 'loss' (it reports {', '.join(outputs)})")
        if batch_idx == 0:  # the Trainer reset the running metrics at the epoch's start
            self._total = self._weight = 0.0
        size = float(len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch))
        # Keras returns the batch-size-weighted running mean: the batch's own loss is the change in its total.
        total = float(outputs["loss"]) * (self._weight + size)
        loss = (total - self._total) / size
        self._total, self._weight = total, self._weight + size
        self._record(loss)
        if len(self.losses) >= self.num_steps:
            trainer.should_stop = True
        elif not math.isfinite(loss) or self.smoothed[-1] > self.diverge_factor * min(self.smoothed):
            self.stopped_early = True
            trainer.should_stop = True

    def _record(self, loss: float) -> None:
        previous = self.smoothed[-1] * (1 - self.smoothing ** len(self.losses)) if self.smoothed else 0.0
        average = self.smoothing * previous + (1 - self.smoothing) * loss
        self.rates.append(self._rate)
        self.losses.append(loss)
        self.smoothed.append(average / (1 - self.smoothing ** len(self.losses)))

    def suggestion(self) -> float | None:
        """The rate of the steepest fall of the smoothed loss, skipping the first 10 and the last step."""
        finite = [i for i, v in enumerate(self.smoothed) if math.isfinite(v)]
        points = finite[10:-1]
        if len(points) < 3:
            return None
        log_rates = np.log10([self.rates[i] for i in points])
        slopes = np.gradient(np.array([self.smoothed[i] for i in points]), log_rates)
        return float(self.rates[points[int(np.argmin(slopes))]])

    def on_fit_end(self, trainer, task):
        if not trainer.is_chief:
            return
        suggestion = self.suggestion()
        write_atomic(trainer.run_dir / "lr_find.json", json.dumps(
            {"suggestion": suggestion, "stopped_early": self.stopped_early, "rates": self.rates,
             "losses": self.losses, "smoothed": self.smoothed}, indent=2))
        figure = self.figure(suggestion, task.name)
        with atomic_path(trainer.run_dir / "lr_find.png") as tmp:
            figure.savefig(tmp, dpi=110, bbox_inches="tight")
        trainer.logger.log_figure("lr_find", figure, 0, split="train")

    def figure(self, suggestion: float | None, name: str):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 4))
        axes.plot(self.rates, self.losses, color="0.75", linewidth=0.8, label="batch loss")
        axes.plot(self.rates, self.smoothed, color="C0", label="smoothed")
        if suggestion is not None:
            axes.axvline(suggestion, color="C3", linestyle="--", label=f"suggested {suggestion:.2e}")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:
            axes.set_ylim(min(finite) * 0.9, min(max(finite), self.diverge_factor * min(finite)) * 1.1)
        axes.set(xscale="log", xlabel="learning rate", ylabel="training loss",
                 title=f"{name}: learning-rate range test")
        axes.legend()
        plt.close(figure)
        return figure


def find_learning_rate(task, config: TrainerConfig, finder: LearningRateFinder, exclusive: bool = False):
    """Runs the range test on ``task``; returns the Trainer (its run folder holds the curve) and the suggestion.
    ``exclusive``: as the Trainer's, a named run folder that already holds a run is refused."""
    from trainer.trainer import Trainer

    # As many epochs as the steps need; no checkpoints, and validation only once, at the end.
    sweep = dataclasses.replace(config, max_epochs=10**6, checkpoint=False, check_val_every_n_epoch=10**6,
                                resume=False)
    trainer = Trainer(sweep, callbacks=[finder], exclusive=exclusive)
    trainer.run_kind = "lr-find"  # a fit to the Trainer; report and --resume tell the sweep from a training
    trainer.fit(task)
    return trainer, finder.suggestion()
