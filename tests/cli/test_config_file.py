"""--config, --print-config and the config.yaml of each run folder, as a user runs them."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cli.test_cli import cli


def body(text: str) -> str:
    """A config.yaml without its comment header, which names the run folder."""
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))


def test_a_run_reruns_from_its_config_yaml_with_the_same_metrics(tmp_path):
    first = cli("fit", "toy", "--max-epochs", "2", "--samples", "128", "--hidden", "8", "--deterministic",
                "--save-top-k", "1", "--logdir", tmp_path, "--run-name", "first", "--progress", "none")
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "toy/first/config.yaml"
    text = saved.read_text()
    assert f"#   python cli.py fit toy --config {saved}" in text
    options = yaml.safe_load(text)
    assert options["trainer"]["max_epochs"] == 2 and options["trainer"]["run_name"] is None
    assert options["toy"]["samples"] == 128 and options["save_top_k"] == 1

    rerun = cli("fit", "toy", "--config", saved)
    assert rerun.returncode == 0, rerun.stderr
    second = next(p for p in (tmp_path / "toy").iterdir() if p.name != "first")
    metrics = [json.loads((run / "metrics.json").read_text())["metrics"] for run in (tmp_path / "toy/first", second)]
    assert metrics[0] == metrics[1] and "test_accuracy" in metrics[0]
    assert body((second / "config.yaml").read_text()) == body(text)
    assert (second / "checkpoints/top/index.json").exists()  # save_top_k came from the file too

    tested = cli("test", "toy", "--config", saved, "--checkpoint", tmp_path / "toy/first")
    assert tested.returncode == 0, tested.stderr
    assert f"test_accuracy: {metrics[0]['test_accuracy']:.4f}" in tested.stdout


def test_flags_override_the_file_and_print_config_reads_back(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("trainer:\n  max_epochs: 4\n  seed: 7\ntoy:\n  hidden: 8\npatience: 2\n")
    printed = cli("fit", "toy", "--config", mine, "--max-epochs", "3", "--classes", "3", "--print-config", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    options = yaml.safe_load(printed.stdout)
    assert (options["trainer"]["max_epochs"], options["trainer"]["seed"]) == (3, 7)
    assert (options["toy"]["hidden"], options["toy"]["classes"], options["patience"]) == (8, 3, 2)
    assert options["trainer"]["precision"] == "32" and options["monitor"] == "val_loss"  # defaults, resolved
    assert not (tmp_path / "logs").exists()  # printing runs nothing

    (tmp_path / "printed.yaml").write_text(printed.stdout)
    again = cli("fit", "toy", "--config", tmp_path / "printed.yaml", "--print-config", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == printed.stdout


@pytest.mark.parametrize(("text", "message"), [
    ("trainer:\n  max_epoch: 3\n", "unknown key trainer.max_epoch (did you mean trainer.max_epochs?)"),
    ("toy:\n  depths: 5,20\n", "unknown key toy.depths; the section toy takes samples, features"),
    ("emotion:\n  tune: true\n", "unknown key emotion; the top level takes data_dir, patience"),
    # A file's value goes through the converter a flag's text does, so it is refused in the flag's words.
    ("trainer:\n  max_epochs: ten\n", "trainer.max_epochs: --max-epochs 'ten' is not a whole number"),
    ("trainer:\n  max_epochs: 0\n", "trainer.max_epochs: --max-epochs must be at least 1, got 0"),
    # Choices are checked once, by the field, for a flag and a file alike.
    ("trainer:\n  strategy: fast\n", "trainer.strategy: --strategy 'fast' is unknown; use one of default, mirrored, "
                                     "multi-worker"),
    ("toy:\n  samples: 1.5\n", "toy.samples: --samples 1.5 is not a whole number"),
    ("patience: [1, 2]\n", "patience: --patience [1, 2] is not a whole number"),
    ("trainer:\n  max_epochs: null\n", "trainer.max_epochs: --max-epochs cannot be null"),
    ("trainer: 5\n", "trainer must be a mapping of option names to values, not 5"),
    ("trainer: [1\n", "is not valid YAML at line 2, column 1"),
    ("- 1\n- 2\n", "holds a list, not a mapping"),
])
def test_a_bad_key_or_value_is_one_line_naming_it_and_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli("fit", "toy", "--config", path, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {path}") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_a_missing_file_says_how_to_write_one(tmp_path):
    result = cli("fit", "toy", "--config", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    expected = "error: --config nope.yaml does not exist; write one with --print-config > nope.yaml"
    assert result.stderr.strip() == expected
