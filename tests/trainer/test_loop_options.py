"""Lightning's everyday Trainer flags on the toy task: precision, clipping, accumulation, max-time,
validation interval, profiler; and their one-line errors."""

from __future__ import annotations

import json
import time

import keras
import numpy as np
import pytest

from common.errors import UserError
from tasks.toy.task import ToyConfig, ToyTask
from trainer import Callback, Trainer, TrainerConfig


def weights_of(model):
    return [np.array(w.numpy()) for w in model.trainable_weights]


class SGDToy(ToyTask):
    """The toy model under plain SGD, so an update is exactly -rate x gradient."""

    def build_model(self):
        model = super().build_model()
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model


class ValidationCounter(Callback):
    def __init__(self):
        self.steps = []

    def on_validation_epoch_start(self, trainer, task):
        self.steps.append(trainer.global_step)


# --- precision ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("precision", "compute", "scaled"), [("bf16-mixed", "bfloat16", False),
                                                               ("16-mixed", "float16", True)])
def test_mixed_precision_builds_under_the_policy_with_a_float32_output(
        trainer_config, tmp_path, precision, compute, scaled):
    task = ToyTask(ToyConfig(samples=64))
    trainer = Trainer(trainer_config(max_epochs=1, precision=precision, run_name="p"))
    trainer.fit(task)
    hidden, output = task.model.get_layer("hidden"), task.model.get_layer("output")
    assert hidden.compute_dtype == compute and hidden.kernel.dtype == "float32"
    assert output.compute_dtype == "float32" and task.model(np.zeros((1, 16), "float32")).dtype == "float32"
    assert isinstance(task.model.optimizer, keras.optimizers.LossScaleOptimizer) is scaled
    assert np.isfinite(trainer.metrics["train_loss"])
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for whatever runs next
    config = json.loads((tmp_path / "logs/toy/p/config.json").read_text())
    assert config["trainer"]["precision"] == precision


# --- accumulation and clipping --------------------------------------------------------------------
def fit_once(trainer_config, batch_size, batches, **options):
    task = SGDToy(ToyConfig(samples=32, batch_size=batch_size))
    trainer = Trainer(trainer_config(max_epochs=1, limit_train_batches=batches, checkpoint=False, **options))
    initial = []

    class Initial(Callback):
        def on_fit_start(self, trainer, task):
            initial.extend(weights_of(task.model))

    trainer.callbacks.append(Initial())
    trainer.fit(task)
    keras.backend.clear_session()
    return initial, weights_of(task.model)


