"""Atomic, resumable checkpoints: model and optimizer variables plus the trainer's JSON state.

``tf.train.CheckpointManager`` writes the variables under a new prefix and only then replaces its
``checkpoint`` index file atomically, so a crash mid-write leaves the previous checkpoint in force.
The JSON state beside each prefix is written to a temporary file and renamed for the same reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from trainer.files import write_atomic


class CheckpointIO:
    """Saves and restores ``model`` + ``model.optimizer`` with the trainer state of that moment."""

    def __init__(self, directory: str | Path, model, max_to_keep: int = 2, extra: dict | None = None) -> None:
        self.directory = Path(directory)
        # ``extra``: more trackable state saved beside the model, e.g. a weight average.
        objects = {"model": model, **(extra or {})}
        if getattr(model, "optimizer", None) is not None:
            objects["optimizer"] = model.optimizer
        self._checkpoint = tf.train.Checkpoint(**objects)
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(self.directory), max_to_keep=max_to_keep)

    @property
    def latest(self) -> str | None:
        return self._manager.latest_checkpoint

    def save(self, state: dict, number: int) -> str:
        write_atomic(self._state_path(number), json.dumps(state, indent=2, default=str))
        path = self._manager.save(checkpoint_number=number)
        self._prune_states()
        return path

    def restore(self) -> dict:
        """Loads the newest checkpoint into the model and optimizer; returns its trainer state."""
        path = self.latest
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        optimizer = getattr(self._checkpoint, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            # Slot variables must exist before restore can fill them.
            optimizer.build(self._checkpoint.model.trainable_variables)
        self._checkpoint.restore(path).expect_partial()
        number = int(path.rsplit("-", 1)[1])
        return json.loads(self._state_path(number).read_text())

    def _state_path(self, number: int) -> Path:
        return self.directory / f"state-{number}.json"

    def _prune_states(self) -> None:
        kept = {int(p.rsplit("-", 1)[1]) for p in self._manager.checkpoints}
        for state in self.directory.glob("state-*.json"):
            if int(state.stem.split("-")[1]) not in kept:
                state.unlink(missing_ok=True)
