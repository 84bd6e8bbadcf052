"""YAML options: what config_yaml writes, read_config_file reads back as the options parse it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from common.errors import UserError
from trainer.config_file import Section, config_values, config_yaml, read_config_file
from trainer.options import options_of


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
    return [Section("every", tuple(options_of(Every, "test")), Every),
            Section(None, tuple(options_of(Own, "test")), Own, frozenset({"checkpoint"}))]


def test_every_kind_reads_back_as_written(tmp_path):
    values = Every(count=7, rate=0.5, name="32", enabled=True, folder=Path("data/x"), mode="slow", sizes=(1, 2),
                   interval=2)
    path = tmp_path / "c.yaml"
    path.write_text(config_yaml({"every": config_values(values), None: {"patience": 4}}, header="# a header\n"))
    read = read_config_file(path, sections())
    assert Every(**read["every"]) == values and read[None] == {"patience": 4}
    assert isinstance(read["every"]["interval"], int) and isinstance(read["every"]["folder"], Path)


def test_loose_yaml_is_read_as_the_field_means_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("every:\n  rate: 1\n  name: 32\n  sizes: 5,6\n  interval: 0.25\ncheckpoint: runs/a\n")
    read = read_config_file(path, sections())
    assert read["every"] == {"rate": 1.0, "name": "32", "sizes": (5, 6), "interval": 0.25}
    assert read[None] == {}  # checkpoint: another command's key, skipped


@pytest.mark.parametrize(("text", "message"), [
    ("every:\n  count: true\n", "every.count is True, not an integer"),
    ("every:\n  count: null\n", "every.count is null; give an integer or leave the key out"),
    ("every:\n  sizes: [1, x]\n", "every.sizes[1] is 'x', not an integer"),
    ("every:\n  sizes: 3\n", "every.sizes is 3, not a list of integers"),
    ("every:\n  enabled: 1\n", "every.enabled is 1, not true or false"),
    ("every:\n  count: 0\n", "every.count: --count must be at least 1, got 0"),
    ("paitence: 3\n", "unknown key paitence (did you mean patience?)"),
])
def test_a_bad_value_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read_config_file(path, sections())
    assert str(error.value) == f"{path}: {message}"
