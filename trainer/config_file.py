"""Options read from and written to YAML, as LightningCLI's ``--config`` and ``--print_config`` do.

A file holds one section per Config dataclass, keyed by its field names: ``trainer:`` for the
Trainer's options, a section named after the task for the task's, and a command's own options
(``patience``, ``checkpoint``...) at the top level, so what ``--print-config`` prints and what a run
folder's ``config.yaml`` holds read back as they were written. Keys that another command reads are
skipped (a run's ``config.yaml`` serves ``test`` and ``lr-find`` too); any other key, or a value its
field cannot take, is one ``UserError`` naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from common.errors import UserError
from trainer.options import NUMBER, WORDS, Option
from trainer.validation import check_fields

KINDS = {int: "an integer", float: "a number", NUMBER: "a number", str: "text", bool: "true or false",
         Path: "a path"}


@dataclass(frozen=True)
class Section:
    """One part of a file: ``key`` None for the top level; its values must build ``config`` when given."""

    key: str | None
    options: tuple[Option, ...]
    config: type | None = None
    skipped: frozenset[str] = frozenset()  # keys another command reads here

    def where(self, name: str) -> str:
        return name if self.key is None else f"{self.key}.{name}"


def read_config_file(path: str | Path, sections: list[Section]) -> dict[str | None, dict[str, Any]]:
    """The values each section of ``path`` gives, by section key, typed as the options parse them."""
    path = Path(path)
    document = _load(path)
    nested = {s.key: s for s in sections if s.key is not None}
    top = next((s for s in sections if s.key is None), Section(None, ()))
    values: dict[str | None, dict[str, Any]] = {s.key: {} for s in sections}
    for key, value in document.items():
        if key in nested:
            if not isinstance(value, dict):
                raise UserError(f"{path}: {key} must be a mapping of option names to values, not {value!r}")
            values[key] = _read_section(path, nested[key], value)
    values[None] = _read_section(path, top, {k: v for k, v in document.items() if k not in nested},
                                 sections=list(nested))
    return values


def config_yaml(sections: dict[str | None, dict[str, Any]], header: str = "") -> str:
    """YAML that ``read_config_file`` reads back: each section a mapping, the top level's keys last."""
    document: dict[str, Any] = {key: _plain(values) for key, values in sections.items() if key is not None}
    document.update(_plain(sections.get(None, {})))
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)


def config_values(config: Any) -> dict[str, Any]:
    """A Config instance's fields as they are (``dataclasses.asdict`` would copy and recurse)."""
    if config is None:
        return {}
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}


def _load(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"--config {path} does not exist; write one with --print-config > {path.name}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise UserError(f"--config {path} cannot be read ({type(error).__name__}); give a YAML file") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise UserError(f"{path} is not valid YAML{at}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise UserError(f"{path} holds a {type(document).__name__}, not a mapping; write a trainer: section, "
                        "a section named after the task, and the command's own options (--print-config shows one)")
    return document


def _read_section(path: Path, section: Section, mapping: dict, sections: list[str] = ()) -> dict[str, Any]:
    options = {o.name: o for o in section.options}
    values = {}
    for key, value in mapping.items():
        key = str(key)
        if key in options:
            values[key] = _value(path, section.where(key), options[key], value)
        elif key not in section.skipped:
            raise UserError(f"{path}: unknown key {section.where(key)}{_suggestion(section, key, sections)}")
    if section.config is not None:
        _check_builds(path, section, values)
    return values


def _suggestion(section: Section, key: str, sections: list[str]) -> str:
    names = [*(o.name for o in section.options), *sections]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.7)
    if close:
        return f" (did you mean {section.where(close[0])}?)"
    where = f"section {section.key}" if section.key else "top level"
    takes = ", ".join(names) if len(names) <= 8 else f"{', '.join(names[:8])}, ..."
    return f"; the {where} takes {takes or 'no keys'} (--print-config prints every key)"


def _value(path: Path, where: str, option: Option, value: Any) -> Any:
    if value is None:
        if option.optional:
            return None
        raise UserError(f"{path}: {where} is null; give {_expected(option)} or leave the key out")
    if option.many:
        if isinstance(value, str):
            try:
                return option.parse_list(value)
            except UserError as error:
                raise UserError(f"{path}: {where}: {error}") from None
        if not isinstance(value, list):
            raise UserError(f"{path}: {where} is {value!r}, not {_expected(option)}")
        return tuple(_scalar(path, f"{where}[{i}]", option, item) for i, item in enumerate(value))
    return _scalar(path, where, option, value)


def _scalar(path: Path, where: str, option: Option, value: Any) -> Any:
    is_bool = isinstance(value, bool)
    number = isinstance(value, (int, float)) and not is_bool
    # `precision: 32` means the text "32"; `learning_rate: 1` the number 1.0.
    accepted = {bool: is_bool, int: isinstance(value, int) and not is_bool, float: number, NUMBER: number,
                str: isinstance(value, str) or number, Path: isinstance(value, str)}
    if not accepted[option.kind]:
        raise UserError(f"{path}: {where} is {value!r}, not {_expected(option, one=True)}")
    # Choices and ranges are the field's, checked once where its Config is built (_check_builds).
    return {float: float, str: str, Path: Path}.get(option.kind, lambda v: v)(value)


def _expected(option: Option, one: bool = False) -> str:
    if option.choices:
        return f"one of {', '.join(option.choices)}"
    if option.many and not one:
        return f"a list of {WORDS[option.kind]}"
    return KINDS[option.kind]


def _check_builds(path: Path, section: Section, values: dict) -> None:
    """Builds the section's Config from the file's values and checks its fields (choices and ranges, as a flag's
    are), so a value out of range names its key here."""
    try:
        check_fields(section.config(**values))
    except UserError as error:
        culprit = next((k for k in values if not _builds(section.config, {k: values[k]})), None)
        where = section.where(culprit) if culprit else f"section {section.key or 'top level'}"
        raise UserError(f"{path}: {where}: {error}") from None


def _builds(config: type, values: dict) -> bool:
    try:
        check_fields(config(**values))
    except UserError:
        return False
    return True


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value
