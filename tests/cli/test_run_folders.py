"""A run folder belongs to one run: a reused name is refused, a name is one folder, a failed start leaves
nothing, and report and --resume tell trainings from tests and lr-find sweeps."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cli

TOY = ("--samples", "64", "--progress", "none")


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Runs a command in tmp_path (its runs go to tmp_path/logs); returns (exit code, stdout, stderr line)."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        result = CliRunner().invoke(cli.app, list(map(str, args)))
        lines = result.stderr.strip().splitlines()
        assert len(lines) <= 1 and "Traceback" not in result.output, result.output
        return result.exit_code, result.stdout, lines[0] if lines else ""

    return invoke


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_reused_run_name_is_refused_and_names_both_ways_out(run, tmp_path):
    assert run("fit", "toy", "--max-epochs", "1", "--run-name", "a", *TOY)[0] == 0
    before = listing(tmp_path / "logs")
    code, _, error = run("fit", "toy", "--max-epochs", "1", "--run-name", "a", *TOY)
    assert code == 2
    assert error == ("error: the run folder logs/toy/a already holds a training; continue it with --resume, or "
                     "start a new run with another --run-name, e.g. --run-name a-2")
    assert listing(tmp_path / "logs") == before  # nothing of a second run mixed into the first's folder
    assert run("fit", "toy", "--max-epochs", "2", "--run-name", "a", "--resume", *TOY)[0] == 0
    assert json.loads((tmp_path / "logs/toy/a/metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("name", ["a/b", "../escape", ".."])
def test_a_run_name_that_is_a_path_is_one_line_and_writes_nothing(run, tmp_path, name):
    code, _, error = run("fit", "toy", "--run-name", name, *TOY)
    assert code == 2 and error.startswith(f"error: --run-name {name!r} is not one folder name: ")
    assert not (tmp_path / "logs").exists()


def test_a_failed_start_leaves_no_run_folder(run, tmp_path):
    code, _, error = run("fit", "toy", "--max-epochs", "1", "--save-top-k", "1", "--monitor", "val_f1", *TOY)
    assert code == 2 and "monitors 'val_f1'" in error
    assert not (tmp_path / "logs").exists()  # neither the timestamped run folder nor the folders above it


def test_test_of_a_task_that_trains_its_own_model_needs_weights(run, tmp_path):
    code, _, error = run("test", "toy", *TOY)
    assert code == 2
    assert error == ("error: test toy: nothing trained to evaluate (the task builds a new, untrained model); pass "
                     "--checkpoint logs/toy/<run> (a run folder of `fit toy`)")
    assert not (tmp_path / "logs").exists()


def test_report_and_the_resume_hint_tell_trainings_from_tests_and_sweeps(run, tmp_path):
    assert run("fit", "toy", "--max-epochs", "1", "--run-name", "a", *TOY)[0] == 0
    assert run("test", "toy", "--checkpoint", "logs/toy/a", "--run-name", "t", *TOY)[0] == 0
    assert run("lr-find", "toy", "--samples", "64", "--num-steps", "12", "--run-name", "lr")[0] == 0
    kinds = {name: json.loads((tmp_path / f"logs/toy/{name}/metrics.json").read_text())["kind"]
             for name in ("a", "t", "lr")}
    assert kinds == {"a": "fit", "t": "test", "lr": "lr-find"}
    # Every run folder holds its config.json, a test's too; a test run's events are test/ only.
    assert {name: json.loads((tmp_path / f"logs/toy/{name}/config.json").read_text())["kind"]
            for name in ("a", "t", "lr")} == kinds
    assert sorted(p.name for p in (tmp_path / "logs/toy/t").iterdir()) == [
        ".lock", "config.json", "config.yaml", "metrics.json", "report.md", "test"]

    assert run("report")[0] == 0
    report = (tmp_path / "logs/REPORT.md").read_text()
    trainings, rest = report.split("## Tests")
    tests, sweeps = rest.split("## Learning-rate range tests")
    assert "| toy | [a](toy/a/report.md) | 42 | 1 |" in trainings and "toy/t/" not in trainings
    assert "toy/lr/" not in trainings and "| toy | [t](toy/t/report.md) | logs/toy/a (last) | test_loss" in tests
    assert "| toy | [lr](toy/lr/report.md) | 12 |" in sweeps

    code, _, error = run("fit", "toy", "--run-name", "typo", "--resume", *TOY)
    assert code == 2 and "its trainings, newest first: a (pass one to --run-name" in error
    assert "2 test or lr-find run(s) left out" in error
    code, _, error = run("fit", "toy", "--run-name", "t", "--resume", *TOY)
    assert code == 2 and error.startswith("error: --resume: logs/toy/t holds a test run, which has nothing to resume")
    # Not "drop --resume to start 't'": that folder is taken, so the way out names a free one.
    assert "(pass one to --run-name, or drop --resume and start a new run with another --run-name, e.g. " \
           "--run-name t-2)" in error
    assert run("fit", "toy", "--max-epochs", "1", "--run-name", "t-2", *TOY)[0] == 0


def test_a_misspelt_task_suggests_the_close_one(run):
    for typed, meant in (("deep_mlp", "deep-mlp"), ("Toy", "toy"), ("advesarial", "adversarial")):
        code, _, error = run("fit", typed)
        assert code == 2 and error.startswith(f"error: task {typed!r} is unknown (did you mean {meant}?); choose")


@pytest.mark.parametrize(("args", "message"), [
    (("--max-epochs", "abc"), "error: --max-epochs 'abc' is not a whole number; e.g. --max-epochs 10"),
    (("--learning-rate=1e-3x",), "error: --learning-rate '1e-3x' is not a number; e.g. --learning-rate 0.01"),
    (("--strategy", "mirored"), "error: --strategy 'mirored' is unknown (did you mean mirrored?); use one of "
                                "default, mirrored, multi-worker"),
])
def test_a_value_of_the_wrong_type_is_quoted_with_an_example(run, args, message):
    assert run("fit", "toy", *args)[::2] == (2, message)


def test_a_tf_config_of_another_cluster_is_one_line_before_anything_starts(run, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]},
                                                "task": {"type": "worker", "index": 3}}))
    code, _, error = run("fit", "toy", "--strategy", "multi-worker", *TOY)
    assert code == 2 and error == ("error: --strategy multi-worker reads a TF_CONFIG whose task index 3 is beyond its "
                                   "cluster of 1 worker(s); set task.index to 0-0 for this process")
    assert not (tmp_path / "logs").exists()
