"""Atomic, durable, resumable checkpoints: model and optimizer variables plus the trainer's JSON state.

Checkpoint N is written in an order that any crash, kill or full disk leaves harmless:
``state-N.json`` (the trainer state), then ``ckpt-N.data-*`` and ``ckpt-N.index`` (the variables,
``tf.train.Checkpoint.write``), all flushed to disk, and only then the ``checkpoint`` index that
names it, replaced atomically. Until that last rename the previous checkpoint is the one in force.
Restore tries the newest checkpoint and falls back to older ones when its files are damaged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import tensorflow as tf

from common.errors import UserError
from common.files import disk_space, sync_files, sync_folder, write_atomic
from trainer.export import variables_size

# Test hook (tests/trainer/test_reliability.py): with this set to N, the process stops after
# checkpoint N's variables are on disk and before the index names them, so a test can kill it there.
PAUSE_ENV = "TRAINLAB_PAUSE_AFTER_CHECKPOINT_DATA"
# What reading a damaged checkpoint raises: TensorFlow's errors, IndexError for a truncated data file
# ("Read less bytes than requested"), ValueError for a bad JSON state or mismatched shapes.
UNREADABLE = (tf.errors.OpError, OSError, ValueError, IndexError, KeyError)


class CheckpointIO:
    """Saves and restores ``model`` + ``model.optimizer`` with the trainer state of that moment."""

    def __init__(self, directory: str | Path, model, max_to_keep: int = 2, extra: dict | None = None) -> None:
        self.directory = Path(directory)
        self.max_to_keep = max_to_keep
        # ``extra``: more trackable state saved beside the model, e.g. a weight average.
        objects = {"model": model, **(extra or {})}
        if getattr(model, "optimizer", None) is not None:
            objects["optimizer"] = model.optimizer
        self._checkpoint = tf.train.Checkpoint(**objects)

    @property
    def checkpoints(self) -> list[int]:
        """The numbers of the checkpoints in force, oldest first, as the ``checkpoint`` index lists them.

        Without a readable index (a crash before the first one was written) the complete checkpoints
        on disk stand in: a ``ckpt-N.index`` is only written once N's data is.
        """
        index = self.directory / "checkpoint"
        try:
            names = re.findall(r'^all_model_checkpoint_paths: "(.*)"$', index.read_text(), re.MULTILINE)
        except (OSError, UnicodeDecodeError):
            names = []
        numbers = [int(m.group(1)) for m in map(re.compile(r"ckpt-(\d+)$").search, names) if m]
        if numbers:
            return numbers
        return sorted(int(p.name[5:-6]) for p in self.directory.glob("ckpt-*.index") if p.name[5:-6].isdigit())

    @property
    def latest(self) -> str | None:
        numbers = self.checkpoints
        return str(self._prefix(numbers[-1])) if numbers else None

    def save(self, state: dict, number: int) -> str:
        in_force = [n for n in self.checkpoints if n != number]
        with disk_space(self.directory, self._bytes_needed(), "free some space, then continue with --resume"):
            if len(in_force) < len(self.checkpoints):
                # Rewriting a checkpoint in force (after a fall-back): it leaves the index while rewritten.
                self._write_index(in_force)
            try:
                write_atomic(self._state_path(number), json.dumps(state, indent=2, default=str))
                path = self._checkpoint.write(str(self._prefix(number)))
                sync_files(*self._files(number))
                sync_folder(self.directory)
                _pause_if_asked(number)
                kept = [*in_force, number][-self.max_to_keep:]
                self._write_index(kept)
            except BaseException:
                self._remove(number)
                raise
        self._prune(kept)
        return path

    def restore(self) -> dict:
        """Loads the newest readable checkpoint into the model and optimizer; returns its trainer state.

        A damaged checkpoint is reported in one line and the one before it is tried; when none can be
        read, ``UserError``, and nothing is deleted.
        """
        numbers = self.checkpoints
        if not numbers:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        optimizer = getattr(self._checkpoint, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            # Slot variables must exist before restore can fill them.
            optimizer.build(self._checkpoint.model.trainable_variables)
        failures = []
        for number in reversed(numbers):
            try:
                state = json.loads(self._state_path(number).read_text())
                self._checkpoint.restore(str(self._prefix(number))).expect_partial()
            except UNREADABLE as error:
                failures.append(f"ckpt-{number} ({_one_line(error)})")
                continue
            if failures:
                print(f"warning: in {self.directory}, {', '.join(failures)} could not be read; "
                      f"restored ckpt-{number} instead", file=sys.stderr, flush=True)
            return state
        raise UserError(f"no checkpoint in {self.directory} could be read: {', '.join(failures)}; nothing was "
                        "deleted; start over with another --run-name (or without --resume)")

    # --- files --------------------------------------------------------------------------------
    def _prefix(self, number: int) -> Path:
        return self.directory / f"ckpt-{number}"

    def _state_path(self, number: int) -> Path:
        return self.directory / f"state-{number}.json"

    def _files(self, number: int) -> list[Path]:
        return [*self.directory.glob(f"ckpt-{number}.data-*"), self.directory / f"ckpt-{number}.index"]

    def _write_index(self, numbers: list[int]) -> None:
        """The index in ``tf.train.CheckpointManager``'s format, so TensorFlow's own tools read it."""
        if not numbers:
            (self.directory / "checkpoint").unlink(missing_ok=True)
            return
        lines = [f'model_checkpoint_path: "ckpt-{numbers[-1]}"']
        lines += [f'all_model_checkpoint_paths: "ckpt-{n}"' for n in numbers]
        write_atomic(self.directory / "checkpoint", "\n".join(lines) + "\n")

    def _remove(self, number: int) -> None:
        """Deletes checkpoint ``number``'s files, and what a write cut short leaves (``ckpt-N_temp``)."""
        for path in [*self._files(number), self._state_path(number)]:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.directory / f"ckpt-{number}_temp", ignore_errors=True)

    def _prune(self, kept: list[int]) -> None:
        """Deletes the checkpoints not kept, and temporary files of writes that a kill cut short."""
        pattern = re.compile(r"^(?:ckpt|state)-(\d+)(?:\.|_temp$)")
        names = os.listdir(self.directory)
        for number in {int(m.group(1)) for m in map(pattern.match, names) if m} - set(kept):
            self._remove(number)
        for name in names:
            if name.startswith((".state-", ".checkpoint.")):  # the run's one writer (it holds the lock) is here
                (self.directory / name).unlink(missing_ok=True)

    def _bytes_needed(self) -> int:
        """The size of one checkpoint, named in the message when the disk is full."""
        optimizer = getattr(self._checkpoint, "optimizer", None)
        return variables_size([*self._checkpoint.model.weights, *(optimizer.variables if optimizer else [])])

def _pause_if_asked(number: int) -> None:
    if os.environ.get(PAUSE_ENV) == str(number):
        print(f"paused after writing the data of checkpoint {number}", file=sys.stderr, flush=True)
        signal.pause()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


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
