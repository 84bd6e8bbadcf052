"""ModelCheckpoint on the toy task: exactly top-k files, best first, the last weights, test --which."""

from __future__ import annotations

import json

import keras
import pytest

from callbacks import ModelCheckpoint
from common.errors import UserError
from tasks.toy.task import ToyConfig, ToyTask
from trainer import Trainer


def test_keeps_exactly_the_k_best_files_and_the_last(trainer_config, tmp_path):
    checkpoint = ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=2, save_last=True)
    trainer = Trainer(trainer_config(max_epochs=4, run_name="k", val_check_interval=0.5), callbacks=[checkpoint])
    trainer.fit(ToyTask(ToyConfig(samples=128, batch_size=32)))
    top = tmp_path / "logs/toy/k/checkpoints/top"
    files = sorted(p.name for p in top.glob("*.weights.h5"))
    index = json.loads((top / "index.json").read_text())
    assert len(files) == 2 and sorted(row["file"] for row in index["kept"]) == files
    assert index["kept"][0]["value"] <= index["kept"][1]["value"]  # best first
    assert (tmp_path / "logs/toy/k/checkpoints/last.weights.h5").exists()
    assert checkpoint.best_model_path == top / index["kept"][0]["file"]


def test_test_which_best_loads_the_best_file_and_last_the_final_weights(trainer_config, tmp_path):
    checkpoint = ModelCheckpoint(monitor="val_accuracy", mode="max", save_top_k=1)
    trainer = Trainer(trainer_config(max_epochs=3, run_name="w"), callbacks=[checkpoint])
    task = ToyTask(ToyConfig(samples=64, learning_rate=0.2))
    trainer.fit(task)
    best = checkpoint.best
    run = tmp_path / "logs/toy/w"
    # The file counts epochs from 1, as the console does ("epoch 3/3"); the index keeps the Trainer's counter.
    assert best["file"].startswith(f"epoch={best['epoch'] + 1:03d}-step=")
    keras.backend.clear_session()
    # The toy task's test split is its validation split: the best file reproduces its recorded score.
    tested = Trainer(trainer_config(run_name="tb")).test(ToyTask(ToyConfig(samples=64)), checkpoint=run, which="best")
    assert tested["accuracy"] == pytest.approx(best["value"], abs=1e-6)
    assert tested["loss"] == pytest.approx(best["metrics"]["val_loss"], rel=1e-5)
    keras.backend.clear_session()
    last = Trainer(trainer_config(run_name="tl")).test(ToyTask(ToyConfig(samples=64)), checkpoint=run, which="last")
    assert last["loss"] == pytest.approx(trainer.metrics["val_loss"], rel=1e-5)


def test_a_resumed_run_keeps_its_record_and_a_fresh_one_drops_it(trainer_config, tmp_path):
    def fit(epochs, resume):
        keras.backend.clear_session()
        checkpoint = ModelCheckpoint(monitor="val_accuracy", save_top_k=1)
        Trainer(trainer_config(max_epochs=epochs, run_name="r", resume=resume), callbacks=[checkpoint]).fit(ToyTask())
        return checkpoint

    first = fit(1, resume=False)
    resumed = fit(2, resume=True)
    assert resumed.best["value"] >= first.best["value"] and len(resumed.kept) == 1
    fresh = fit(1, resume=False)
    assert fresh.best["epoch"] == 0
    assert len(list((tmp_path / "logs/toy/r/checkpoints/top").glob("*.weights.h5"))) == 1


def test_a_monitor_the_task_never_logs_names_the_ones_it_does(trainer_config):
    trainer = Trainer(trainer_config(max_epochs=1), callbacks=[ModelCheckpoint(monitor="val_f1")])
    with pytest.raises(UserError, match=r"monitors 'val_f1', which task toy never logs; it logs: "
                                        r"train_accuracy, train_loss, val_accuracy, val_loss"):
        trainer.fit(ToyTask(ToyConfig(samples=64)))


def test_which_best_without_a_best_file_is_a_user_error(trainer_config, tmp_path):
    Trainer(trainer_config(max_epochs=1, run_name="n")).fit(ToyTask(ToyConfig(samples=64)))
    with pytest.raises(UserError, match="no best checkpoint in .*; fit with --save-top-k 1"):
        Trainer(trainer_config(run_name="nt")).test(ToyTask(ToyConfig(samples=64)), tmp_path / "logs/toy/n", "best")
