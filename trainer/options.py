"""Command-line options read from a configuration dataclass: each option is declared once, as a field.

A field ``name: type = field(default=..., metadata={"help": "..."})`` becomes the option ``--name``
(underscores written as dashes) with that type, default and help. The command line parses ``int``,
``float``, ``int | float`` ("2" an int, "0.5" a float), ``str``, ``bool`` (``--name/--no-name``) and
``Path``; a ``Literal`` of strings (or ``metadata={"choices": (...)}``) as a choice; a ``tuple`` of
int, float or str written comma-separated (``--depths 5,20,40``); and any of these ``| None``, where
None means "not given".
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError

SCALARS = (int, float, str, bool, Path)


class NUMBER:  # noqa: N801 (a marker type, named like the builtins it stands for)
    """The kind of an ``int | float`` field, whose text parses as whichever fits (``Option.parse_number``)."""

LIST_ITEMS = (int, float, str)
WORDS = {int: "integers", float: "numbers", str: "words"}
PARSABLE = ("int, float, int | float, str, bool, Path, a Literal of strings, a tuple[int | float | str, ...], "
            "or any of them | None")


def flag_of(name: str) -> str:
    """A field's command-line spelling: ``max_epochs`` is ``--max-epochs``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Option:
    """One command-line option: what the field ``name`` parses as, its default and its help."""

    name: str
    kind: type  # int, float, str, bool, Path, or NUMBER (int | float): what one value parses as
    many: bool  # a tuple of ``kind``, written comma-separated
    optional: bool  # the field takes None
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    default_text: str | None = None  # metadata "show_default": the default in words, e.g. "the task's own"

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    def parse_list(self, text: str) -> tuple:
        """``"5,20,40"`` as ``(5, 20, 40)``; a bad item names the option and an example."""
        try:
            return tuple(self.kind(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            example = ",".join(map(str, self.default)) if self.default else "5,20"
            raise UserError(f"{self.flag} {text!r} must be comma-separated {WORDS[self.kind]}, "
                            f"e.g. {self.flag} {example}") from None

    def parse_number(self, text: str) -> int | float:
        """An ``int | float`` field's value: "2" is the int 2 and "0.5" the float 0.5, which such fields tell apart."""
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        raise UserError(f"{self.flag} {text!r} must be a number, e.g. {self.flag} {self.default or 1}")

    def show_default(self) -> str | None:
        """The default as help shows it; None when there is none to show."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return None
        if self.many:
            return ",".join(map(str, self.default))
        return str(self.default)


def options_of(config: type | None, owner: str) -> list[Option]:
    """The options of a config dataclass, in field order; ``owner`` names it in errors ("task emotion")."""
    if config is None:
        return []
    if not dataclasses.is_dataclass(config):
        raise UserError(f"{owner}: Config {config!r} is not a dataclass; declare it with @dataclass(frozen=True)")
    try:
        hints = typing.get_type_hints(config)
    except Exception as error:  # a name only imported under TYPE_CHECKING, a typo in an annotation
        raise UserError(f"{owner}: the field types of {config.__name__} do not resolve ({error}); "
                        "import every type the fields name at module level") from None
    return [_option(f, hints[f.name], owner, config.__name__) for f in dataclasses.fields(config) if f.init]


def _option(f: dataclasses.Field, hint: Any, owner: str, config_name: str) -> Option:
    kind, many, optional, choices = _analyse(hint, f.metadata.get("choices"))
    if kind is None:
        raise UserError(f"{owner}: field {f.name!r} of {config_name} has type {_type_name(hint)}, which the command "
                        f"line cannot parse; use {PARSABLE}")
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = None
    return Option(f.name, kind, many, optional, default, f.metadata.get("help", ""), choices,
                  f.metadata.get("show_default"))


def _analyse(hint: Any, choices: Any) -> tuple[type | None, bool, bool, tuple[str, ...] | None]:
    """(kind, many, optional, choices) of a type hint; kind None when the command line cannot parse it."""
    args = typing.get_args(hint)
    optional = _is_union(hint) and type(None) in args
    rest = [a for a in args if a is not type(None)] if _is_union(hint) else [hint]
    if set(rest) == {int, float}:
        return NUMBER, False, optional, None
    if optional:
        if len(rest) != 1:
            return None, False, True, None
        hint, args = rest[0], typing.get_args(rest[0])
    if typing.get_origin(hint) is typing.Literal:
        if not all(isinstance(a, str) for a in args):
            return None, False, optional, None
        return str, False, optional, tuple(args)
    if typing.get_origin(hint) is tuple:
        if len(args) == 2 and args[1] is Ellipsis and args[0] in LIST_ITEMS:
            return args[0], True, optional, None
        return None, True, optional, None
    if hint in SCALARS:
        return hint, False, optional, tuple(choices) if choices else None
    return None, False, optional, None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else str(hint).replace("typing.", "")
