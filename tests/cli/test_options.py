"""Options derived from config dataclasses: every field one option, declared once."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from common.errors import UserError
from tasks import BUILT_IN
from trainer import TrainerConfig
from trainer.options import NUMBER, options_of

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Every:
    count: int = field(default=3, metadata={"help": "A count."})
    rate: float | None = None
    name: str = "x"
    on: bool = False
    folder: Path | None = None
    mode: Literal["fast", "slow"] = "fast"
    level: str = field(default="low", metadata={"choices": ("low", "high")})
    sizes: tuple[int, ...] = (5, 20)
    words: tuple[str, ...] | None = field(default_factory=lambda: ("a", "b"))
    interval: int | float | None = 1.0


def test_each_field_becomes_one_option_with_its_type_default_and_help():
    options = {o.name: o for o in options_of(Every, "test")}
    assert list(options) == [f.name for f in dataclasses.fields(Every)]
    assert (options["count"].kind, options["count"].default, options["count"].help) == (int, 3, "A count.")
    assert options["rate"].optional and options["rate"].kind is float
    assert options["folder"].kind is Path and options["on"].kind is bool
    assert options["mode"].choices == ("fast", "slow") and options["level"].choices == ("low", "high")
    assert options["sizes"].many and options["sizes"].parse("1, 2,3") == options["sizes"].parse([1, 2, 3]) == (1, 2, 3)
    assert options["words"].default == ("a", "b") and options["words"].show_default() == "a,b"
    assert options["sizes"].flag == "--sizes"
    assert options["interval"].kind is NUMBER and options["interval"].optional
    assert [options["interval"].parse(t) for t in ("2", "0.5", 2, 0.5)] == [2, 0.5, 2, 0.5]
    assert isinstance(options["interval"].parse("2"), int)
    # The flag's text and YAML's value go through one converter, and are refused in one wording.
    with pytest.raises(UserError, match="--interval 'x' is not a number; e.g. --interval 1.0"):
        options["interval"].parse("x")


@pytest.mark.parametrize(("name", "flag_text", "yaml_value", "typed"), [
    ("count", "7", 7, 7), ("rate", "1e-3", 0.001, 0.001), ("rate", "1", 1, 1.0), ("name", "32", 32, "32"),
    ("on", "yes", True, True), ("folder", "data/x", "data/x", Path("data/x")), ("mode", "slow", "slow", "slow"),
    ("sizes", "5,20", [5, 20], (5, 20)), ("words", "a", ["a"], ("a",)), ("interval", "0.5", 0.5, 0.5),
])
def test_a_flags_text_and_a_yaml_value_give_the_same_typed_value(name, flag_text, yaml_value, typed):
    option = next(o for o in options_of(Every, "test") if o.name == name)
    assert option.parse(flag_text) == option.parse(yaml_value) == typed
    assert type(option.parse(flag_text)) is type(option.parse(yaml_value)) is type(typed)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("sizes", "5,x", "--sizes '5,x' is not comma-separated whole numbers; e.g. --sizes 5,20"),
    ("count", "1.5", "--count '1.5' is not a whole number; e.g. --count 3"),
    ("count", True, "--count True is not a whole number; e.g. --count 3"),
    ("rate", [1], "--rate [1] is not a number; e.g. --rate 0.01"),
    ("on", "maybe", "--on 'maybe' is not true or false; give true or false"),
])
def test_a_value_its_type_refuses_names_the_option_and_an_example(name, value, message):
    option = next(o for o in options_of(Every, "test") if o.name == name)
    with pytest.raises(UserError) as error:
        option.parse(value)
    assert str(error.value) == message


@pytest.mark.parametrize("annotation", [dict[str, float], list[int], tuple[int, int], int | str, Literal[1, 2]])
def test_a_type_the_command_line_cannot_parse_is_named(annotation):
    config = dataclasses.make_dataclass("Odd", [("weights", annotation, field(default=None))], frozen=True)
    with pytest.raises(UserError, match=r"task odd: field 'weights' of Odd has type .+, which the command line cannot"):
        options_of(config, "task odd")


def test_every_trainer_option_has_help():
    missing = [o.flag for o in options_of(TrainerConfig, "TrainerConfig") if not o.help]
    assert missing == []


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_built_in_configs_are_the_tasks_own_and_every_option_has_help(name):
    spec = BUILT_IN[name]
    assert spec.load_config() is spec.load().Config
    assert [o.flag for o in options_of(spec.load_config(), name) if not o.help] == []


def test_built_in_configs_import_without_tensorflow():
    probe = ("import sys\nfrom tasks import BUILT_IN\n"
             "for spec in BUILT_IN.values(): spec.load_config()\n"
             "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr


def test_deep_mlp_activation_names_match_the_registered_activations():
    from tasks.deep_mlp.activations import ACTIVATIONS
    from tasks.deep_mlp.config import ACTIVATION_NAMES

    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


def test_a_task_without_a_name_is_named_after_its_class():
    from trainer import Task

    class ImageNetSubsetTask(Task):
        pass

    class Digits(Task):
        name = "my-digits"

    assert (ImageNetSubsetTask.name, Digits.name) == ("image-net-subset", "my-digits")


def test_shipped_models_are_found_from_any_folder(tmp_path, monkeypatch):
    from tasks.adversarial.config import AdversarialConfig
    from tasks.emotion.config import EmotionConfig
    from tasks.robust.config import RobustConfig
    from trainer.shipped import find_model

    monkeypatch.chdir(tmp_path)
    assert find_model("models/emotion.h5") == ROOT / "models/emotion.h5"
    assert find_model("models/none.h5") == Path("models/none.h5")
    (tmp_path / "models").mkdir()
    (tmp_path / "models/emotion.h5").write_bytes(b"a user's own")
    assert find_model("models/emotion.h5") == Path("models/emotion.h5")
    assert EmotionConfig(model="models/emotion.h5").model == "models/emotion.h5"
    assert RobustConfig(model="models/mnist_robust.h5").model == str(ROOT / "models/mnist_robust.h5")
    assert AdversarialConfig(model="models/mnist_cnn.h5").model == str(ROOT / "models/mnist_cnn.h5")


def test_each_command_takes_trainer_options_that_exist():
    import cli_options

    names = {f.name for f in dataclasses.fields(TrainerConfig)}
    for command in cli_options.COMMANDS.values():
        assert set(command.trainer_fields or ()) <= names, command.verb
