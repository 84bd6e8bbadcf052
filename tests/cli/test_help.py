"""Help pages at 80 columns, the width of a default terminal and of a pipe: every option name whole."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

import cli
import cli_options
from tasks import BUILT_IN
from trainer import TrainerConfig
from trainer.options import options_of

TRAINER_FIELDS = {verb: command.trainer_fields for verb, command in cli_options.COMMANDS.items()}
OWN_OPTIONS = {verb: command.own for verb, command in cli_options.COMMANDS.items()}


def help_at_80(*args: str) -> str:
    result = CliRunner().invoke(cli.app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    assert "…" not in result.output
    return result.output


def flags(options) -> list[str]:
    names = [o.flag for o in options]
    return names + ["--no-" + o.flag[2:] for o in options if o.kind is bool]


def shown_whole(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def command_options(verb: str, task: str | None) -> list[str]:
    fields = TRAINER_FIELDS[verb]
    trainer = [o for o in options_of(TrainerConfig, "trainer") if fields is None or o.name in fields]
    own = [*options_of(OWN_OPTIONS[verb], verb), *options_of(cli_options.ConfigFileOptions, verb)]
    task_options = options_of(BUILT_IN[task].load_config(), task) if task else []
    return flags([*trainer, *own, *task_options])


@pytest.mark.parametrize("verb", list(TRAINER_FIELDS))
@pytest.mark.parametrize("task", [None, *BUILT_IN])
def test_a_task_command_shows_every_option_of_its_configs_whole(verb, task):
    text = help_at_80(verb, *([task] if task else []))
    expected = command_options(verb, task)
    assert [flag for flag in expected if not shown_whole(flag, text)] == []
    assert "--gradient-clip-val" in text if verb == "fit" else "--gradient-clip-val" not in text


def test_the_top_level_and_live_show_every_command_and_option_whole():
    group = typer.main.get_command(cli.app)
    top = help_at_80()
    assert [name for name in group.commands if not shown_whole(name, top)] == []
    live = help_at_80("live")
    declared = [opt for param in group.commands["live"].params for opt in (*param.opts, *param.secondary_opts)]
    assert len(declared) > 5 and [flag for flag in declared if not shown_whole(flag, live)] == []


def test_a_description_beside_a_short_name_starts_on_its_line_and_below_a_long_one():
    text = help_at_80("fit", "toy")
    assert re.search(r"--seed <int>\s+Seeds Python", text)
    strategy = next(line for line in text.splitlines() if "--strategy" in line)
    assert "tf.distribute" not in strategy  # the name and its choices fill the line; the help follows below
    assert re.search(r"--strategy <default\|mirrored\|multi-worker>\s*│\n│\s+tf.distribute strategy", text)
