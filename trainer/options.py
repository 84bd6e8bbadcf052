"""A Config dataclass's fields as options: each option is declared once, as a field, and read by one converter.

A field ``name: type = field(default=..., metadata={"help": "...", "min": 1})`` is the option ``--name``
(underscores written as dashes) with that type, default, help and range, and the key ``name`` of a
``--config`` file. ``int``, ``float``, ``int | float`` ("2" an int, "0.5" a float), ``str``, ``bool``
(``--name/--no-name``) and ``Path``; a ``Literal`` of strings (or ``metadata={"choices": (...)}``) as a
choice; a ``tuple`` of int, float or str, written comma-separated (``--depths 5,20,40``) or as a YAML
list; and any of these ``| None``, where None means "not given".

``Option.parse`` is the one converter: the text of a flag and a value of a YAML file go through it alike
(a YAML ``precision: 32`` is the text "32", ``learning_rate: 1`` the number 1.0). Ranges and choices are
not checked here but by ``trainer.validation``, once, where the Config is built.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError

SCALARS = (int, float, str, bool, Path)


class NUMBER:  # noqa: N801 (a marker type, named like the builtins it stands for)
    """The kind of an ``int | float`` field, whose text parses as whichever fits ("2" the int, "0.5" the float)."""

LIST_ITEMS = (int, float, str)
# What a value of each kind is called: one value, a comma list of them, and help's metavar.
KIND_WORDS = {int: ("a whole number", "whole numbers", "int"), float: ("a number", "numbers", "float"),
              NUMBER: ("a number", "numbers", "number"), str: ("text", "words", "str"),
              bool: ("true or false", "true or false", "bool"), Path: ("a path", "paths", "path")}
TRUE, FALSE = ("true", "yes", "on"), ("false", "no", "off")  # as YAML writes them
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
    metadata: Any = dataclasses.field(default_factory=dict, compare=False)  # the field's metadata: its range

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    @property
    def expected(self) -> str:
        """What the option takes, in words: "a whole number", "a list of numbers", "one of auto, min, max"."""
        if self.choices:
            return f"{'a list of ' if self.many else ''}one of {', '.join(self.choices)}"
        one, many, _ = KIND_WORDS[self.kind]
        return f"comma-separated {many}" if self.many else one

    @property
    def metavar(self) -> str:
        """The value as help shows it, in typer's style: ``<auto|min|max>``, ``<int>``, ``<int,...>``."""
        word = "|".join(self.choices) if self.choices else KIND_WORDS[self.kind][2]
        return f"<{word},...>" if self.many else f"<{word}>"

    def example(self) -> Any:
        """A value the option takes, for a message: the default where it shows one, else a typical value."""
        if self.many:
            return ",".join(map(str, self.default)) if self.default else {int: "5,20", float: "0.1,0.2"}.get(
                self.kind, "a,b")
        if self.choices:
            return self.default if self.default in self.choices else self.choices[0]
        if isinstance(self.default, (int, float)) and not isinstance(self.default, bool) and self.default:
            return self.default
        return {int: 10, float: 0.01, NUMBER: 1}.get(self.kind)

    def parse(self, value: Any) -> Any:
        """The field's value from a flag's text or a config file's value (``--depths 5,20`` and ``depths: [5,
        20]`` alike); a value the field's type cannot take is one UserError naming the option and an example."""
        if value is None:
            if self.optional:
                return None
            raise UserError(f"{self.flag} cannot be null; give {self.expected} or leave the key out")
        if not self.many:
            return self._parse_one(value, value)
        items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise UserError(self._refused(value))
        return tuple(self._parse_one(item, value) for item in items)

    def _parse_one(self, value: Any, whole: Any) -> Any:
        kind, is_bool = self.kind, isinstance(value, bool)
        if kind is bool and (is_bool or isinstance(value, str) and value.lower() in (*TRUE, *FALSE)):
            return value if is_bool else value.lower() in TRUE
        if kind is str and isinstance(value, (str, int, float)) and not is_bool:
            return str(value)
        if kind is Path and isinstance(value, (str, Path)):
            return Path(value)
        if kind in (int, float, NUMBER) and not is_bool:
            for number in (int, float) if kind is NUMBER else (kind,):
                if isinstance(value, str):
                    try:
                        return number(value.strip())
                    except ValueError:
                        continue
                if isinstance(value, int) or (number is float and isinstance(value, float)):
                    return number(value)
        raise UserError(self._refused(whole))

    def _refused(self, value: Any) -> str:
        example = self.example()
        fix = f"; e.g. {self.flag} {example}" if example is not None else f"; give {self.expected}"
        return f"{self.flag} {value!r} is not {self.expected}{fix}"

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
    return list(_options_of(config, owner))


@functools.cache  # a Config's fields are read once: every Config checks its values when it is built
def _options_of(config: type, owner: str) -> tuple[Option, ...]:
    if not dataclasses.is_dataclass(config):
        raise UserError(f"{owner}: Config {config!r} is not a dataclass; declare it with @dataclass(frozen=True)")
    try:
        hints = typing.get_type_hints(config)
    except Exception as error:  # a name only imported under TYPE_CHECKING, a typo in an annotation
        raise UserError(f"{owner}: the field types of {config.__name__} do not resolve ({error}); "
                        "import every type the fields name at module level") from None
    return tuple(_option(f, hints[f.name], owner, config.__name__) for f in dataclasses.fields(config) if f.init)


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
                  f.metadata.get("show_default"), f.metadata)


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
            return args[0], True, optional, tuple(choices) if choices else None
        return None, True, optional, None
    if hint in SCALARS:
        return hint, False, optional, tuple(choices) if choices else None
    return None, False, optional, None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else str(hint).replace("typing.", "")
