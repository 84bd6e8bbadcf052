"""Field ranges declared in metadata: the bounds, choices and checks of trainer/validation.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from common.errors import UserError
from trainer.validation import (
    check_fields,
    missing_model_error,
    one_path_component,
    other_task_model_error,
    tf_config_error,
)


@dataclass(frozen=True)
class Ranged:
    count: int = field(default=3, metadata={"min": 1})
    rate: float = field(default=0.1, metadata={"above": 0, "below": 1})
    share: float | None = field(default=None, metadata={"min": 0, "max": 1, "fix": "omit it for all"})
    indices: tuple[int, ...] = field(default=(1, 2), metadata={"min": 0, "max": 9})
    words: tuple[str, ...] = field(default=("a",), metadata={"choices": ("a", "b")})
    name: str = field(default="x", metadata={"check": one_path_component})
    on: bool = False


@pytest.mark.parametrize(("values", "message"), [
    ({"count": 0}, "--count must be at least 1, got 0; e.g. --count 3"),
    ({"rate": 1.0}, "--rate must be between 0 and 1, got 1.0; e.g. --rate 0.1"),
    ({"rate": float("inf")}, "--rate must be a finite number, got inf; e.g. --rate 0.1"),
    ({"share": 1.5}, "--share must be at least 0 and at most 1, got 1.5; omit it for all"),
    ({"indices": (3, 10)}, "--indices entries must be at least 0 and at most 9, got 10 in 3,10; e.g. --indices 1,2"),
    ({"words": ("a", "c")}, "--words 'a,c' lists 'c', which is unknown; use one of a, b"),
    ({"name": "a/b"}, "--name 'a/b' is not one folder name: a run name takes letters, digits, '.', '-' and '_' "
                      "(no '/'), e.g. --run-name a-b"),
])
def test_a_value_out_of_its_declared_range_is_one_line_naming_it_and_the_fix(values, message):
    with pytest.raises(UserError) as error:
        check_fields(Ranged(**values))
    assert str(error.value) == message


def test_values_in_range_and_none_pass():
    check_fields(Ranged(count=1, rate=0.5, share=None, indices=(0, 9), words=("b", "a"), name="run-1.b_c", on=True))
    check_fields(Ranged(share=0))


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", ".", "a b", "", "~x"])
def test_a_run_name_is_one_folder_name(name):
    assert one_path_component(name) is not None
    assert one_path_component("2024-01-01_lr.1e-3") is None


@pytest.mark.parametrize(("tf_config", "said"), [
    (None, "multi-worker needs TF_CONFIG"),
    ("{not json", "multi-worker reads a TF_CONFIG that is not valid JSON"),
    ({"cluster": {"worker": ["a:1"]}}, 'multi-worker reads a TF_CONFIG without a "cluster" and a "task"'),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
     "multi-worker reads a TF_CONFIG whose task type 'chief' is not in its cluster (worker)"),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}},
     "multi-worker reads a TF_CONFIG whose task index 3 is beyond its cluster of 1 worker(s); set task.index to 0-0"),
])
def test_a_tf_config_that_does_not_describe_this_process_is_named(monkeypatch, tf_config, said):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config if isinstance(tf_config, str) else json.dumps(tf_config))
    assert tf_config_error("multi-worker").startswith(said)
    assert tf_config_error("default") is None


def test_a_tf_config_naming_this_process_passes(monkeypatch):
    cluster = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert tf_config_error("multi-worker") is None


def test_a_missing_model_names_the_shipped_models_or_how_to_make_one():
    every = missing_model_error("nope.h5")
    assert every.startswith("model nope.h5 does not exist; pass --model with one of the shipped models: ")
    assert "models/mnist_cnn.h5" in every and "models/emotion.h5" in every
    assert missing_model_error("nope.h5", "toy") == ("model nope.h5 does not exist; train one with "
                                                     "`python cli.py fit toy` and pass the file it exports")


def test_a_model_of_another_task_is_named_by_its_card(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"task": "robust"}))
    assert other_task_model_error(tmp_path / "m.h5", "robust") is None
    assert other_task_model_error(tmp_path / "m.h5", "emotion").startswith(
        f"model {tmp_path / 'm.h5'} was made by `fit robust` (its card says so), not `fit emotion`; pass --model")
    assert other_task_model_error(tmp_path / "no-card.h5", "emotion") is None  # no card: no verdict
