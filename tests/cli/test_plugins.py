"""A user's own task from the command line: by import path, by entry point, with its own options."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.tensorboard_events import read_scalars

ROOT = Path(__file__).resolve().parents[2]

# A task in a module of its own, as a user writes it: Keras is imported only when the model is built,
# so `fit my_digits:Digits --help` answers without TensorFlow.
PLUGIN = '''
"""Ten classes from a fixed linear rule on 64 random features."""

from dataclasses import dataclass, field

import numpy as np

from trainer import Task


@dataclass(frozen=True)
class DigitsConfig:
    units: int = field(default=8, metadata={"help": "Hidden units of the classifier."})
    samples: int = field(default=256, metadata={"help": "Training samples."})
    interval: int | float = field(default=1.0, metadata={"help": "Batches (int) or a fraction of an epoch."})


class Digits(Task):
    Config = DigitsConfig
    default_epochs = 2

    def __init__(self, config=None):
        super().__init__(config)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(self.config.samples + 64, 64)).astype("float32")
        y = np.argmax(x @ rng.normal(size=(64, 10)), axis=1)
        self.train, self.val = (x[:-64], y[:-64]), (x[-64:], y[-64:])

    def build_model(self):
        import keras

        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(self.config.units, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def train_data(self):
        return self.train

    def val_data(self):
        return self.val

    def test_data(self):
        return self.val


class Odd(Digits):
    @dataclass(frozen=True)
    class Config:
        weights: dict = None


class Seeded(Digits):
    @dataclass(frozen=True)
    class Config:
        seed: int = 1


not_a_task = 3
'''


def readme_plugin() -> str:
    """The complete plug-in of the README's library section, as a user would save it."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\n# digits.py") + len("```python\n")
    return readme[start:readme.index("```", start)]


def cli(*args, cwd: Path, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def plugin(tmp_path) -> Path:
    """A folder outside the repository holding the user's module."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "my_digits.py").write_text(PLUGIN)
    return folder


def dist_info(site: Path, name: str, entry_points: dict[str, str], summary: str) -> None:
    """A distribution as pip leaves it: a .dist-info folder whose metadata registers trainlab.tasks."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: {summary}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[trainlab.tasks]\n{lines}")


@pytest.mark.slow
def test_the_readme_plugin_trains_checkpoints_resumes_and_logs(tmp_path):
    folder = tmp_path / "work"  # outside the repository: the module is found in the working folder
    folder.mkdir()
    (folder / "digits.py").write_text(readme_plugin())
    args = ("--units", "16", "--run-name", "a", "--progress", "plain")
    first = cli("fit", "digits:Digits", "--max-epochs", "2", *args, cwd=folder)
    assert first.returncode == 0, first.stderr
    assert "[digits] epoch 2/2" in first.stdout and "run folder: logs/digits/a" in first.stdout
    run = folder / "logs/digits/a"
    assert sorted(p.name for p in (run / "checkpoints").glob("state-*.json")) == ["state-1.json", "state-2.json"]
    assert json.loads((run / "config.json").read_text())["task_config"]["units"] == 16

    resumed = cli("fit", "digits:Digits", "--max-epochs", "3", "--resume", *args, cwd=folder)
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1/3" not in resumed.stdout and "[digits] epoch 3/3" in resumed.stdout
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    assert [step for step, _ in read_scalars(run / "train", "epoch_loss")] == [0, 1, 2]

    tested = cli("test", "digits:Digits", "--units", "16", "--checkpoint", run, "--progress", "none", cwd=folder)
    assert tested.returncode == 0, tested.stderr
    assert "test_accuracy: " in tested.stdout
    reported = cli("report", cwd=folder)
    assert reported.returncode == 0
    assert "| digits | [a](digits/a/report.md) |" in (folder / "logs/REPORT.md").read_text()
    assert_one_line_error(cli("fit", "digits:Digits", "--units", "0", cwd=folder), "--units must be at least 1, got 0")


def test_a_plugin_help_shows_its_options_and_the_trainers(plugin):
    result = cli("fit", "my_digits:Digits", "--help", cwd=plugin)
    assert result.returncode == 0, result.stderr
    assert "--units" in result.stdout and "Hidden units of the classifier" in result.stdout
    assert "--interval" in result.stdout
    probe = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
             "sys.argv = ['cli.py', 'fit', 'my_digits:Digits', '--help']\nimport cli\n"
             "try:\n    cli.app()\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)")
    probed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=plugin)
    assert probed.stdout.strip().endswith("False"), probed.stderr  # its module imports Keras only to build
    assert "--max-epochs" in result.stdout and "--depths" not in result.stdout


def test_bad_import_paths_are_one_line_errors(plugin):
    assert_one_line_error(cli("fit", "no_such_module:Digits", cwd=plugin),
                          f"error: task no_such_module:Digits: no module no_such_module in the working folder {plugin} "
                          "or among the installed packages; run from the folder that holds no_such_module.py, or "
                          "install the package that provides it")
    (plugin / "needs_more.py").write_text("import no_such_dependency\n")
    assert_one_line_error(cli("fit", "needs_more:Digits", cwd=plugin),
                          "error: task needs_more:Digits: module needs_more fails to import (ModuleNotFoundError: "
                          "No module named 'no_such_dependency'); install the package that provides no_such_dependency")
    assert_one_line_error(cli("fit", "my_digits:Digitz", cwd=plugin), "module my_digits has no 'Digitz'")
    assert_one_line_error(cli("fit", "my_digits:not_a_task", cwd=plugin), "is a int, not a trainer.Task subclass")
    assert_one_line_error(cli("fit", "my_digits:Odd", cwd=plugin), "field 'weights' of Config has type dict",
                          "command line cannot parse")
    assert_one_line_error(cli("fit", "my_digits:Seeded", cwd=plugin), "option --seed is declared twice, among the "
                          "Trainer options and the my_digits:Seeded options")
    assert_one_line_error(cli("fit", "my_digits:Digits", "--depths", "5", cwd=plugin),
                          "option --depths does not apply to task my_digits:Digits", "takes --units, --samples")


