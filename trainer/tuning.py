"""Runs that tune the Trainer's settings rather than train a model: the learning-rate range test.

As Lightning's ``Tuner.lr_find``: the sweep is the ``LearningRateFinder`` callback, this module gives it
a Trainer of its own.
"""

from __future__ import annotations

import dataclasses

from callbacks.lr_finder import LearningRateFinder
from trainer.config import TrainerConfig


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
