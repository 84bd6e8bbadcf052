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


def random_state(task) -> dict:
    """The state of every random generator the task's steps draw from, as JSON: Keras ``SeedGenerator``s
    (Dropout, random augmentation layers, ``keras.random`` with a generator) of the model and of the
    task's own layers, and ``tf.random.Generator``s the task holds.

    A stateful op without a generator (``tf.random.uniform``) keeps its counter inside the compiled
    step, where no checkpoint reaches it: a task that wants exact resume draws from a generator.
    """
    return {name: variable.numpy().tolist() for name, variable in _random_variables(task).items()}


def load_random_state(task, state: dict) -> None:
    for name, variable in _random_variables(task).items():
        if name in state:
            variable.assign(tf.constant(state[name], dtype=variable.dtype))


def _random_variables(task) -> dict:
    """Generator state variables by a name stable across runs: the task attribute and position."""
    import keras

    found, seen = {}, set()
    owners = [("model", task.model), *((k, v) for k, v in sorted(vars(task).items()) if k != "model")]
    for owner, value in owners:
        if isinstance(value, keras.Layer):
            variables = [v for v in value.variables if v.name == "seed_generator_state"]
        elif isinstance(value, (keras.random.SeedGenerator, tf.random.Generator)):
            variables = [value.state]
        else:
            continue
        for index, variable in enumerate(variables):
            if id(variable) not in seen:
                seen.add(id(variable))
                found[f"{owner}/{index}"] = variable
    return found
