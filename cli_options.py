"""What the command line reads: each task command described once (``COMMANDS``), its own options as
Config dataclasses, and the one parser that turns the Configs' fields into typer options, help panels,
``--config`` sections and ``--print-config``. Light: no TensorFlow, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from cli_config import CONFIG_PANEL, ConfigFileOptions, file_sections, options_yaml
from cli_help import HelpCommand
from common.errors import UserError
from common.stderr import tensorflow_start_up_hidden
from trainer.options import options_of
from trainer.validation import Given, typed_values

try:  # typer >= 0.2x carries its own click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors

DATA_DIR_ANY = "a folder without the data set is named by the loader, with where else it looked"
TRAINER_PANEL = "Trainer options"


def _run_folder_error(path: Path) -> str | None:
    if path.is_dir():
        return None
    what = "is a file" if path.exists() else "does not exist"
    return f"{path} {what}; pass a run folder made by `fit`, e.g. --checkpoint logs/toy/<run>"


@dataclass(frozen=True)
class FitOptions:
    """Options of `fit` that belong neither to the Trainer's config nor to the task's."""

    data_dir: Path | None = field(default=None, metadata={
        "help": "Data folder; else $TRAINLAB_DATA, else ~/.keras/datasets.", "any": DATA_DIR_ANY})
    patience: int | None = field(default=None, metadata={
        "help": "Early stopping: epochs without val_loss improvement.", "min": 0, "fix": "e.g. --patience 5"})
    # None: no top-k files (a ModelCheckpoint still keeps the last weights under --weight-averaging).
    save_top_k: int | None = field(default=None, metadata={
        "help": "ModelCheckpoint: keep the K best weight files by --monitor in <run>/checkpoints/top/.", "min": 0,
        "fix": "e.g. --save-top-k 1"})
    monitor: str = field(default="val_loss", metadata={
        "help": "ModelCheckpoint's metric, e.g. val_accuracy.",
        "any": "a metric the task never logs is named, with the ones it logs, after the first validation"})
    monitor_mode: str = field(default="auto", metadata={
        "help": "ModelCheckpoint: min, max, or auto (max for accuracy-like names).", "choices": ("auto", "min", "max")})


@dataclass(frozen=True)
class TestOptions:
    """Options of `test` that belong neither to the Trainer's config nor to the task's."""

    data_dir: Path | None = field(default=None, metadata={
        "help": "Data folder; else $TRAINLAB_DATA, else ~/.keras/datasets.", "any": DATA_DIR_ANY})
    checkpoint: Path | None = field(default=None, metadata={
        "help": "A run folder whose newest checkpoint to load.", "check": _run_folder_error})
    which: str = field(default="last", metadata={
        "help": "With --checkpoint: best (ModelCheckpoint's best file) or last (the last weights).",
        "choices": ("last", "best")})


@dataclass(frozen=True)
class LrFindOptions:
    """Options of `lr-find`: the range of the sweep (LearningRateFinder's arguments) and the data folder."""

    data_dir: Path | None = field(default=None, metadata={
        "help": "Data folder; else $TRAINLAB_DATA, else ~/.keras/datasets.", "any": DATA_DIR_ANY})
    # From far below any rate in use to where every loss diverges; the sweep stops at divergence.
    min_lr: float = field(default=1e-7, metadata={"help": "First rate of the sweep.", "above": 0})
    max_lr: float = field(default=1.0, metadata={"help": "Last rate of the sweep.", "above": 0})
    # fastai's and Lightning's default: enough points for the smoothed curve's steepest fall.
    num_steps: int = field(default=200, metadata={
        "help": "Training steps of the sweep (fewer when the loss diverges).", "min": 10,
        "fix": "fewer points draw no curve; e.g. --num-steps 100"})

    def __post_init__(self) -> None:
        if self.min_lr >= self.max_lr:
            raise UserError(f"the rate range {self.min_lr:g} to {self.max_lr:g} is empty; give --min-lr below "
                            f"--max-lr, e.g. --min-lr 1e-6 --max-lr 1")


@dataclass(frozen=True)
class TaskCommand:
    """One task command, described once: what it does (its help), its own options, and which of the Trainer's
    options it takes (None: every one). Its flags, help panels, --config sections and --print-config all
    come from this and the Configs' fields."""

    verb: str
    purpose: str
    own: type
    trainer_fields: tuple[str, ...] | None = None


# An evaluation or a range test uses only these of the Trainer's options; `fit` takes every TrainerConfig field.
COMMANDS = {command.verb: command for command in (
    TaskCommand("fit", "Train", FitOptions),
    TaskCommand("test", "Evaluate", TestOptions, ("seed", "logdir", "run_name", "progress")),
    TaskCommand("lr-find", "Find a learning rate for", LrFindOptions, ("seed", "logdir", "run_name")),
)}
TASK_COMMAND = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
                "add_help_option": False, "cls": HelpCommand}


