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
        TaskSpec("deep-mlp", "tasks.deep_mlp:DeepMLPTask",
                 "MNIST MLPs of 5/20/40 layers x relu/tanh/sigmoid/lecun: the vanishing-gradient study"),
        TaskSpec("adversarial", "tasks.adversarial:AdversarialTask",
                 "CNN on MNIST or CIFAR-10, then simple-generator adversarial examples against it"),
        TaskSpec("robust", "tasks.robust:RobustTask",
                 "adversarial training (PGD / FGSM) of a classifier that resists those attacks"),
        TaskSpec("emotion", "tasks.emotion:EmotionTask",
                 "7-class FER2013 emotion CNN, searched with KerasTuner, exported to models/emotion.h5"),
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