def test_installed_tasks_are_listed_from_their_metadata(plugin, tmp_path):
    site = tmp_path / "site"
    dist_info(site, "digits_plugin", {"digits": "my_digits:Digits"}, "Digits from a plug-in")
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(plugin)])}
    listed = cli("tasks", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["toy", "deep-mlp", "adversarial", "robust", "emotion", "digits"]
    assert lines[-1].split(None, 1)[1] == "Digits from a plug-in"
    helped = cli("fit", "digits", "--help", cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "--units" in helped.stdout


def test_listing_tasks_imports_no_plugin_and_no_tensorflow(tmp_path):
    site = tmp_path / "site"
    dist_info(site, "broken_plugin", {"broken": "module_that_is_not_there:Task"}, "never imported")
    probe = ("import sys; sys.argv = ['cli.py', 'tasks']; import cli\n"
             "try:\n    cli.app()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert "broken" in result.stdout and result.stdout.strip().endswith("[]"), result.stderr


def test_two_tasks_under_one_name_are_an_error(tmp_path):
    site = tmp_path / "site"
    dist_info(site, "one_plugin", {"digits": "one:Digits"}, "one")
    dist_info(site, "other_plugin", {"digits": "other:Digits", "toy": "other:Toy"}, "other")
    env = {"PYTHONPATH": str(site)}
    assert_one_line_error(cli("tasks", cwd=tmp_path, env=env), "two tasks are registered as 'toy'",
                          "tasks.toy.task:ToyTask (built-in)", "other:Toy (other_plugin 1.0)")
    assert_one_line_error(cli("fit", "digits", cwd=tmp_path, env=env), "two tasks are registered as 'digits'",
                          "one:Digits (one_plugin 1.0) and other:Digits (other_plugin 1.0)")


def test_each_task_help_shows_only_its_own_options():
    probe = textwrap.dedent("""
        import sys; sys.argv = ['cli.py', 'fit', 'emotion', '--help']; import cli
        try:
            cli.app()
        except SystemExit:
            pass
        print('tensorflow' in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.stdout.strip().endswith("False"), result.stderr
    assert "--tune-minutes" in result.stdout and "--max-epochs" in result.stdout
    for other in ("--depths", "--epsilon", "--samples", "--retrain"):
        assert other not in result.stdout


# One field added to a plug-in's Config, and no other edit anywhere.
WIDER = '''
from dataclasses import dataclass, field

from my_digits import Digits, DigitsConfig


@dataclass(frozen=True)
class WiderConfig(DigitsConfig):
    dropout: float = field(default=0.25, metadata={"help": "Dropout after the hidden layer.", "min": 0, "below": 1})


class Wider(Digits):
    Config = WiderConfig
'''


@pytest.mark.slow
def test_a_field_added_to_a_plugins_config_is_a_flag_a_file_key_a_printed_line_a_checked_value_and_saved(plugin):
    (plugin / "my_wider.py").write_text(WIDER)
    task = "my_wider:Wider"
    helped = cli("fit", task, "--help", cwd=plugin, env={"COLUMNS": "200"})  # 1. a flag, with its help and default
    assert helped.returncode == 0, helped.stderr
    assert re.search(r"--dropout <float> +Dropout after the hidden layer\. \[default: 0\.25\]", helped.stdout)

    (plugin / "mine.yaml").write_text(f"{task}:\n  dropout: 0.4\n")  # 2. a config-file key, 3. a printed line
    printed = cli("fit", task, "--config", "mine.yaml", "--print-config", cwd=plugin)
    assert printed.returncode == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)[task] == {"units": 8, "samples": 256, "interval": 1.0, "dropout": 0.4}

    # 4. a checked value, from a flag and from a file alike
    assert_one_line_error(cli("fit", task, "--dropout", "1", cwd=plugin),
                          "error: --dropout must be at least 0 and below 1, got 1.0; e.g. --dropout 0.25")
    assert_one_line_error(cli("fit", task, "--dropout", "half", cwd=plugin),
                          "error: --dropout 'half' is not a number; e.g. --dropout 0.25")
    (plugin / "bad.yaml").write_text(f"{task}:\n  dropout: -0.5\n")
    assert_one_line_error(cli("fit", task, "--config", "bad.yaml", cwd=plugin),
                          f"error: bad.yaml: {task}.dropout: --dropout must be at least 0 and below 1, got -0.5")

    trained = cli("fit", task, "--dropout", "0.5", "--max-epochs", "1", "--run-name", "a", "--progress", "none",
                  cwd=plugin)
    assert trained.returncode == 0, trained.stderr
    run = plugin / "logs/wider/a"  # 5. the run's config.yaml, and the task it built
    assert yaml.safe_load((run / "config.yaml").read_text())[task]["dropout"] == 0.5
    assert json.loads((run / "config.json").read_text())["task_config"]["dropout"] == 0.5
