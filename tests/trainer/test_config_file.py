"""YAML options: what config_yaml writes, read_config_file reads back, and typed_values types and checks it as it
does a flag's text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from common.errors import UserError
from trainer.config_file import Section, config_values, config_yaml, read_config_file
from trainer.options import options_of
from trainer.validation import typed_values


@dataclass(frozen=True)
class Every:
    count: int = 3
    rate: float | None = None
    name: str = "x"
    enabled: bool = False
    folder: Path | None = None
    mode: Literal["fast", "slow"] = "fast"
    sizes: tuple[int, ...] = (5, 20)
    interval: int | float | None = 1.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise UserError(f"--count must be at least 1, got {self.count}")


@dataclass(frozen=True)
class Own:
    patience: int | None = field(default=None, metadata={"help": "Epochs."})


def sections() -> list[Section]:
    return [Section("every", tuple(options_of(Every, "test"))),
            Section(None, tuple(options_of(Own, "test")), frozenset({"checkpoint"}))]


def read(path) -> dict:
    """The file's values as the command line has them: read, then typed and checked by each section's Config."""
    given = read_config_file(path, sections())
    return {"every": typed_values(Every, given["every"], "test"), None: typed_values(Own, given[None], "test")}


def test_every_kind_reads_back_as_written(tmp_path):
    values = Every(count=7, rate=0.5, name="32", enabled=True, folder=Path("data/x"), mode="slow", sizes=(1, 2),
                   interval=2)
    path = tmp_path / "c.yaml"
    path.write_text(config_yaml({"every": config_values(values), None: {"patience": 4}}, header="# a header\n"))
    values_read = read(path)
    assert Every(**values_read["every"]) == values and values_read[None] == {"patience": 4}
    assert isinstance(values_read["every"]["interval"], int) and isinstance(values_read["every"]["folder"], Path)


def test_loose_yaml_is_read_as_the_field_means_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("every:\n  rate: 1e-3\n  name: 32\n  sizes: 5,6\n  interval: 0.25\ncheckpoint: runs/a\n")
    values_read = read(path)  # YAML reads 1e-3 as text: the converter reads it as a flag's
    assert values_read["every"] == {"rate": 0.001, "name": "32", "sizes": (5, 6), "interval": 0.25}
    assert values_read[None] == {}  # checkpoint: another command's key, skipped


@pytest.mark.parametrize(("text", "message"), [
    # A value is refused in its flag's words (the converter is the flags'), after the file and key.
    ("every:\n  count: true\n", "every.count: --count True is not a whole number; e.g. --count 3"),
    ("every:\n  count: null\n", "every.count: --count cannot be null; give a whole number or leave the key out"),
    ("every:\n  sizes: [1, x]\n", "every.sizes: --sizes [1, 'x'] is not comma-separated whole numbers; "
                                    "e.g. --sizes 5,20"),
    ("every:\n  sizes: 3\n", "every.sizes: --sizes 3 is not comma-separated whole numbers; e.g. --sizes 5,20"),
    ("every:\n  enabled: 1\n", "every.enabled: --enabled 1 is not true or false; give true or false"),
    ("every:\n  mode: medium\n", "every.mode: --mode 'medium' is unknown; use one of fast, slow"),
    ("every:\n  count: 0\n", "every.count: --count must be at least 1, got 0"),
    ("paitence: 3\n", "unknown key paitence (did you mean patience?)"),
])
def test_a_bad_value_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read(path)
    assert str(error.value) == f"{path}: {message}"