@contextlib.contextmanager
def quiet_tensorflow_start():
    """TensorFlow's start-up lines hidden (TRAINLAB_VERBOSE_TF=1 shows them), and its C++ logs for the command."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tensorflow_start_up_hidden():
        yield



def resolved_options_yaml(parsed, trainer_config, task, folder: Path | None = None) -> str:
    """The resolved options of a task command as YAML for --config; with ``folder``, that run folder's config.yaml,
    which has no run name, so that a rerun makes a folder of its own."""
    from trainer.config_file import config_values

    if folder is not None:
        trainer_config = dataclasses.replace(trainer_config, run_name=None, resume=False)
    command = COMMANDS[parsed.verb]
    fields = command.trainer_fields
    trainer = {k: v for k, v in config_values(trainer_config).items() if fields is None or k in fields}
    own = command.own(**parsed.own)
    return options_yaml(parsed.verb, parsed.spec.name, trainer, task.config, own, folder)


@dataclass(frozen=True)
class ParsedTaskCommand:
    """What `fit TASK ...` or `test TASK ...` was given: the options on the command line over those of --config."""

    spec: Any  # tasks.TaskSpec
    trainer: dict
    own: dict  # the command's own options (FitOptions, TestOptions)
    task: dict
    verb: str = "fit"
    print_config: bool = False


def parse_task_command(ctx: typer.Context, verb: str) -> ParsedTaskCommand:
    """Reads TASK, then parses the rest with a command made for that task; help and usage errors exit here.

    Each value, from a flag or from --config (flags win), goes through its field's converter and its Config's
    checks once (``typed_values``), before TensorFlow is imported or anything trains."""
    from tasks import find_task
    from trainer import TrainerConfig

    command = COMMANDS[verb]
    trainer = [o for o in options_of(TrainerConfig, "TrainerConfig")
               if command.trainer_fields is None or o.name in command.trainer_fields]
    own = options_of(command.own, verb)
    shared = {CONFIG_PANEL: options_of(ConfigFileOptions, verb), TRAINER_PANEL: trainer + own}
    args = list(ctx.args)
    if not args or args[0] in ("--help", "-h"):
        _invoke(_task_command(ctx.command.help, shared, task_argument=True), ["--help"], ctx.command_path)
    if args[0].startswith("-"):
        raise UserError(f"give the task first: {verb} TASK [OPTIONS], e.g. {verb} toy {args[0]}")
    spec = find_task(args[0])
    with quiet_tensorflow_start():  # a plug-in's Config comes with its module, which may import TensorFlow
        config = spec.load_config()
    task_options = options_of(config, f"task {spec.name}")
    groups = {**shared, f"{spec.name} options": task_options}
    _check_unique(groups, spec.name)
    summary = f"{command.purpose} the task {spec.name}" + (f": {spec.summary}." if spec.summary else ".")
    every = {o.name: o for options in groups.values() for o in options}
    flags = _invoke(_task_command(summary, groups), args[1:], f"{ctx.command_path} {args[0]}", spec.name,
                    task_options, every)
    source = _values(ConfigFileOptions, verb, shared[CONFIG_PANEL], flags, {})
    read = {}
    if source.get("config") is not None:
        from trainer.config_file import read_config_file

        sections = file_sections(spec.name, trainer, task_options, own, [c.own for c in COMMANDS.values()])
        read = read_config_file(source["config"], sections)
    return ParsedTaskCommand(spec, _values(TrainerConfig, "TrainerConfig", trainer, flags, read.get("trainer", {})),
                             _values(command.own, verb, own, flags, read.get(None, {})),
                             _values(config, f"task {spec.name}", task_options, flags, read.get(spec.name, {})),
                             verb, source.get("print_config", False))


def _values(config: type | None, owner: str, options: list, flags: dict, from_file: dict[str, Given]) -> dict:
    """What one Config is given, a flag over the file's key, each value converted and checked once."""
    if config is None:
        return {}
    names = {o.name for o in options}
    return typed_values(config, {**from_file, **{k: Given(v) for k, v in flags.items() if k in names}}, owner)


