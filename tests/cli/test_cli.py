"""The command line as a user runs it: a subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or ROOT, timeout=timeout)


def test_help_does_not_import_tensorflow():
    probe = ("import sys; sys.argv=['cli.py', '--help']; import cli\n"
             "try:\n    cli.app()\nexcept SystemExit:\n    pass\n"
             "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip().endswith("False")
    assert "fit" in result.stdout and "live" in result.stdout


def test_tasks_lists_every_task_with_one_line():
    result = cli("tasks")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0
    assert [line.split()[0] for line in lines] == ["toy", "deep-mlp", "adversarial", "robust", "emotion"]


@pytest.mark.parametrize(("args", "message"), [
    (("fit", "toyy"), "error: task 'toyy' is unknown (did you mean toy?); choose one of: toy, deep-mlp"),
    (("fit", "toy", "--max-epochs", "0"), "error: --max-epochs must be at least 1, got 0"),
    (("fit", "toy", "--tune"), "error: option --tune does not apply to task toy"),
    (("fit", "toy", "--strategy", "multi-worker"), "error: --strategy multi-worker needs TF_CONFIG"),
    (("report", "--logdir", "nowhere"), "error: no finished runs (metrics.json) under nowhere"),
    # Usage errors of every command, not only the task commands', are one line too.
    (("fitt", "toy"), "error: command 'fitt' is unknown (did you mean fit?); the commands are tasks, fit, test, "
                      "lr-find, live, report"),
    (("live", "--cam", "0"), "error: option --cam is unknown (did you mean --camera?); see cli.py live --help"),
    (("live", "--max-frames"), "error: option --max-frames needs a value; see cli.py live --help"),
    (("live", "--smooth", "high"), "error: --smooth 'high' is not a number; e.g. --smooth 0.6"),
    (("report", "--logdir"), "error: option --logdir needs a value; see cli.py report --help"),
    (("tasks", "extra"), "error: Got unexpected extra argument(s) (extra); see cli.py tasks --help"),
])
def test_user_mistakes_are_one_line_errors(args, message, tmp_path):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_misspelt_option_lists_the_valid_one():
    result = cli("fit", "toy", "--max-epoch", "2")
    assert result.returncode == 2
    assert result.stderr.startswith("error: option --max-epoch is unknown (did you mean --max-epochs?); task toy "
                                    "takes --samples,"), result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--max-epochs",), "error: option --max-epochs needs a value; e.g. --max-epochs 10"),
    (("--strategy",), "error: option --strategy needs a value; e.g. --strategy default"),
    (("--run-name",), "error: option --run-name needs a value; see cli.py fit toy --help"),
])
def test_an_option_without_its_value_is_one_line_with_an_example(args, message, tmp_path):
    result = cli("fit", "toy", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == message, result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("test", "emotion", "--model", "models/nope.h5"), "error: model models/nope.h5 does not exist; pass --model "
     "with one of the shipped emotion models: models/emotion.h5, models/emotion_live.h5"),
    (("live", "--model", "models/nope.h5"), "error: model models/nope.h5 does not exist; pass --model with one of "
     "the shipped emotion models: models/emotion.h5, models/emotion_live.h5"),
    (("test", "robust", "--model", "nope.h5"), "error: model nope.h5 does not exist; pass --model with one of the "
     "shipped robust models: models/cifar10_robust.h5, models/mnist_robust.h5"),
    (("live", "--model", "models/mnist_cnn.h5"), "error: model models/mnist_cnn.h5 was made by `fit adversarial` "
     "(its card says so), not `fit emotion`; pass --model with one of the shipped emotion models: "
     "models/emotion.h5, models/emotion_live.h5"),
])
def test_a_model_that_is_not_there_or_of_another_task_names_the_shipped_ones(args, message, tmp_path):
    result = cli(*args, cwd=tmp_path)  # from another folder: models/... are the shipped ones
    assert result.returncode == 2 and result.stderr.strip() == message, result.stderr


def test_fit_resume_and_report(tmp_path):
    logdir = tmp_path / "logs"
    first = cli("fit", "toy", "--max-epochs", "2", "--logdir", logdir, "--run-name", "a", "--progress", "plain")
    assert first.returncode == 0, first.stderr
    assert "[toy] epoch 2/2" in first.stdout and "[toy] test" in first.stdout
    resumed = cli("fit", "toy", "--max-epochs", "3", "--logdir", logdir, "--run-name", "a", "--resume",
                  "--progress", "plain")
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1/3" not in resumed.stdout and "[toy] epoch 3/3" in resumed.stdout
    assert json.loads((logdir / "toy/a/metrics.json").read_text())["epochs"] == 3
    report = cli("report", "--logdir", logdir)
    assert report.returncode == 0
    text = (logdir / "REPORT.md").read_text()
    assert "| toy | [a](toy/a/report.md) | 42 | 3 |" in text


def test_fast_dev_run_and_test_from_checkpoint(tmp_path):
    logdir = tmp_path / "logs"
    quick = cli("fit", "toy", "--fast-dev-run", "--logdir", logdir, "--run-name", "q", "--progress", "plain")
    assert quick.returncode == 0 and "epoch 1/1" in quick.stdout
    cli("fit", "toy", "--max-epochs", "3", "--logdir", logdir, "--run-name", "t", "--progress", "none")
    trained = json.loads((logdir / "toy/t/metrics.json").read_text())["metrics"]["val_accuracy"]
    evaluated = cli("test", "toy", "--checkpoint", logdir / "toy/t", "--logdir", logdir, "--progress", "none")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test_accuracy: {trained:.4f}" in evaluated.stdout
    missing = cli("test", "toy", "--checkpoint", logdir / "toy/q", "--logdir", logdir)
    assert missing.returncode == 2 and "no checkpoint in" in missing.stderr


def test_mirrored_strategy_trains(tmp_path):
    result = cli("fit", "toy", "--strategy", "mirrored", "--max-epochs", "2", "--logdir", tmp_path,
                 "--progress", "plain")
    assert result.returncode == 0, result.stderr
    config = json.loads(next(tmp_path.glob("toy/*/config.json")).read_text())
    assert config["strategy"] == "mirrored" and config["replicas"] >= 1
