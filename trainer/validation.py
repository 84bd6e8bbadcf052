"""Each option's range, declared on its Config field beside its default and help, and checked by one function.

    samples: int = field(default=512, metadata={"help": "...", "min": 1})
    learning_rate: float = field(default=1e-2, metadata={"help": "...", "above": 0})
    indices: tuple[int, ...] | None = field(default=None, metadata={"help": "...", "min": 0, "max": 9999})
    run_name: str | None = field(default=None, metadata={"help": "...", "check": one_path_component})
    monitor: str = field(default="val_loss", metadata={"help": "...", "any": "why every value is fine"})

``min`` / ``max`` are inclusive bounds, ``above`` / ``below`` exclusive ones; a bounded float must also
be finite. On a tuple they bound each entry, as ``choices`` does. ``check`` is a function of the value
that returns None when it is good, else the value, what is wrong with it and how to fix it
("'a/b' is not one folder name: ..."), which the message puts after the option's flag. A bool takes either value; any
other field declares a range, choices, a check, or ``any`` with the reason every value is fine (a test
walks every built-in field with a bad value, so a field without one fails the suite). None, an optional
field's "not given", always passes.

``check_fields(config)`` applies them to a Config instance: the built-in Configs call it from
``__post_init__``, and the CLI calls it on every Config it builds, plug-ins' included, before TensorFlow
is imported, so no bad value reaches a training or a test.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from common.errors import UserError
from trainer.options import flag_of
from trainer.shipped import find_model, shipped_models

BOUNDS = ("min", "max", "above", "below")
RANGE_KEYS = (*BOUNDS, "choices", "check", "any")
WORDS = {"min": "at least", "above": "above", "max": "at most", "below": "below"}
RUN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def check_fields(config: Any) -> None:
    """Raises UserError (one line: the option, the bad value, the fix) for the first field out of its range."""
    for f in dataclasses.fields(config):
        message = field_error(f, getattr(config, f.name))
        if message:
            raise UserError(message)


def field_error(f: dataclasses.Field, value: Any) -> str | None:
    """What is wrong with ``value`` for the field ``f``, in one line; None when it is in range."""
    if value is None or isinstance(value, bool):
        return None
    flag = flag_of(f.name)
    many = isinstance(value, tuple)
    for entry in value if many else (value,):
        if f.metadata.get("choices") and entry not in f.metadata["choices"]:
            given = f"{_text(value)!r}" + (f" lists {entry!r}, which" if many else "")
            return f"{flag} {given} is unknown; use one of {', '.join(map(str, f.metadata['choices']))}"
        wrong = _bound_error(f.metadata, entry)
        if wrong:
            got = f"{entry} in {_text(value)}" if many else str(entry)
            return f"{flag} {'entries ' if many else ''}must be {wrong}, got {got}; {_fix(f, flag)}"
    check = f.metadata.get("check")
    wrong = check(value) if check else None
    return f"{flag} {wrong}" if wrong else None


def has_range(f: dataclasses.Field, kind: type | None = None) -> bool:
    """Whether the field declares which values it takes (a bool always does)."""
    return kind is bool or any(key in f.metadata for key in RANGE_KEYS)


def _bound_error(metadata, entry: Any) -> str | None:
    """"at least 1", "below 1"...: the bound ``entry`` breaks; None within them (or without any)."""
    if isinstance(entry, bool) or not isinstance(entry, (int, float)) or not any(k in metadata for k in BOUNDS):
        return None
    if isinstance(entry, float) and not math.isfinite(entry):
        return "a finite number"
    lower = next(((key, metadata[key]) for key in ("min", "above") if key in metadata), None)
    upper = next(((key, metadata[key]) for key in ("max", "below") if key in metadata), None)
    below_lower = lower and (entry < lower[1] if lower[0] == "min" else entry <= lower[1])
    above_upper = upper and (entry > upper[1] if upper[0] == "max" else entry >= upper[1])
    if not (below_lower or above_upper):
        return None
    if lower and upper:
        if (lower[0], upper[0]) == ("above", "below"):
            return f"between {lower[1]} and {upper[1]}"
        return f"{WORDS[lower[0]]} {lower[1]} and {WORDS[upper[0]]} {upper[1]}"
    key, bound = lower or upper
    return f"{WORDS[key]} {bound}"


def _fix(f: dataclasses.Field, flag: str) -> str:
    """The field's own fix (metadata ``fix``), else its default as an example."""
    if "fix" in f.metadata:
        return f.metadata["fix"]
    default = f.default if f.default is not dataclasses.MISSING else None
    return f"e.g. {flag} {_text(default)}" if default is not None else f"see {flag} in --help"


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- checks shared by several Configs -----------------------------------------------------------
def one_path_component(name: str) -> str | None:
    """A run folder's name: one path component, so no run writes outside ``<logdir>/<task>/``."""
    if RUN_NAME.match(name) and name not in (".", ".."):
        return None
    suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "baseline"
    return (f"{name!r} is not one folder name: a run name takes letters, digits, '.', '-' and '_' (no '/'), "
            f"e.g. --run-name {suggestion}")


def tf_config_error(strategy: str) -> str | None:
    """Under ``multi-worker``: whether TF_CONFIG describes this process (its task is one of the cluster's)."""
    if strategy != "multi-worker":
        return None
    raw = os.environ.get("TF_CONFIG")
    example = ('\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\'')
    if not raw:
        return f"{strategy} needs TF_CONFIG, e.g. {example}"
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as error:
        return f"{strategy} reads a TF_CONFIG that is not valid JSON ({error}); fix the environment variable"
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        return f"{strategy} reads a TF_CONFIG without a \"cluster\" and a \"task\"; give both, e.g. {example}"
    kind, index = task.get("type"), task.get("index", 0)
    members = cluster.get(kind)
    if not isinstance(members, list) or not members:
        return (f"{strategy} reads a TF_CONFIG whose task type {kind!r} is not in its cluster "
                f"({', '.join(map(str, cluster))}); set task.type to one of them")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(members):
        return (f"{strategy} reads a TF_CONFIG whose task index {index!r} is beyond its cluster of {len(members)} "
                f"{kind}(s); set task.index to 0-{len(members) - 1} for this process")
    return None


def model_file_error(path: str) -> str | None:
    """An exported model's file: Keras reads ``.h5`` and ``.keras``."""
    if str(path).endswith((".h5", ".keras")):
        return None
    return f"{path} is not an .h5 or .keras model file; e.g. --model models/mnist_cnn.h5"


def missing_model_error(path: str | Path, task: str | None = None) -> str:
    """A model file that is not there, with the shipped models to pass instead (``task``: that task's only)."""
    return f"model {path} does not exist; {_shipped_instead(task)}"


def other_task_model_error(path: str | Path, task: str) -> str | None:
    """A model whose card says another task made it (``mnist_cnn.h5`` given to emotion); None when its card names
    ``task``, or names none. ``path`` as given: a shipped model is found from any folder."""
    try:
        made_by = json.loads(find_model(path).with_suffix(".json").read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(made_by, str) or made_by == task:
        return None
    return f"model {path} was made by `fit {made_by}` (its card says so), not `fit {task}`; {_shipped_instead(task)}"


def _shipped_instead(task: str | None) -> str:
    shipped = shipped_models(task)
    if not shipped:
        return f"train one with `python cli.py fit {task or 'TASK'}` and pass the file it exports"
    return f"pass --model with one of the shipped {f'{task} models' if task else 'models'}: {', '.join(shipped)}"
