"""Each option's range, declared on its Config field beside its default and help, and checked by one function.

    samples: int = field(default=512, metadata={"help": "...", "min": 1})
    learning_rate: float = field(default=1e-2, metadata={"help": "...", "above": 0})
    indices: tuple[int, ...] | None = field(default=None, metadata={"help": "...", "min": 0, "max": 9999})
    run_name: str | None = field(default=None, metadata={"help": "...", "check": one_path_component})
    monitor: str = field(default="val_loss", metadata={"help": "...", "any": "why every value is fine"})

``min`` / ``max`` are inclusive bounds, ``above`` / ``below`` exclusive ones; a bounded float must also
be finite. On a tuple they bound each entry, as ``choices`` (or a ``Literal``) does. ``check`` is a
function of the value that returns None when it is good, else the value, what is wrong with it and how
to fix it ("'a/b' is not one folder name: ..."), which the message puts after the option's flag. A bool
takes either value; any other field declares a range, choices, a check, or ``any`` with the reason every
value is fine (a test walks every built-in field with a bad value, so a field without one fails the
suite). None, an optional field's "not given", always passes. A relation between fields (``--min-lr``
below ``--max-lr``) is the one thing a Config's ``__post_init__`` checks itself.

``check_fields(config)`` applies the ranges to a Config instance; the built-in Configs call it from
``__post_init__``, so a Config built in Python is checked as one built from the command line.
``typed_values(Config, given)`` is how every user value reaches a Config, a flag's text and a config
file's value alike: each through its option's one converter (``Option.parse``), then the Config built
and checked once, with a bad value named where it was given (the flag, or the file and key).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from trainer.options import Option, options_of
from trainer.shipped import find_model, shipped_models

BOUNDS = ("min", "max", "above", "below")
RANGE_KEYS = (*BOUNDS, "choices", "check", "any")
WORDS = {"min": "at least", "above": "above", "max": "at most", "below": "below"}
RUN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class FieldError(UserError):
    """A value out of its field's range; ``field`` names the field, so a caller can say where it was given."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Given:
    """A value as the user gave it: a flag's text (``where`` empty: the message names the flag) or a config
    file's value (``where`` "FILE: section.key", put before the message)."""

    value: Any
    where: str = ""

    def located(self, message: str) -> str:
        return f"{self.where}: {message}" if self.where else message


def typed_values(config: type, given: dict[str, Given], owner: str) -> dict[str, Any]:
    """The given values as ``config``'s fields take them, checked: each through its option's converter, then
    ``config`` built from them (defaults elsewhere) and its ranges checked; a bad value is one UserError
    naming where it was given. ``owner`` names the Config in errors about the Config itself."""
    options = {o.name: o for o in options_of(config, owner)}
    values = {}
    for name, value in given.items():
        try:
            values[name] = options[name].parse(value.value)
        except UserError as error:
            raise UserError(value.located(str(error))) from None
    try:
        check_fields(config(**values))
    except FieldError as error:
        raise UserError(given[error.field].located(str(error)) if error.field in given else str(error)) from None
    except UserError as error:  # a relation between fields, or a plug-in's own __post_init__: find the value
        culprit = next((name for name in values if not _builds(config, {name: values[name]})), None)
        raise UserError(given[culprit].located(str(error)) if culprit else str(error)) from None
    return values


def _builds(config: type, values: dict) -> bool:
    try:
        check_fields(config(**values))
    except UserError:
        return False
    return True


def check_fields(config: Any) -> None:
    """Raises FieldError (one line: the option, the bad value, the fix) for the first field out of its range."""
    for option in options_of(type(config), type(config).__name__):
        message = field_error(option, getattr(config, option.name))
        if message:
            raise FieldError(option.name, message)


def field_error(option: Option, value: Any) -> str | None:
    """What is wrong with ``value`` for the option, in one line; None when it is in range."""
    if value is None or isinstance(value, bool):
        return None
    flag, metadata = option.flag, option.metadata
    many = isinstance(value, tuple)
    for entry in value if many else (value,):
        if option.choices and entry not in option.choices:
            given = f"{_text(value)!r}" + (f" lists {entry!r}, which" if many else "")
            close = difflib.get_close_matches(str(entry), option.choices, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"{flag} {given} is unknown{hint}; use one of {', '.join(map(str, option.choices))}"
        wrong = _bound_error(metadata, entry)
        if wrong:
            got = f"{entry} in {_text(value)}" if many else str(entry)
            return f"{flag} {'entries ' if many else ''}must be {wrong}, got {got}; {_fix(option)}"
    check = metadata.get("check")
    wrong = check(value) if check else None
    return f"{flag} {wrong}" if wrong else None


def has_range(option: Option) -> bool:
    """Whether the option declares which values it takes (a bool, or a Literal's choices, always does)."""
    return option.kind is bool or bool(option.choices) or any(key in option.metadata for key in RANGE_KEYS)


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


def _fix(option: Option) -> str:
    """The field's own fix (metadata ``fix``), else its default as an example."""
    if "fix" in option.metadata:
        return option.metadata["fix"]
    default = option.default
    return f"e.g. {option.flag} {_text(default)}" if default is not None else f"see {option.flag} in --help"


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- checks shared by several Configs -----------------------------------------------------------
def listed_once(values: tuple) -> str | None:
    """A study's list (depths, activations): at least one entry, each once, as each trains one model."""
    if not values:
        return "lists nothing; give at least one entry"
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        return f"{_text(values)!r} repeats {', '.join(repeated)}; list each once"
    return None


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
