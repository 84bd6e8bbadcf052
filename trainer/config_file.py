"""Options read from and written to YAML, as LightningCLI's ``--config`` and ``--print_config`` do.

A file holds one section per Config dataclass, keyed by its field names: ``trainer:`` for the
Trainer's options, a section named after the task for the task's, and a command's own options
(``patience``, ``checkpoint``...) at the top level, so what ``--print-config`` prints and what a run
folder's ``config.yaml`` holds read back as they were written. Keys that another command reads are
skipped (a run's ``config.yaml`` serves ``test`` and ``lr-find`` too); any other key is one ``UserError``
naming the key and the file. The values are read as the file has them and typed where the flags' are,
by ``trainer.validation.typed_values``, so a value and its flag's text go through one converter and one
check, and a bad one is named by its file and key.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.errors import UserError
from trainer.options import Option
from trainer.validation import Given


@dataclass(frozen=True)
class Section:
    """One part of a file: ``key`` None for the top level; it takes the keys of ``options``."""

    key: str | None
    options: tuple[Option, ...]
    skipped: frozenset[str] = frozenset()  # keys another command reads here

    def where(self, name: str) -> str:
        return name if self.key is None else f"{self.key}.{name}"


def read_config_file(path: str | Path, sections: list[Section]) -> dict[str | None, dict[str, Given]]:
    """The values each section of ``path`` gives, by section key, each with the file and key it came from."""
    path = Path(path)
    document = _load(path)
    nested = {s.key: s for s in sections if s.key is not None}
    top = next((s for s in sections if s.key is None), Section(None, ()))
    values: dict[str | None, dict[str, Given]] = {s.key: {} for s in sections}
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


def _read_section(path: Path, section: Section, mapping: dict, sections: list[str] = ()) -> dict[str, Given]:
    names = {o.name for o in section.options}
    values = {}
    for key, value in mapping.items():
        key = str(key)
        if key in names:
            values[key] = Given(value, f"{path}: {section.where(key)}")
        elif key not in section.skipped:
            raise UserError(f"{path}: unknown key {section.where(key)}{_suggestion(section, key, sections)}")
    return values


def _suggestion(section: Section, key: str, sections: list[str]) -> str:
    names = [*(o.name for o in section.options), *sections]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.7)
    if close:
        return f" (did you mean {section.where(close[0])}?)"
    where = f"section {section.key}" if section.key else "top level"
    takes = ", ".join(names) if len(names) <= 8 else f"{', '.join(names[:8])}, ..."
    return f"; the {where} takes {takes or 'no keys'} (--print-config prints every key)"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
