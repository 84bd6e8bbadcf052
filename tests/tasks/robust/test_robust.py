"""The robust task: its adversarial train step, schedules, collapse guard, resume and export."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tensorflow as tf

import tasks.robust.attacks
from common.errors import UserError
from tasks.robust.attacks import AttackConfig, accuracy_under_attack, robust_mask
from tasks.robust.task import CollapseGuard, RobustConfig, RobustTask, one_cycle, random_crop_and_flip
from tests.tensorboard_events import read_scalars
from trainer import Callback, Trainer


class SyntheticRobustTask(RobustTask):
    """Images of the dataset's shape whose label is which half is brighter: 64 train, 32 val/test."""

    def _data(self):
        if self._arrays is None:
            rng = np.random.default_rng(0)
            shape = self.config.recipe.input_shape
            x = rng.uniform(0, 1, size=(128, *shape)).astype("float32")
            half = shape[1] // 2
            y = (x[:, :, :half].mean(axis=(1, 2, 3)) > x[:, :, half:].mean(axis=(1, 2, 3))).astype("int64")
            self._arrays = {"train": (x[:64], y[:64]), "val": (x[64:96], y[64:96]), "test": (x[96:], y[96:])}
        return self._arrays


def synthetic(**options):
    return SyntheticRobustTask(RobustConfig(batch_size=32, **options))


class WeightsAtValidation(Callback):
    """Records the weights as training left them each epoch, before the task's epoch-end check."""

    def __init__(self):
        self.weights = []

    def on_validation_epoch_start(self, trainer, task):
        self.weights.append([w.copy() for w in task.model.get_weights()])


def test_one_cycle_rises_then_falls_to_zero():
    assert one_cycle(0.0, 1.0) == 0.0
    assert one_cycle(0.4, 1.0) == pytest.approx(1.0)
    assert one_cycle(0.7, 1.0) == pytest.approx(0.5)
    assert one_cycle(1.0, 1.0) == 0.0


def test_guard_flags_a_collapse_and_keeps_the_last_good_epoch():
    guard = CollapseGuard(tolerance=0.2)
    assert [guard.check(e, a) for e, a in enumerate([0.3, 0.6, 0.5])] == [False, False, False]
    assert guard.check(3, 0.35) is True
    assert guard.best == 0.6 and guard.last_good_epoch == 2
    restored = CollapseGuard()
    restored.load_state_dict(json.loads(json.dumps(guard.state_dict())))
    assert restored == guard


def test_crop_and_flip_keeps_shape_and_content():
    x = tf.reshape(tf.range(2 * 4 * 4 * 1, dtype=tf.float32), (2, 4, 4, 1))
    moved = random_crop_and_flip(x, pad=0).numpy()
    for original, result in zip(x.numpy(), moved, strict=True):
        assert np.array_equal(result, original) or np.array_equal(result, original[:, ::-1])
    shifted = random_crop_and_flip(x, pad=2).numpy()
    assert shifted.shape == (2, 4, 4, 1)


def test_train_step_trains_on_adversarial_examples_with_ramped_epsilon(trainer_config):
    task = synthetic()
    task.guard = CollapseGuard(tolerance=1.0)  # tiny noisy data: only the step is under test here
    epsilons = []

    class EpsilonProbe(Callback):
        def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
            epsilons.append(float(task._epsilon))

    trainer = Trainer(trainer_config(max_epochs=4), callbacks=[EpsilonProbe()])
    trainer.fit(task)
    # 2 batches x 4 epochs; MNIST ramps epsilon over the first quarter of the steps.
    assert epsilons[0] == pytest.approx(0.15) and epsilons[1:] == pytest.approx([0.3] * 7)
    assert np.isfinite(trainer.metrics["train_loss"]) and trainer.metrics["train_loss"] > 0
    assert 0 <= trainer.metrics["train_accuracy"] <= 1
    assert float(task.model.optimizer.learning_rate) < task.config.recipe.max_learning_rate
    assert [h["epoch"] for h in task.guard.history] == [0, 1, 2, 3]
    logged = read_scalars(trainer.run_dir / "validation", "epoch_pgd_accuracy")
    assert [step for step, _ in logged] == [0, 1, 2, 3]
    assert [value for _, value in logged] == pytest.approx([h["pgd_accuracy"] for h in task.guard.history])


