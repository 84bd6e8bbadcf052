"""The task registry: built-in tasks, tasks installed under the ``trainlab.tasks`` entry-point group,
and any ``module:Class`` import path. Each built-in task is a package of its own (``tasks/toy/``,
``tasks/deep_mlp/``, ``tasks/adversarial/``, ``tasks/robust/``, ``tasks/emotion/``); ``classifiers.py``
is the CNN that adversarial and robust share.

Names map to import paths, so listing tasks reads metadata only and never imports TensorFlow; each
built-in task's Config lives in a light module of its own, so its options are known without
importing the task either.

A task may import ``common``, ``callbacks``, ``trainer``, ``data`` and ``tasks.classifiers``, never
another task's package; only ``cli.py`` and ``live/`` import tasks.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass

from common.errors import UserError

ENTRY_POINT_GROUP = "trainlab.tasks"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    target: str  # "module:Class"
    summary: str
    # "module:Class" of the task's Config, importable without TensorFlow; None: the task class's own Config.
    config: str | None = None
    origin: str = "built-in"  # or the distribution that registers it, or "import path"

    def load(self) -> type:
        """The Task subclass; a module that does not import or a name that is no Task raises UserError."""
        from trainer.task import Task

        task = _import(self.target, what="task")
        if not (isinstance(task, type) and issubclass(task, Task)):
            kind = type(task).__name__ if not isinstance(task, type) else f"class {task.__name__}"
            raise UserError(f"task {self.target} is a {kind}, not a trainer.Task subclass; point at a class "
                            "that subclasses trainer.Task")
        return task

    def load_config(self) -> type | None:
        """The task's Config dataclass (None: the task has no options of its own)."""
        return _import(self.config, what="Config") if self.config else self.load().Config


BUILT_IN: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("toy", "tasks.toy.task:ToyTask", "a tiny classifier on random data: proves the Trainer in seconds",
                 "tasks.toy.config:ToyConfig"),
        TaskSpec("deep-mlp", "tasks.deep_mlp.task:DeepMLPTask",
                 "MNIST MLPs of 5/20/40 layers x relu/tanh/sigmoid/lecun: the vanishing-gradient study",
                 "tasks.deep_mlp.config:DeepMLPConfig"),
        TaskSpec("adversarial", "tasks.adversarial.task:AdversarialTask",
                 "CNN on MNIST or CIFAR-10, then simple-generator adversarial examples against it",
                 "tasks.adversarial.config:AdversarialConfig"),
        TaskSpec("robust", "tasks.robust.task:RobustTask",
                 "adversarial training (PGD / FGSM) of a classifier that resists those attacks",
                 "tasks.robust.config:RobustConfig"),
        TaskSpec("emotion", "tasks.emotion.task:EmotionTask",
                 "7-class FER2013 emotion CNN, searched with KerasTuner, exported to models/emotion.h5",
                 "tasks.emotion.config:EmotionConfig"),
    )
}


def installed() -> list[TaskSpec]:
    """Tasks that installed distributions register under ``trainlab.tasks``, from their metadata alone."""
    specs, seen = [], set()
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (entry.name, entry.value) in seen:  # one distribution found twice on sys.path
            continue
        seen.add((entry.name, entry.value))
        dist = entry.dist
        summary = (dist.metadata.get("Summary") or "").strip() if dist else ""
        origin = f"{dist.name} {dist.version}" if dist else "an installed distribution"
        specs.append(TaskSpec(entry.name, entry.value, summary or f"from {origin}", origin=origin))
    return specs


def registry() -> dict[str, TaskSpec]:
    """Every task by name: built-in first, then installed ones. Two tasks under one name raise UserError."""
    return {name: _one(name, specs) for name, specs in _registered().items()}


def find_task(reference: str) -> TaskSpec:
    """The task a user names: a registered name, or a ``module:Class`` import path."""
    if ":" in reference:
        return TaskSpec(reference, reference, "", origin="import path")
    registered = _registered()
    if reference not in registered:
        close = _close_name(reference, list(registered))
        hint = f" (did you mean {close}?)" if close else ""
        raise UserError(f"task {reference!r} is unknown{hint}; choose one of: {', '.join(registered)} "
                        "(or give a Task class as module:Class)")
    return _one(reference, registered[reference])


def _close_name(reference: str, names: list[str]) -> str | None:
    """The registered name a misspelling means: another case, ``_`` for ``-``, or a letter or two off."""
    folded = reference.lower().replace("_", "-")
    if folded in names:
        return folded
    close = difflib.get_close_matches(folded, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _registered() -> dict[str, list[TaskSpec]]:
    tasks = {name: [spec] for name, spec in BUILT_IN.items()}
    for spec in installed():
        tasks.setdefault(spec.name, []).append(spec)
    return tasks


def _one(name: str, specs: list[TaskSpec]) -> TaskSpec:
    if len(specs) > 1:
        listed = " and ".join(f"{s.target} ({s.origin})" for s in specs)
        raise UserError(f"two tasks are registered as {name!r}: {listed}; uninstall one, or run either by its "
                        "module:Class path")
    return specs[0]


def build_task(task: str | TaskSpec, options: dict, data_dir: str | None = None):
    """Imports and configures a task from CLI options (None values mean "not given"); ``task`` is what a
    user names (see ``find_task``) or a TaskSpec found already."""
    spec = task if isinstance(task, TaskSpec) else find_task(task)
    task = spec.load().from_options(options)
    task.data_dir = data_dir
    return task


def _import(target: str, what: str):
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UserError(f"{what} {target!r} is not an import path; write module:Class, e.g. my_tasks:Digits")
    if os.getcwd() not in sys.path:  # a module in the working folder, as `python -m` would find it
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raises while importing
        raise UserError(f"{what} {target}: {_import_failure(module_name, error)}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UserError(f"{what} {target}: module {module_name} has no {attribute!r}; check the name after the "
                        "colon") from None


def _import_failure(module_name: str, error: Exception) -> str:
    """Why ``module_name`` does not import, and the fix: it is not on the path (the working folder, the installed
    packages), or it is found and fails itself, e.g. on a package it needs."""
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        top = module_name.split(".")[0]
        holds = f"{top}/" if "." in module_name else f"{top}.py"
        return (f"no module {module_name} in the working folder {os.getcwd()} or among the installed packages; "
                f"run from the folder that holds {holds}, or install the package that provides it")
    fix = f"install the package that provides {missing}" if missing else "fix the error in the module"
    return f"module {module_name} fails to import ({type(error).__name__}: {_first_line(error)}); {fix}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0]
