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
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli_config import CONFIG_PANEL, ConfigFileOptions, file_sections, options_yaml
from cli_help import HelpCommand
from common.errors import UserError
from common.stderr import tensorflow_start_up_hidden
from trainer.options import NUMBER, options_of
from trainer.validation import check_fields

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
    """Reads TASK, then parses the rest with a command made for that task; help and usage errors exit here."""
    from tasks import find_task
    from trainer import TrainerConfig

    command = COMMANDS[verb]
    own, trainer_fields = command.own, command.trainer_fields
    trainer = [o for o in options_of(TrainerConfig, "TrainerConfig")
               if trainer_fields is None or o.name in trainer_fields]
    shared = {CONFIG_PANEL: options_of(ConfigFileOptions, verb), TRAINER_PANEL: trainer + options_of(own, verb)}
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
    values = _invoke(_task_command(summary, groups), args[1:], f"{ctx.command_path} {args[0]}", spec.name, task_options,
                     every)
    parsed = {panel: {o.name: convert(o, values[o.name]) for o in options if o.name in values}
              for panel, options in groups.items()}
    for config_class, given in ((TrainerConfig, parsed[TRAINER_PANEL]), (config, parsed[f"{spec.name} options"])):
        _check_given(config_class, given)
    own_names = {o.name for o in options_of(own, verb)}
    trainer_given = {k: v for k, v in parsed[TRAINER_PANEL].items() if k not in own_names}
    own_given = {k: v for k, v in parsed[TRAINER_PANEL].items() if k in own_names}
    task_given, source = parsed[f"{spec.name} options"], parsed[CONFIG_PANEL]
    if source.get("config") is not None:
        from trainer.config_file import read_config_file

        sections = file_sections(spec.name, trainer, config, task_options, own, options_of(own, verb),
                                 [c.own for c in COMMANDS.values()])
        read = read_config_file(source["config"], sections)
        trainer_given, task_given = {**read["trainer"], **trainer_given}, {**read[spec.name], **task_given}
        own_given = {**read[None], **own_given}
    _check_given(own, own_given)
    return ParsedTaskCommand(spec, trainer_given, own_given, task_given, verb, source.get("print_config", False))


def _check_given(config_class: type | None, given: dict) -> None:
    """Builds the Config from what was given, so that every range (metadata and ``__post_init__``) holds before
    TensorFlow is imported or anything trains; a plug-in's Config is checked by the same metadata."""
    if config_class is None:
        return
    names = {f.name for f in dataclasses.fields(config_class)}
    check_fields(config_class(**{k: v for k, v in given.items() if k in names and v is not None}))


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
    """The typer declaration of one derived option: comma lists are read as text, choices as a str Enum."""
    kind, default = option.kind, option.default
    if option.many or option.kind is NUMBER:  # read as text, parsed by the option itself
        kind, default = str, None
    elif option.choices:
        kind = Enum(option.flag, [(choice, choice) for choice in option.choices], type=str)
        default = None if default is None else kind(default)
    annotation = kind if kind is bool else kind | None
    shown = option.show_default() if option.default_text or option.many or option.kind is NUMBER else True
    info = typer.Option(help=option.help, rich_help_panel=panel, show_default=shown)
    if kind is bool:
        default = bool(default)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, info])


def convert(option, value):
    if option.many and value is not None:
        return option.parse_list(value)
    if option.kind is NUMBER and value is not None:
        return option.parse_number(value)
    return value.value if isinstance(value, Enum) else value


def _invoke(command, args: list[str], prog: str, task: str | None = None, task_options=(), options=None) -> dict:
    """Parses ``args`` with ``command``: a usage error becomes a UserError, help exits."""
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click_errors.NoSuchOption as error:
        raise UserError(_no_such_option(error, command, task, task_options, prog)) from None
    except click_errors.BadOptionUsage as error:  # a flag given last, without its value
        raise UserError(_no_value(error.option_name, options, prog)) from None
    except click_errors.BadParameter as error:
        option = (options or {}).get(getattr(error.param, "name", None))
        if option is None:
            raise UserError(" ".join(error.format_message().split())) from None
        raise UserError(_bad_value(option, _given_text(args, error.param.opts))) from None
    except click_errors.UsageError as error:
        raise UserError(" ".join(error.format_message().split())) from None
    if not isinstance(result, dict):  # --help printed the help
        raise typer.Exit(result or 0)
    return result


def _bad_value(option, text: str) -> str:
    """A value the option's type refuses, quoted, with what it takes and an example."""
    if option.choices:
        close = difflib.get_close_matches(text, option.choices, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{option.flag} {text!r} is unknown{hint}; use one of {', '.join(option.choices)}"
    words = {int: "a whole number", float: "a number"}.get(option.kind, f"a {option.kind.__name__}")
    return f"{option.flag} {text!r} is not {words}; e.g. {option.flag} {_example(option)}"


def _no_value(flag: str, options, prog: str) -> str:
    """A flag given last, without its value."""
    option = next((o for o in (options or {}).values() if o.flag == flag), None)
    if option is None or not (option.choices or option.kind in (int, float)):
        return f"option {flag} needs a value; see {prog} --help"
    return f"option {flag} needs a value; e.g. {flag} {_example(option)}"


def _example(option):
    """A value the option takes: its first choice, its default when a number, else a typical number."""
    if option.choices:
        return option.choices[0]
    if isinstance(option.default, (int, float)) and not isinstance(option.default, bool) and option.default:
        return option.default
    return {int: 10, float: 0.01}.get(option.kind, 1)


def _given_text(args: list[str], flags) -> str:
    """The text given to one of ``flags`` (the last, as click reads it): ``--flag value`` or ``--flag=value``."""
    given = ""
    for index, arg in enumerate(args):
        for flag in flags:
            if arg == flag and index + 1 < len(args):
                given = args[index + 1]
            elif arg.startswith(flag + "="):
                given = arg[len(flag) + 1:]
    return given


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