def test_test_step_reports_clean_accuracy_on_all_and_the_worst_case_on_the_first_images(trainer_config):
    task = synthetic(eval_images=20)
    trainer = Trainer(trainer_config(max_epochs=1))
    trainer.fit(task)
    # Two deterministic attacks, so the worst case per image can be computed independently.
    task.eval_attacks = (AttackConfig.fgsm(0.05), AttackConfig.fgsm(0.1))
    results = trainer.test(task)
    x, y, attacked = task.test_data()
    assert attacked.sum() == 20 and attacked[:20].all()
    assert results["accuracy"] == pytest.approx(accuracy_under_attack(task.model, x, y, None))
    survived = np.ones(20, bool)
    for attack in (None, *task.eval_attacks):
        adversarial = x[:20] if attack is None else \
            tasks.robust.attacks.attack_batch(task.model, x[:20], y[:20], attack)
        survived &= task.model.predict(adversarial, verbose=0).argmax(axis=1) == y[:20]
    assert results["strong_accuracy"] == pytest.approx(survived.mean())
    assert np.array_equal(robust_mask(task.model, x[:20], y[:20], task.eval_attacks).numpy(), survived)


def test_collapse_rolls_back_to_the_last_good_epoch_and_stops(trainer_config, monkeypatch):
    readings = iter([0.4, 0.7, 0.1, 0.8, 0.8])
    monkeypatch.setattr(tasks.robust.attacks, "accuracy_under_attack", lambda *args, **kwargs: next(readings))
    task, recorder = synthetic(), WeightsAtValidation()
    trainer = Trainer(trainer_config(max_epochs=5), callbacks=[recorder])
    trainer.fit(task)
    assert trainer.current_epoch == 3 and task.guard.last_good_epoch == 1
    final = task.model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, recorder.weights[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(final, recorder.weights[2], strict=True))


def test_resume_restores_the_guard_history(trainer_config):
    first = synthetic()
    Trainer(trainer_config(max_epochs=2, run_name="r")).fit(first)
    resumed = synthetic()
    Trainer(trainer_config(max_epochs=3, run_name="r", resume=True)).fit(resumed)
    assert [h["epoch"] for h in resumed.guard.history] == [0, 1, 2]
    assert resumed.training_seconds > first.training_seconds > 0


