"""The adversarial task: classifier training and reuse, the attack's outputs, user errors, shipped models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from tasks.adversarial.task import AdversarialConfig, AdversarialTask
from tests.conftest import ROOT, require_data
from tests.tensorboard_events import read_scalars, read_tags
from trainer import Trainer


def synthetic_mnist(directory: Path, train: int = 160, test: int = 40) -> Path:
    """A learnable stand-in for mnist.npz: digit d is a bright bar at row 2 + 2d, plus noise."""
    rng = np.random.default_rng(0)

    def split(count):
        y = np.arange(count) % 10
        x = rng.integers(0, 40, size=(count, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 2 + 2 * label: 4 + 2 * label, 4:24] = 255
        return x, y.astype(np.uint8)

    (x_train, y_train), (x_test, y_test) = split(train), split(test)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return directory


def make_task(tmp_path, **overrides) -> AdversarialTask:
    values = {"dataset": "mnist", "model": str(tmp_path / "models" / "mnist_cnn.h5"), "samples": (3, 4),
              "max_rounds": 4, "batch_size": 32}
    values.update(overrides)
    task = AdversarialTask(AdversarialConfig(**values))
    task.data_dir = str(synthetic_mnist(tmp_path / "data"))
    return task


def test_fit_trains_exports_and_attacks_with_every_output(tmp_path, trainer_config):
    task = make_task(tmp_path)
    trainer = Trainer(trainer_config(max_epochs=1, run_name="first"))
    task.run(trainer)

    card = json.loads((tmp_path / "models" / "mnist_cnn.json").read_text())
    assert card["dataset"] == "mnist" and card["seed"] == 42 and "mnist.npz" in card["data"]
    assert card["metrics"]["test_accuracy"] == pytest.approx(trainer.metrics["test_accuracy"], abs=1e-4)
    run_dir = trainer.run_dir
    assert (run_dir / "attack_grid.png").stat().st_size > 1000
    rows = (run_dir / "attack_pairs.csv").read_text().strip().splitlines()
    assert rows[0].startswith("sample,label,target,success,confidence") and len(rows) == 1 + 2 * 10
    report = (run_dir / "report.md").read_text()
    assert "## Attack per pair" in report and "## Attack summary" in report
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["results"]["attack"]["samples"] == [3, 4]
    assert len(metrics["results"]["attack"]["pairs"]) == 20

    tags = read_tags(run_dir / "attack")
    assert {"attack_grid", "attack_grid_evolution"} <= tags["images"]
    assert {"attack_mean_target_confidence", "attack_min_target_confidence", "attack_success_rate",
            "attack_confidence/sample3_to_7"} <= tags["scalars"]
    history = task.attack_result.confidence_history
    logged = read_scalars(run_dir / "attack", "attack_mean_target_confidence")
    assert [step for step, _ in logged] == list(range(history.shape[0]))
    assert logged[-1][1] == pytest.approx(float(history[-1].mean()), abs=1e-6)


def test_existing_model_is_reused_unless_retrain(tmp_path, trainer_config):
    first = make_task(tmp_path)
    first.run(Trainer(trainer_config(max_epochs=1, run_name="first")))
    saved = [w.copy() for w in first.model.get_weights()]
    model_file = tmp_path / "models" / "mnist_cnn.h5"
    stamp = model_file.stat().st_mtime_ns

    reused = make_task(tmp_path)
    trainer = Trainer(trainer_config(max_epochs=1, run_name="second"))
    reused.run(trainer)
    assert trainer.global_step == 0 and reused.reused
    assert model_file.stat().st_mtime_ns == stamp
    for a, b in zip(saved, reused.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    retrained = make_task(tmp_path, retrain=True)
    trainer = Trainer(trainer_config(max_epochs=1, run_name="third"))
    retrained.run(trainer)
    assert trainer.global_step > 0 and not retrained.reused
    assert model_file.stat().st_mtime_ns != stamp


def test_default_samples_are_distinct_classes_the_model_is_sure_of(tmp_path):
    task = make_task(tmp_path, samples=None)

    class Sure:
        def predict(self, x, batch_size, verbose):
            return np.eye(10)[task.splits["test"][1]]

    task.model = Sure()
    x, y = task.splits["test"]
    picked = task.pick_samples(x, y, seed=1)
    assert len(picked) == 5 and len({int(y[i]) for i in picked}) == 5
    assert picked == task.pick_samples(x, y, seed=1)
    assert picked != task.pick_samples(x, y, seed=2)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"confidence": 1.5}, "--confidence must be between 0 and 1, got 1.5"),
    ({"max_rounds": 0}, "--max-rounds must be at least 1, got 0"),
    ({"generator_lr": -1.0}, "--generator-lr must be above 0, got -1.0"),
    ({"samples": (3, 99999)}, "--samples entries must be at least 0 and at most 9999, got 99999 in 3,99999"),
    ({"dataset": "svhn"}, "dataset 'svhn' is unknown"),
])
def test_bad_options_are_user_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        AdversarialTask(AdversarialConfig(**overrides))


def test_out_of_range_samples_name_the_valid_range(tmp_path):
    task = make_task(tmp_path, samples=(3, 99))
    x, y = task.splits["test"]
    with pytest.raises(UserError, match="--samples 99 out of range; test indices go 0-39"):
        task.pick_samples(x, y, seed=0)


def test_cli_test_without_a_model_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "test", "adversarial", "--model",
                             str(tmp_path / "missing.h5"), "--data-dir", str(synthetic_mnist(tmp_path / "data")),
                             "--logdir", str(tmp_path / "logs"), "--progress", "none"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        # A missing --model names the task's shipped models (the CLI checks it before TensorFlow loads).
        f"error: model {tmp_path / 'missing.h5'} does not exist; pass --model with one of the shipped adversarial "
        "models: models/cifar10_cnn.h5, models/mnist_cnn.h5"]


@pytest.mark.realdata
@pytest.mark.parametrize(("dataset", "goal"), [("mnist", 0.992), ("cifar10", 0.65)])
def test_shipped_model_meets_its_goal_and_its_card(data_dir, dataset, goal):
    require_data(data_dir, f"{dataset}.npz")
    from data.datasets import sha256
    from tasks.classifiers import load_images
    from trainer.export import load_model_file

    path = ROOT / "models" / f"{dataset}_cnn.h5"
    card = json.loads(path.with_suffix(".json").read_text())
    x, y = load_images(dataset, data_dir)[0]["test"]
    accuracy = float((load_model_file(path).predict(x, batch_size=500, verbose=0).argmax(1) == y).mean())
    assert accuracy >= goal
    assert accuracy == pytest.approx(card["metrics"]["test_accuracy"], abs=2e-4)
    assert card["data"][f"{dataset}.npz"] == sha256(data_dir / f"{dataset}.npz")
    assert card["command"].startswith(f"python cli.py fit adversarial --dataset {dataset}")
    assert path.stat().st_size < 3_000_000  # weights only: no optimizer state


@pytest.mark.realdata
def test_shipped_mnist_model_is_attacked_and_left_unchanged(data_dir):
    require_data(data_dir, "mnist.npz")
    from tasks.adversarial.generator import GeneratorConfig, attack
    from tasks.classifiers import load_images
    from trainer.export import load_model_file

    model = load_model_file(ROOT / "models" / "mnist_cnn.h5")
    before = [w.copy() for w in model.get_weights()]
    x, y = load_images("mnist", data_dir)[0]["test"]
    targets = (y[:4] + 1) % 10
    result = attack(model, x[:4], targets, GeneratorConfig(max_rounds=400))
    assert all(pair.success and pair.predicted == t for pair, t in zip(result.pairs, targets, strict=True))
    for a, b in zip(before, model.get_weights(), strict=True):
        assert a.tobytes() == b.tobytes()
