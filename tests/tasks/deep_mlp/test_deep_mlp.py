"""The deep-MLP study: options, the grid's outputs, observations, lecun's .h5 round trip, the real run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from callbacks.gradients import GradientHistogram
from common.errors import UserError
from tasks import build_task
from tasks.deep_mlp.study import chance_observation, lecun_vs_tanh, observations, summarize
from tasks.deep_mlp.task import DeepMLPConfig, DeepMLPTask, MNISTSplits
from tests.conftest import ROOT, require_data
from tests.tensorboard_events import read_tags
from tests.tensorboard_server import serve_tensorboard, wait_for
from trainer import Trainer

FIGURES = {"study/max_gradient_trained", "study/max_gradient_untrained", "study/learning_curves"}


def synthetic_splits(samples: int = 96) -> MNISTSplits:
    """Tiny 4x4 "digits" whose label is the brightest quadrant-ish pixel: learnable, fast."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(samples + 32, 4, 4), dtype=np.uint8)
    labels = images.reshape(len(images), -1)[:, :10].argmax(axis=1)
    return MNISTSplits.from_arrays((images[:samples], labels[:samples]), (images[samples:], labels[samples:]),
                                   validation_samples=16)


def tiny_study(**options) -> DeepMLPTask:
    config = DeepMLPConfig(**{"depths": (2, 3), "activations": ("tanh", "lecun"), "probe_samples": 8,
                              "batch_size": 16, **options})
    return DeepMLPTask(config, synthetic_splits())


@pytest.mark.parametrize("options, message", [
    # The depths' and activations' ranges are their fields' (min, choices, listed_once), in the fields' wording.
    ({"depths": (0, 5)}, "--depths entries must be at least 1, got 0 in 0,5"),
    ({"activations": ("relu", "swish")}, "--activations 'relu,swish' lists 'swish', which is unknown; use one of "
                                         "relu, tanh, sigmoid, lecun"),
    ({"depths": (5, 5)}, "--depths '5,5' repeats 5; list each once"),
    ({"depths": ()}, "--depths lists nothing; give at least one entry"),
    ({"grad_every": 0}, "--grad-every must be at least 1, got 0"),
    ({"epsilon": 0.3}, "option --epsilon does not apply to task deep-mlp"),
])
def test_bad_options_name_the_value_and_the_fix(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        build_task("deep-mlp", options)


def test_cli_reports_a_bad_activation_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    done = CliRunner().invoke(app, ["fit", "deep-mlp", "--activations", "tanh,swish", "--logdir", str(tmp_path)])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "error: --activations 'tanh,swish' lists 'swish', which is unknown; use one of relu, tanh, sigmoid, lecun"]


