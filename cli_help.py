"""How the command line speaks of itself: help pages that show every option name whole at any width (80
columns and pipes included), and usage errors (an unknown command or option, an option without its value)
as one line, as every other error is.

Typer's rich help lays options out in a six-column table, which at 80 columns cuts names such as
``--limit-train-batches`` to ``--limit-train-ba…``. These pages keep its panels and colours but use
click's layout: the option (with its value type) beside its description where both fit, the
description on the lines below where the name is too long. Names and help come from click's public
``get_help_record``, so whatever typer declares shows as it parses.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys

import typer
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup

try:  # typer >= 0.2x carries its own click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors

# The description gets at least this many columns beside a name; a longer name puts it below.
MIN_DESCRIPTION = 36
NAME_STYLE, DEFAULT_STYLE, BORDER_STYLE = "bold cyan", "dim", "dim"
# get_help_record's help ends in "  [default: 42]" (or "[required]", "[env var: ...]").
EXTRA = re.compile(r"^(?P<help>.*?)\s*(?P<extra>\[[^\[\]]*\])?$", re.DOTALL)


class HelpCommand(TyperCommand):
    """A typer command whose ``--help`` prints whole option names (``render_help``)."""

    def format_help(self, ctx, formatter) -> None:
        render_help(self, ctx)

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click_errors.UsageError as error:  # an option without its value comes without its command
            error.ctx = error.ctx or ctx
            raise


class HelpGroup(TyperGroup):
    """A typer group whose ``--help`` prints whole option and command names (``render_help``), and whose usage
    errors are one line (``error: ...``, exit 2) rather than a usage block and a framed box."""

    def format_help(self, ctx, formatter) -> None:
        render_help(self, ctx)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # an Exit's code, else the command's value
        except click_errors.UsageError as error:
            typer.echo(f"error: {usage_error(error)}", err=True)
            sys.exit(error.exit_code)
        except click_errors.Abort:
            typer.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            commands = self.list_commands(ctx)
            close = difflib.get_close_matches(name, commands, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise click_errors.UsageError(f"command {name!r} is unknown{hint}; the commands are {', '.join(commands)}",
                                          ctx)
        return super().resolve_command(ctx, args)


def usage_error(error) -> str:
    """A usage error in one line, with where to look: an unknown option and what is close, a missing value."""
    see = f"; see {error.ctx.command_path} --help" if error.ctx is not None else ""
    if isinstance(error, click_errors.NoSuchOption):
        close = f" (did you mean {', '.join(error.possibilities)}?)" if error.possibilities else ""
        return f"option {error.option_name} is unknown{close}{see}"
    if isinstance(error, click_errors.BadOptionUsage):
        return f"option {error.option_name} needs a value{see}"
    message = " ".join(error.format_message().split())
    return message if message.startswith("command ") else f"{message}{see}"


def render_help(command, ctx, console: Console | None = None) -> None:
    """Prints usage, the command's help, one panel per help panel of options, and the commands of a group."""
    console = console or Console(highlight=False)
    console.print(Padding(Text(command.get_usage(ctx), style="bold"), 1))
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    if text:
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
        console.print(Padding(Text("\n\n".join(paragraphs)), (0, 1, 1, 1)))
    panels = _panels(command, ctx)
    if hasattr(command, "list_commands"):
        commands = [command.get_command(ctx, name) for name in command.list_commands(ctx)]
        panels["Commands"] = [(c.name, " ".join((c.short_help or c.help or "").split())) for c in commands
                              if c is not None and not c.hidden]
    width = _name_width([name for rows in panels.values() for name, _ in rows], console.width)
    for title, rows in panels.items():
        if rows:
            console.print(Panel(Group(*(_row(name, help, width) for name, help in rows)), title=title,
                                title_align="left", border_style=BORDER_STYLE))


def _panels(command, ctx) -> dict[str, list[tuple[str, str]]]:
    """(name, help) of each visible parameter, by panel: Arguments first, then Options, then the named panels."""
    panels: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        default = "Arguments" if isinstance(param, TyperArgument) else "Options"
        panels.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
    return panels


def _name_width(names: list[str], console_width: int) -> int:
    """The name column: the longest name that still leaves MIN_DESCRIPTION columns (panel borders: 4, gap: 2)."""
    room = console_width - 4 - 2 - MIN_DESCRIPTION
    fitting = [len(name) for name in names if len(name) <= room]
    return max(fitting, default=max(1, room))


def _row(name: str, help_text: str, width: int):
    """One option: name and description side by side, or the name alone on its line and the description below."""
    description = _description(help_text)
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(width=width, no_wrap=True)
    grid.add_column(ratio=1)
    if len(name) <= width:
        grid.add_row(Text(name, style=NAME_STYLE), description)
        return grid
    grid.add_row("", description)
    return Group(Text(name, style=NAME_STYLE, overflow="fold"), grid)


def _description(help_text: str) -> Text:
    match = EXTRA.match(" ".join(help_text.split()))
    text = Text(match["help"])
    if match["extra"]:
        # typer writes a default given in words in parentheses: "[default: (the task's own)]"
        extra = re.sub(r"default: \((.*)\)", r"default: \1", match["extra"])
        text.append((" " if match["help"] else "") + extra, style=DEFAULT_STYLE)
    return text