def test_accumulating_four_batches_of_8_equals_one_batch_of_32(trainer_config):
    initial, large = fit_once(trainer_config, batch_size=32, batches=1)
    _, accumulated = fit_once(trainer_config, batch_size=8, batches=4, accumulate_grad_batches=4)
    _, three_of_four = fit_once(trainer_config, batch_size=8, batches=3, accumulate_grad_batches=4)
    assert not np.allclose(initial[0], large[0])
    for a, b in zip(large, accumulated, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(initial, three_of_four, strict=True):
        np.testing.assert_array_equal(a, b)  # no update before the 4th batch


def update_of(trainer_config, **options):
    initial, final = fit_once(trainer_config, batch_size=32, batches=1, **options)
    return [f - i for i, f in zip(initial, final, strict=True)]


def test_clipping_by_norm_bounds_the_global_norm_of_the_update(trainer_config):
    free = update_of(trainer_config)
    clipped = update_of(trainer_config, gradient_clip_val=1e-3, gradient_clip_algorithm="norm")
    norm = lambda parts: float(np.sqrt(sum(np.sum(p.astype("float64") ** 2) for p in parts)))  # noqa: E731
    assert norm(free) > 1e-2
    assert norm(clipped) == pytest.approx(1e-3, rel=1e-3)  # SGD at rate 1: the update is the clipped gradient


def test_clipping_by_value_bounds_every_element_of_the_update(trainer_config):
    free = update_of(trainer_config)
    clipped = update_of(trainer_config, gradient_clip_val=1e-3, gradient_clip_algorithm="value")
    assert max(float(np.abs(p).max()) for p in free) > 1e-2
    # float32 weights round the subtraction: within 1e-4 relative of the bound, and at it somewhere.
    assert max(float(np.abs(p).max()) for p in clipped) == pytest.approx(1e-3, rel=1e-4)


# --- max-time ------------------------------------------------------------------------------------
class SlowSteps(Callback):
    """Each step takes 0.3 s more; records when each step ended, from fit start."""

    def __init__(self):
        self.ends, self._start = [], 0.0

    def on_fit_start(self, trainer, task):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        time.sleep(0.3)
        self.ends.append(time.perf_counter() - self._start)


def test_max_time_stops_at_the_first_step_past_the_budget_validates_checkpoints_and_resumes(
        trainer_config, tmp_path):
    slow, validations = SlowSteps(), ValidationCounter()
    config = trainer_config(max_epochs=50, max_time="00:00:00:02", run_name="t")
    trainer = Trainer(config, callbacks=[slow, validations])
    trainer.fit(ToyTask(ToyConfig(samples=64, batch_size=8)))
    assert trainer.stop_reason.startswith("--max-time 00:00:00:02 ran out after step")
    assert slow.ends[-1] >= 2.0 and (len(slow.ends) == 1 or slow.ends[-2] < 2.0 + 0.05)
    assert trainer.current_epoch < 50 and validations.steps[-1] == trainer.global_step
    state = json.loads((tmp_path / f"logs/toy/t/checkpoints/state-{trainer.current_epoch}.json").read_text())
    assert state["global_step"] == trainer.global_step and state["time"]["used_seconds"] >= 2.0

    keras.backend.clear_session()
    with pytest.raises(UserError, match="already used its whole --max-time 00:00:00:02"):
        Trainer(dataclasses_replace(config, resume=True)).fit(ToyTask(ToyConfig(samples=64, batch_size=8)))
    keras.backend.clear_session()
    more = Trainer(dataclasses_replace(config, resume=True, max_time="00:00:00:01"), callbacks=[SlowSteps()])
    more.fit(ToyTask(ToyConfig(samples=64, batch_size=8)))
    assert more.global_step > trainer.global_step and more.stop_reason.startswith("--max-time 00:00:00:01")


def dataclasses_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


# --- validation schedule -------------------------------------------------------------------------
@pytest.mark.parametrize(("interval", "expected"), [(0.25, [2, 4, 6, 8]), (3, [3, 6, 8]), (None, [8])])
def test_val_check_interval_validates_within_the_epoch(trainer_config, interval, expected):
    counter = ValidationCounter()
    trainer = Trainer(trainer_config(max_epochs=1, val_check_interval=interval, checkpoint=False), callbacks=[counter])
    task = ToyTask(ToyConfig(samples=64, batch_size=8))
    trainer.fit(task)
    assert counter.steps == expected
    # The epoch's train accuracy still covers the whole epoch: it equals Keras's own count over it.
    assert 0.0 < trainer.metrics["train_accuracy"] <= 1.0


def test_check_val_every_n_epoch_skips_epochs_but_validates_the_last(trainer_config):
    counter = ValidationCounter()
    trainer = Trainer(trainer_config(max_epochs=5, check_val_every_n_epoch=2, checkpoint=False), callbacks=[counter])
    trainer.fit(ToyTask(ToyConfig(samples=64, batch_size=32)))
    assert counter.steps == [4, 8, 10]


# --- profiler ------------------------------------------------------------------------------------
def test_simple_profiler_times_each_section_and_writes_them_to_the_report(trainer_config, tmp_path):
    trainer = Trainer(trainer_config(max_epochs=2, profiler="simple", run_name="prof"))
    trainer.fit(ToyTask(ToyConfig(samples=64, batch_size=16)))
    summary = trainer.profiler.summary()
    assert set(summary) == {"data loading", "train step", "validation", "callbacks", "checkpointing"}
    assert summary["train step"]["calls"] == 8 and summary["data loading"]["calls"] == 8
    assert summary["checkpointing"]["calls"] == 2 and summary["validation"]["calls"] == 2
    assert sum(row["seconds"] for row in summary.values()) > 0
    metrics = json.loads((tmp_path / "logs/toy/prof/metrics.json").read_text())
    # What fit prints after the run (teardown included) is what metrics.json recorded.
    assert metrics["profile"] == summary
    assert metrics["stop_reason"] == "reached --max-epochs 2"
    assert "## Profile (--profiler simple)" in (tmp_path / "logs/toy/prof/report.md").read_text()


def test_without_the_profiler_nothing_is_timed(trainer_config):
    trainer = Trainer(trainer_config(max_epochs=1, checkpoint=False))
    trainer.fit(ToyTask(ToyConfig(samples=64)))
    assert not trainer.profiler.enabled and trainer.profiler.summary() == {}


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"precision": "fp8"}, "--precision 'fp8' is unknown; use one of 32, bf16-mixed, 16-mixed"),
    ({"gradient_clip_val": 0.0}, "--gradient-clip-val must be above 0, got 0.0"),
    ({"gradient_clip_val": -1.0}, "--gradient-clip-val must be above 0, got -1.0"),
    ({"gradient_clip_algorithm": "l2"}, "--gradient-clip-algorithm 'l2' is unknown; use one of norm, value"),
    ({"accumulate_grad_batches": 0}, "--accumulate-grad-batches must be at least 1, got 0"),
    ({"max_time": "2h"}, "--max-time '2h' is not DD:HH:MM:SS"),
    ({"max_time": "00:25:00:00"}, "--max-time '00:25:00:00' has an hour above 23"),
    ({"max_time": "00:00:00:00"}, "--max-time '00:00:00:00' is no time at all"),
    ({"val_check_interval": 1.5}, "--val-check-interval 1.5 as a fraction must be in (0, 1]"),
    ({"val_check_interval": 0}, "--val-check-interval must be at least 1 step, got 0"),
    ({"check_val_every_n_epoch": 0}, "--check-val-every-n-epoch must be at least 1, got 0"),
    ({"profiler": "advanced"}, "--profiler 'advanced' is unknown; use one of none, simple"),
    ({"weight_averaging": "polyak"}, "--weight-averaging 'polyak' is unknown; use one of none, ema, swa"),
    ({"ema_decay": 1.0}, "--ema-decay must be between 0 and 1, got 1.0"),
])
def test_bad_loop_options_are_user_errors(options, message):
    with pytest.raises(UserError) as error:
        TrainerConfig(**options)
    assert str(error.value).startswith(message)


def test_max_time_parses_days_to_seconds():
    assert TrainerConfig(max_time="01:02:03:04").max_time_seconds == ((24 + 2) * 60 + 3) * 60 + 4