def test_grid_writes_table_figures_report_and_per_model_runs(trainer_config, tmp_path):
    study = tiny_study()
    trainer = Trainer(trainer_config(max_epochs=2, run_name="grid"),
                      callbacks=[GradientHistogram(study.probe_batch(), every_n_steps=2)])
    metrics = study.run(trainer)
    run = tmp_path / "logs/deep-mlp/grid"

    with open(run / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["depth"], r["activation"]) for r in rows] == [("2", "tanh"), ("2", "lecun"), ("3", "tanh"),
                                                             ("3", "lecun")]
    for row in rows:
        child = json.loads((run / f"{row['depth']}-{row['activation']}/metrics.json").read_text())
        assert float(row["test_accuracy"]) == pytest.approx(child["metrics"]["test_accuracy"], abs=1e-6)
        assert metrics[f"test_accuracy/{row['depth']}-{row['activation']}"] == child["metrics"]["test_accuracy"]
    assert (run / "scores.md").read_text().count("\n| 3 | lecun |") == 1

    results = json.loads((run / "study.json").read_text())
    for r in results:
        assert len(r["untrained_gradients"]) == len(r["trained_gradients"]) == r["depth"] + 1
        assert [h["epoch"] for h in r["history"]] == [1, 2]
        assert r["untrained_gradients"] != r["trained_gradients"]

    for name in ("max_gradient_trained", "max_gradient_untrained", "learning_curves"):
        assert (run / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert read_tags(run / "study")["images"] == FIGURES
    child_tags = read_tags(run / "3-lecun/train")
    assert {"gradients/hidden_01", "gradients/hidden_03", "gradients/output"} <= child_tags["histograms"]
    assert "max_abs_gradient/hidden_01" in child_tags["scalars"]

    report = (run / "report.md").read_text()
    assert "**not standardized**" in report
    for line in observations(results):
        assert f"- {line}" in report
    assert json.loads((run / "config.json").read_text())["task_config"]["depths"] == [2, 3]


def test_resume_keeps_finished_models_and_their_history(trainer_config, tmp_path):
    first = Trainer(trainer_config(max_epochs=2, run_name="again"))
    tiny_study(depths=(2,), activations=("lecun",)).run(first)
    keras.backend.clear_session()
    again = Trainer(trainer_config(max_epochs=2, run_name="again", resume=True))
    tiny_study(depths=(2,), activations=("lecun",)).run(again)
    child = json.loads((tmp_path / "logs/deep-mlp/again/2-lecun/metrics.json").read_text())
    assert child["global_step"] == 2 * 5  # 80 training images, batches of 16: nothing retrained
    history = json.loads((tmp_path / "logs/deep-mlp/again/study.json").read_text())[0]["history"]
    assert [h["epoch"] for h in history] == [1, 2]


def test_seeds_train_the_grid_per_seed_and_the_table_gives_mean_and_sd(trainer_config, tmp_path):
    study = tiny_study(depths=(2,), activations=("tanh", "lecun"))
    metrics = study.run(Trainer(trainer_config(max_epochs=1, run_name="seeds", seed=7, seeds=2)))
    run = tmp_path / "logs/deep-mlp/seeds"

    accuracies = {}
    for seed in (7, 8):
        for label in ("2-tanh", "2-lecun"):
            child = json.loads((run / f"seed-{seed}/{label}/metrics.json").read_text())
            assert json.loads((run / f"seed-{seed}/{label}/config.json").read_text())["seed"] == seed
            accuracies.setdefault(label, []).append(child["metrics"]["test_accuracy"])
    with open(run / "scores.csv") as handle:
        rows = {f"{r['depth']}-{r['activation']}": r for r in csv.DictReader(handle)}
    for label, values in accuracies.items():
        assert rows[label]["seeds"] == "7 8"
        assert float(rows[label]["test_accuracy"]) == pytest.approx(np.mean(values), abs=1e-6)
        assert float(rows[label]["test_accuracy_sd"]) == pytest.approx(np.std(values, ddof=1), abs=1e-6)
        assert metrics[f"test_accuracy/{label}"] == pytest.approx(np.mean(values))
    assert "| 2 | lecun | 7,8 |" in (run / "scores.md").read_text()
    assert json.loads((run / "config.json").read_text())["seeds"] == [7, 8]
    # Different seeds, different initial weights: the draws are not copies of each other.
    first = json.loads((run / "study.json").read_text())
    assert first[0]["untrained_gradients"] != first[2]["untrained_gradients"]


def test_summary_is_mean_and_sample_sd_per_model_over_seeds():
    results = [{**result(5, "tanh", a, 0.5), "seed": s} for s, a in ((1, 0.90), (2, 0.80), (3, 0.70))]
    results.append({**result(5, "lecun", 0.95, 0.9), "seed": 1})
    tanh, lecun = summarize(results)
    assert tanh["seeds"] == [1, 2, 3] and tanh["test_accuracy"] == pytest.approx((0.80, 0.10))
    assert lecun["test_accuracy"][0] == 0.95 and np.isnan(lecun["test_accuracy"][1])
    assert "largest sd of test accuracy is tanh at depth 5's, 0.1000 (per seed 0.9000, 0.8000, 0.7000)" in \
        observations(results)[-1]


def test_seeds_apply_only_to_studies_that_repeat_per_seed(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    done = CliRunner().invoke(app, ["fit", "toy", "--seeds", "3", "--logdir", str(tmp_path)])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "error: --seeds 3: task toy trains one model per run; repeat it with --seed 42, --seed 43, ... instead"]
    done = CliRunner().invoke(app, ["fit", "deep-mlp", "--seeds", "0", "--logdir", str(tmp_path)])
    assert done.exit_code == 2 and "--seeds must be at least 1, got 0" in done.output


def result(depth, activation, accuracy, first_val, grads=(1e-3, 1e-2, 1.0)):
    return {"depth": depth, "activation": activation, "test_loss": 1.0, "test_accuracy": accuracy,
            "history": [{"epoch": 1, "val_accuracy": first_val}], "untrained_gradients": list(grads),
            "trained_gradients": list(grads), "epochs": 1, "seconds": 1.0}


def test_observations_follow_the_numbers():
    results = [result(5, "tanh", 0.91, 0.80), result(5, "lecun", 0.95, 0.90),
               result(40, "tanh", 0.11, 0.11, (1e-9, 1.0)), result(40, "lecun", 0.85, 0.60, (1e-2, 1.0))]
    assert "1 of 4 models stay at chance" in chance_observation(results)
    assert "tanh at depth 40 (0.1100)" in chance_observation(results)
    assert lecun_vs_tanh(results)[0].startswith("LeCun vs tanh: LeCun trains faster than tanh (higher validation "
                                                "accuracy after the first epoch at 2 of 2 depths)")
    gradients = observations(results)[1]
    assert "At depth 40 the ratio is smallest for tanh (1.00e-09) and largest for lecun (1.00e-02)" in gradients

    results[1]["history"][0]["val_accuracy"] = 0.70  # now tanh is ahead at depth 5
    assert "neither trains faster at every depth" in lecun_vs_tanh(results)[0]
    results[2]["test_accuracy"] = 0.5
    assert chance_observation(results).startswith("No model stays at chance")


def test_lecun_model_saves_to_h5_and_loads_in_a_fresh_process(trainer_config, tmp_path):
    study = tiny_study(depths=(3,), activations=("lecun",))
    member = study.member(3, "lecun")
    trainer = Trainer(trainer_config(max_epochs=1, run_name="h5"))
    trainer.fit(member)
    path = member.export(trainer)
    x = study.splits.test[0]
    np.save(tmp_path / "x.npy", x)
    expected = member.model.predict(x, verbose=0)

    script = ("import sys, numpy as np, tasks.deep_mlp.activations; from trainer.export import load_model_file; "
              "m = load_model_file(sys.argv[1]); np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0)); "
              "print(m.layers[0].activation.__name__)")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "lecun"
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["activation"] == "lecun" and card["metrics"] == {} and card["seed"] == trainer.config.seed


@pytest.mark.realdata
def test_real_mnist_run_is_visible_in_tensorboard(data_dir, tmp_path):
    require_data(data_dir, "mnist.npz")
    command = [sys.executable, "cli.py", "fit", "deep-mlp", "--depths", "5", "--activations", "lecun",
               "--max-epochs", "1", "--limit-train-batches", "20", "--grad-every", "5", "--data-dir", str(data_dir),
               "--logdir", str(tmp_path), "--run-name", "tb", "--progress", "none"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deep-mlp: test scores" in done.stdout
    run = tmp_path / "deep-mlp/tb"
    assert json.loads((run / "config.json").read_text())["data"]["mnist.npz"] == \
        json.loads((run / "5-lecun/model.json").read_text())["data"]["mnist.npz"]

    with serve_tensorboard(tmp_path) as url:
        histograms = wait_for(f"{url}/data/plugin/histograms/tags", lambda d: "deep-mlp/tb/5-lecun/train" in d)
        assert {f"gradients/hidden_{i:02d}" for i in range(1, 6)} | {"gradients/output"} <= \
            set(histograms["deep-mlp/tb/5-lecun/train"])
        images = wait_for(f"{url}/data/plugin/images/tags", lambda d: "deep-mlp/tb/study" in d)
        assert set(images["deep-mlp/tb/study"]) == FIGURES
        scalars = wait_for(f"{url}/data/plugin/scalars/tags", lambda d: "deep-mlp/tb/5-lecun/train" in d)
        assert {"max_abs_gradient/hidden_01", "epoch_loss"} <= set(scalars["deep-mlp/tb/5-lecun/train"])
        assert "epoch_accuracy" in scalars["deep-mlp/tb/5-lecun/validation"]


def test_growth_observation_names_unstable_models_not_vanished_ones():
    steady = result(5, "lecun", 0.95, 0.9, (0.5, 0.9, 1.0))
    unstable = {**result(40, "tanh", 0.6, 0.7, (0.65, 1.0)), "trained_gradients": [2.74, 1.0]}
    unstable["history"] = [{"epoch": 1, "val_accuracy": 0.75}, {"epoch": 2, "val_accuracy": 0.70}]
    stuck = {**result(40, "sigmoid", 0.11, 0.1, (1e-25, 1.0)), "trained_gradients": [3.0, 1.0]}
    line = observations([steady, unstable, stuck])[3]
    assert "after training (the first hidden layer's largest gradient exceeds" in line
    assert "tanh at depth 40 (6.50e-01 at initialization, 2.74e+00 after training)" in line
    assert line.endswith("epoch to the next (runs of the model's seeds): tanh at depth 40 (1 of 1).")
    assert "sigmoid" not in line and "lecun" not in line


def test_deterministic_turns_on_op_determinism_and_a_rerun_matches(tmp_path):
    # A fresh process: op determinism is process-wide and permanent, so it must not leak into other tests.
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import keras
from tensorflow.python.framework import config as tf_config
from tests.tasks.deep_mlp.test_deep_mlp import tiny_study
from trainer import Trainer, TrainerConfig

scores = []
for name in ("a", "b"):
    keras.backend.clear_session()
    trainer = Trainer(TrainerConfig(max_epochs=2, logdir={str(tmp_path)!r}, run_name=name, progress="none",
                                    deterministic=True))
    scores.append(tiny_study(depths=(3,), activations=("tanh",)).run(trainer))
print(json.dumps({{"enabled": tf_config.is_op_determinism_enabled(), "scores": scores}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["enabled"] is True
    first, second = result["scores"]
    assert first == second and set(first) == {"test_accuracy/3-tanh"}