def test_run_exports_to_the_run_folder_only_for_a_short_run(trainer_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = synthetic()
    trainer = Trainer(trainer_config(max_epochs=1, limit_train_batches=1))
    task.run(trainer)
    assert task.export_path == trainer.run_dir / "mnist_robust.h5" and task.export_path.exists()
    assert not (tmp_path / "models").exists()
    card = json.loads(task.export_path.with_suffix(".json").read_text())
    assert card["dataset"] == "mnist" and card["train_attack"]["method"] == "fgsm-rs"
    assert set(card["metrics"]) >= {"test_accuracy", "test_strong_accuracy"}
    assert card["strong_evaluation"]["images"] == 32 and len(card["strong_evaluation"]["attacks"]) == 2
    with h5py.File(task.export_path) as exported:
        assert "model_weights" in exported and "optimizer_weights" not in exported

    # `test robust --model` finds the data set in the card and evaluates the exported model.
    loaded = RobustTask.from_options({"model": str(task.export_path)})
    assert loaded.config.dataset == "mnist"


def test_pgd_training_and_epsilon_options():
    task = RobustTask(RobustConfig(dataset="cifar10", attack="pgd", epsilon=4 / 255))
    assert task.train_attack.method == "pgd" and task.train_attack.steps == 7
    assert task.train_attack.step_size == pytest.approx(1 / 255)
    ce, margin = task.eval_attacks
    assert (ce.loss, margin.loss) == ("ce", "margin") and ce.steps == margin.steps == 50
    assert ce.restarts == 10 and ce.step_size == pytest.approx(2.5 * (4 / 255) / 50)
    assert task.batch_size == 128 and task.default_epochs == task.config.recipe.epochs


@pytest.mark.parametrize("dataset, default", [("mnist", 32), ("cifar10", 48)])
def test_width_sets_the_first_convolution_and_doubles_per_layer(dataset, default):
    models = [RobustTask(RobustConfig(dataset=dataset, width=width)).build_model() for width in (None, 8)]
    convolutions = [[layer.filters for layer in model.layers if hasattr(layer, "filters")] for model in models]
    assert convolutions[0][0] == default and convolutions[1][0] == 8
    assert all(b == 2 * a for widths in convolutions for a, b in zip(widths, widths[1:], strict=False))


@pytest.mark.parametrize("options, message", [({"dataset": "svhn"}, "--dataset"), ({"attack": "cw"}, "--attack"),
                                              ({"epsilon": 3.0}, "--epsilon"), ({"depths": (5,)}, "--depths"),
                                              ({"eval_restarts": 0}, "--eval-restarts"), ({"width": 0}, "--width")])
def test_bad_options_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        RobustTask.from_options(options)


def test_a_model_for_other_images_is_a_user_error(trainer_config, tmp_path):
    task = synthetic()
    Trainer(trainer_config(max_epochs=1, limit_train_batches=1, checkpoint=False)).fit(task)
    path = tmp_path / "m.h5"
    task.model.save(path)
    other = RobustTask(RobustConfig(dataset="cifar10", model=str(path)))
    with pytest.raises(UserError, match="pass the matching --dataset"):
        other.build_model()


@pytest.mark.realdata
def test_a_few_real_mnist_batches_make_a_model_that_resists_fgsm(data_dir, trainer_config):
    from tests.conftest import require_data

    require_data(data_dir, "mnist.npz")
    task = RobustTask(RobustConfig(dataset="mnist"))
    task.data_dir = data_dir
    Trainer(trainer_config(max_epochs=1, limit_train_batches=60, limit_val_batches=2,
                           log_every_n_steps=20)).fit(task)
    x, y, _ = task.test_data()
    clean = accuracy_under_attack(task.model, x[:300], y[:300], None)
    fgsm = accuracy_under_attack(task.model, x[:300], y[:300], tasks.robust.attacks.AttackConfig.fgsm(0.3))
    assert task.data_checksums() == {"mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"}
    assert clean > 0.8
    assert fgsm > 0.3


class StopAfterEpochs(Callback):
    """Ends a run after ``epochs`` epochs, as a crash would, with the schedule of the full run."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, task):
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_resume_is_bit_for_bit_with_random_starts_and_augmentation(trainer_config, dataset):
    import keras

    def task():
        made = synthetic(dataset=dataset)
        made.guard = CollapseGuard(tolerance=2.0)  # the tiny data collapses; this test is about resume
        return made

    straight = task()
    Trainer(trainer_config(max_epochs=3, run_name="straight")).fit(straight)
    keras.backend.clear_session()
    Trainer(trainer_config(max_epochs=3, run_name="split"), callbacks=[StopAfterEpochs(2)]).fit(task())
    keras.backend.clear_session()
    resumed = task()
    Trainer(trainer_config(max_epochs=3, run_name="split", resume=True)).fit(resumed)

    assert straight.train_attack.random_start
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_keep_best_guard_ends_on_the_epoch_with_the_best_held_out_pgd_accuracy(trainer_config, monkeypatch):
    readings = iter([0.4, 0.7, 0.5, 0.6])
    monkeypatch.setattr(tasks.robust.attacks, "accuracy_under_attack", lambda *args, **kwargs: next(readings))
    task, recorder = synthetic(keep_best_guard=True), WeightsAtValidation()
    task.guard = CollapseGuard(tolerance=1.0)  # no collapse here: only the selection is under test
    trainer = Trainer(trainer_config(max_epochs=4), callbacks=[recorder])
    trainer.fit(task)
    assert trainer.current_epoch == 4 and task.best_guard.best["epoch"] == 1
    assert all(np.array_equal(a, b) for a, b in zip(task.model.get_weights(), recorder.weights[1], strict=True))
    assert task.model_card(trainer)["kept_epoch"] == 1


def test_trades_trains_on_clean_and_adversarial_batches(trainer_config):
    task = synthetic(trades_beta=6.0, attack="pgd")
    trainer = Trainer(trainer_config(max_epochs=2))
    trainer.fit(task)
    assert np.isfinite(trainer.metrics["train_loss"]) and trainer.metrics["train_loss"] > 0
    assert "val_pgd_accuracy" in trainer.metrics
    assert task.model_card(trainer)["trades_beta"] == 6.0
