"""Every option of every built-in Config refuses a value out of its range: one line, exit 2, before anything runs.

The bad values come from each field's own range metadata (trainer/validation.py), so a new field that
declares no range fails ``test_every_field_declares_its_range``, and one whose range is not enforced
fails the walk.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
from typer.testing import CliRunner

import cli
import cli_options
from live.config import LiveConfig
from tasks import BUILT_IN
from trainer import TrainerConfig
from trainer.config import _max_time_error, _swa_start_error, _val_interval_error
from trainer.options import options_of
from trainer.validation import (
    BOUNDS,
    check_fields,
    has_range,
    listed_once,
    model_file_error,
    one_path_component,
    tf_config_error,
)

# A value each check function refuses (TF_CONFIG is unset during the walk).
CHECK_REFUSES = {
    one_path_component: "../escape",
    tf_config_error: "multi-worker",
    _max_time_error: "2:00",
    _swa_start_error: "-1",
    _val_interval_error: "1.5",
    model_file_error: "model.txt",
    cli_options._run_folder_error: "/no/such/run-folder",
    listed_once: None,  # the default's first entry again: a repeat
}
# (command, task, Config): which command line reaches each Config's fields (live takes no task).
CONFIGS = [("fit", "toy", TrainerConfig), ("fit", "toy", cli_options.FitOptions),
           ("test", "toy", cli_options.TestOptions), ("lr-find", "toy", cli_options.LrFindOptions),
           *[("fit", name, spec.load_config()) for name, spec in BUILT_IN.items()], ("live", None, LiveConfig)]


def _kind(config: type, f: dataclasses.Field) -> type:
    hint = typing.get_type_hints(config)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return typing.get_args(args[0])[0] if typing.get_origin(args[0]) is tuple else args[0]


def bad_values(config: type, f: dataclasses.Field) -> list[str]:
    """Values outside the field's declared range, as a user types them."""
    metadata, kind, values = f.metadata, _kind(config, f), []
    if "choices" in metadata:
        values.append("no-such-choice")
    offsets = {"min": -1, "above": 0, "max": 1, "below": 0}
    values += [kind(metadata[key] + offsets[key]) for key in BOUNDS if key in metadata]
    if kind is float and any(key in metadata for key in BOUNDS):
        values.append(math.nan)
    default = f.default if isinstance(f.default, tuple) else ()
    if "check" in metadata:
        refused = CHECK_REFUSES[metadata["check"]]  # a new check needs a value it refuses here
        values.append(default[0] if refused is None else refused)
    return [",".join(map(str, (*default[:1], value))) if default else str(value) for value in values]


def walk() -> list:
    cases = []
    for command, task, config in CONFIGS:
        for f in dataclasses.fields(config):
            values, named = bad_values(config, f), True
            for value in values:
                flag = "--" + f.name.replace("_", "-")
                cases.append(pytest.param(command, task, flag, value, named,
                                          id=f"{config.__name__}.{f.name}={value}"))
    return cases


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fails a command that gets past its options: TensorFlow is imported only after every check."""
    def refuse():
        raise AssertionError("a bad value got past the option checks")

    monkeypatch.setattr(cli, "_quiet_tensorflow", refuse)
    monkeypatch.delenv("TF_CONFIG", raising=False)


@pytest.mark.parametrize("config", [c for _, _, c in CONFIGS], ids=[c.__name__ for _, _, c in CONFIGS])
def test_every_field_declares_its_range(config):
    missing = sorted(o.name for o in options_of(config, config.__name__) if not has_range(o))
    assert missing == [], f"{config.__name__}: declare a range (min, max, above, below, choices, check or any)"


@pytest.mark.parametrize(("command", "task", "flag", "value", "named"), walk())
def test_a_bad_value_of_every_field_is_one_line_and_exit_2(command, task, flag, value, named, nothing_runs):
    result = CliRunner().invoke(cli.app, [command, *([task] if task else []), flag, value])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert flag in lines[0] or not named, lines[0]


@pytest.mark.parametrize("config", [c for _, _, c in CONFIGS], ids=[c.__name__ for _, _, c in CONFIGS])
def test_the_defaults_are_in_range(config):
    check_fields(config())


def test_a_plugins_config_is_checked_by_the_same_metadata(tmp_path, monkeypatch, nothing_runs):
    (tmp_path / "ranged_plugin.py").write_text(
        "from dataclasses import dataclass, field\n"
        "from trainer import Task\n\n\n"
        "@dataclass(frozen=True)\n"
        "class RangedConfig:\n"
        "    units: int = field(default=8, metadata={'help': 'Hidden units.', 'min': 1})\n"
        "    rate: float = field(default=0.1, metadata={'help': 'A rate.', 'above': 0, 'below': 1})\n\n\n"
        "class Ranged(Task):\n"
        "    Config = RangedConfig\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for args, message in [(("--units", "0"), "error: --units must be at least 1, got 0; e.g. --units 8"),
                          (("--rate", "1"), "error: --rate must be between 0 and 1, got 1.0; e.g. --rate 0.1")]:
        result = CliRunner().invoke(cli.app, ["fit", "ranged_plugin:Ranged", *args])
        assert (result.exit_code, result.stderr.strip()) == (2, message)
