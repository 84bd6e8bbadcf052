"""The task registry. Names map to import paths so listing tasks never imports TensorFlow."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    target: str  # "module:Class"
    summary: str

    def load(self):
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("toy", "tasks.toy:ToyTask", "a tiny classifier on random data: proves the Trainer in seconds"),
    )
}


def build_task(name: str, options: dict, data_dir: str | None = None):
    """Imports and configures a task from CLI options (None values mean "not given")."""
    from trainer.errors import UserError

    if name not in TASKS:
        raise UserError(f"task {name!r} is unknown; choose one of: {', '.join(TASKS)}")
    task = TASKS[name].load().from_options(options)
    task.data_dir = data_dir
    return task
