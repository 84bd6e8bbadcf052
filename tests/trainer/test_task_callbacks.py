"""A task's own callbacks (``configure_callbacks``), merged by the Trainer, and checkpoints made before
the package layout changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from tasks.toy.task import ToyConfig, ToyTask
from trainer import Callback, Trainer

FIXTURES = Path(__file__).resolve().parent / "fixtures"


class Recorder(Callback):
    def __init__(self):
        self.epochs = 0

    def on_train_epoch_end(self, trainer, task):
        self.epochs += 1


class ToyWithCallbacks(ToyTask):
    """Brings its own early stop and checkpoint; the same instances for every stage."""

    def __init__(self, config=None):
        super().__init__(config)
        self.stop = EarlyStopping(monitor="val_loss", patience=50)
        self.checkpoint = ModelCheckpoint(monitor="val_accuracy", save_top_k=1, save_last=False)

    def configure_callbacks(self):
        return [self.checkpoint, self.stop]


def test_task_callbacks_replace_the_users_of_their_type_and_checkpoints_run_last(trainer_config):
    users_stop, recorder, rate = EarlyStopping(monitor="val_loss", patience=1), Recorder(), LearningRateMonitor()
    users_checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1)
    task = ToyWithCallbacks(ToyConfig(samples=64, batch_size=16))
    trainer = Trainer(trainer_config(max_epochs=2, run_name="own"), callbacks=[users_checkpoint, users_stop, recorder,
                                                                              rate])
    trainer.fit(task)
    assert trainer.callbacks == [recorder, rate, task.stop, task.checkpoint]
    assert recorder.epochs == 2 and task.stop.best < float("inf") and task.checkpoint.best["epoch"] in (0, 1)
    trainer.test(task)  # a second stage merges nothing twice
    assert trainer.callbacks == [recorder, rate, task.stop, task.checkpoint]
    state = json.loads(sorted((trainer.run_dir / "checkpoints").glob("state-*.json"))[-1].read_text())
    assert state["callbacks"]["ModelCheckpoint"]["kept"] == task.checkpoint.kept


class AtFitStart(Callback):
    """What the task's callbacks hold when fit starts, after a resumed checkpoint is loaded."""

    def on_fit_start(self, trainer, task):
        self.kept, self.best = list(task.checkpoint.kept), task.stop.best


def test_a_task_callbacks_state_resumes_with_the_run(trainer_config):
    first = ToyWithCallbacks(ToyConfig(samples=64, batch_size=16))
    Trainer(trainer_config(max_epochs=1, run_name="again")).fit(first)
    resumed, probe = ToyWithCallbacks(ToyConfig(samples=64, batch_size=16)), AtFitStart()
    trainer = Trainer(trainer_config(max_epochs=2, run_name="again", resume=True), callbacks=[probe])
    trainer.fit(resumed)
    assert trainer.current_epoch == 2
    assert probe.kept == first.checkpoint.kept and len(probe.kept) == 1
    assert probe.best == first.stop.best < float("inf")


def test_a_checkpoint_written_before_the_layout_change_resumes(trainer_config, tmp_path):
    """``fixtures/toy-before-layout``: two epochs of ToyTask(samples=64, batch_size=16, hidden=8) with
    ModelCheckpoint(save_top_k=1) and EarlyStopping(patience=5), written by main at bd291ba."""
    run = tmp_path / "logs" / "toy" / "before-layout"
    shutil.copytree(FIXTURES / "toy-before-layout", run)
    saved = json.loads((run / "checkpoints" / "state-2.json").read_text())
    checkpoint, stop = ModelCheckpoint(monitor="val_loss", save_top_k=1), EarlyStopping(patience=5)
    trainer = Trainer(trainer_config(max_epochs=3, run_name="before-layout", resume=True, keep_checkpoints=1),
                      callbacks=[checkpoint, stop])
    trainer.fit(ToyTask(ToyConfig(samples=64, batch_size=16, hidden=8)))
    assert trainer.current_epoch == 3 and trainer.global_step == 3 * 4
    early = saved["callbacks"]["EarlyStopping{'min_delta': 0.0, 'mode': 'auto', 'monitor': 'val_loss', 'patience': 5}"]
    assert stop.best <= early["best"] and stop.wait in (0, early["wait"] + 1)
    assert checkpoint.best["value"] <= saved["callbacks"]["ModelCheckpoint"]["kept"][0]["value"]
    assert (run / "checkpoints" / "top" / checkpoint.best["file"]).exists()