def _check_unique(groups: dict, task: str) -> None:
    seen: dict[str, str] = {}
    for panel, options in groups.items():
        for option in options:
            if option.name in seen:
                raise UserError(f"task {task}: option {option.flag} is declared twice, among the {seen[option.name]} "
                                f"and the {panel}; rename one of the two fields")
            seen[option.name] = panel


def _task_command(help_text: str, groups: dict, task_argument: bool = False):
    """A typer command whose options are the groups' options, each group a help panel; it returns what was given."""
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter("typer_context", positional, annotation=typer.Context)]
    if task_argument:
        argument = typer.Argument(metavar="TASK",
                                  help="A task name (`tasks` lists them) or a Task class as module:Class.")
        parameters.append(inspect.Parameter("task", positional, default=None,
                                            annotation=Annotated[str | None, argument]))
    for panel, options in groups.items():
        parameters += [parameter(option, panel) for option in options]

    def command(typer_context: typer.Context, **values) -> dict:
        return {name: value for name, value in values.items()
                if typer_context.get_parameter_source(name).name != "DEFAULT"}

    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = help_text
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    one.command(cls=HelpCommand)(command)
    return typer.main.get_command(one)


def parameter(option, panel: str) -> inspect.Parameter:
    """The typer declaration of one option: a flag pair for a bool, else the text given, which the field's one
    converter reads (``Option.parse``), as it reads the same value from a config file."""
    if option.kind is bool:
        info = typer.Option(help=option.help, rich_help_panel=panel, show_default=True)
        return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=bool(option.default),
                                 annotation=Annotated[bool, info])
    info = typer.Option(help=option.help, rich_help_panel=panel, metavar=option.metavar,
                        show_default=option.show_default() or False)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[str | None, info])


def _invoke(command, args: list[str], prog: str, task: str | None = None, task_options=(), options=None) -> dict:
    """Parses ``args`` with ``command``: a usage error becomes a UserError, help exits."""
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click_errors.NoSuchOption as error:
        raise UserError(_no_such_option(error, command, task, task_options, prog)) from None
    except click_errors.BadOptionUsage as error:  # a flag given last, without its value
        raise UserError(_no_value(error.option_name, options, prog)) from None
    except click_errors.UsageError as error:
        raise UserError(" ".join(error.format_message().split())) from None
    if not isinstance(result, dict):  # --help printed the help
        raise typer.Exit(result or 0)
    return result


def _no_value(flag: str, options, prog: str) -> str:
    """A flag given last, without its value."""
    option = next((o for o in (options or {}).values() if o.flag == flag), None)
    example = option.example() if option is not None else None
    if example is None:
        return f"option {flag} needs a value; see {prog} --help"
    return f"option {flag} needs a value; e.g. {flag} {example}"


def _no_such_option(error, command, task: str | None, task_options, prog: str) -> str:
    """Names the options the task takes; an option of another task "does not apply", a typo gets a suggestion."""
    name = error.option_name
    takes = ", ".join(o.flag for o in task_options) or "no options of its own"
    where = f"; task {task} takes {takes}, and the Trainer's options ({prog} --help)" if task else ""
    if task and name in _other_tasks_flags():
        return f"option {name} does not apply to task {task}{where}"
    flags = [flag for param in command.params for flag in getattr(param, "opts", ())]
    close = difflib.get_close_matches(name, flags, n=3, cutoff=0.8)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"option {name} is unknown{hint}{where}"


def _other_tasks_flags() -> set[str]:
    """The options of the built-in tasks, from their light Config modules."""
    from tasks import BUILT_IN

    return {o.flag for spec in BUILT_IN.values() for o in options_of(spec.load_config(), f"task {spec.name}")}
