"""The task commands' options as YAML, as LightningCLI has them: ``--config FILE``, ``--print-config`` and
the ``config.yaml`` each run folder keeps, which ``--config`` reads back to rerun the run.

The file format and its checks are ``trainer.config_file``'s; this module is what the command line adds:
its two options, the callback that saves the file, and which keys each command reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from trainer import Callback

CONFIG_PANEL = "Configuration file"


@dataclass(frozen=True)
class ConfigFileOptions:
    """Where a task command's options come from, and whether it only shows them: options of no run."""

    config: Path | None = field(default=None, metadata={
        "help": "Read options from this YAML file (a trainer: section, a section named after the task, this "
                "command's own options at the top), as --print-config prints and each run folder keeps in "
                "config.yaml; flags override it."})
    print_config: bool = field(default=False, metadata={
        "help": "Print the resolved options as YAML, a file for --config, and exit."})


class SaveConfig(Callback):
    """Writes the run's options to ``<run>/config.yaml`` when its first fit or test begins, as LightningCLI's
    SaveConfigCallback does. ``folder`` is the run's own folder, so the models of a study (spawned Trainers
    in sub-folders) leave one file there: a rerun of the whole study."""

    def __init__(self, folder: Path, text: str) -> None:
        self.folder, self.text = Path(folder), text

    @property
    def state_key(self) -> str:
        return "SaveConfig"  # its text is no state to resume

    def setup(self, trainer, task, stage: str) -> None:
        if trainer.is_chief:
            save_config(self.folder, self.text)


def save_config(folder: Path, text: str) -> None:
    from common.files import write_atomic

    path = Path(folder) / "config.yaml"
    if not (path.exists() and path.read_text() == text):  # a study's models start one by one
        write_atomic(path, text)


def options_yaml(verb: str, task: str, trainer: dict, task_config, own, folder: Path | None = None) -> str:
    """YAML of a command's resolved options; with ``folder``, headed by the command that reruns that run."""
    from trainer.config_file import config_values, config_yaml

    header = ""
    if folder is not None:
        header = (f"# The options of the run {folder}; rerun it, into a new run folder, with\n"
                  f"#   python cli.py {verb} {task} --config {Path(folder) / 'config.yaml'}\n")
    return config_yaml({"trainer": trainer, task: config_values(task_config), None: config_values(own)}, header)


def file_sections(task: str, trainer_options: list, task_options: list, own_options: list,
                  every_command: list[type]) -> list:
    """What a --config file holds for one command; keys that another command reads are skipped, not refused."""
    from trainer import TrainerConfig
    from trainer.config_file import Section

    every_own = frozenset(f.name for options in every_command for f in dataclasses.fields(options))
    every_trainer = frozenset(f.name for f in dataclasses.fields(TrainerConfig))
    return [Section("trainer", tuple(trainer_options), every_trainer), Section(task, tuple(task_options)),
            Section(None, tuple(own_options), every_own)]
