"""The Trainer's side of "a run folder belongs to one run": what a failed start removes, and what it keeps."""

from __future__ import annotations

import pytest

from common.errors import UserError
from tasks.toy.config import ToyConfig
from tasks.toy.task import ToyTask
from trainer import Trainer


class BreaksAtBuild(ToyTask):
    name = "toy"

    def __init__(self, error: Exception) -> None:
        super().__init__(ToyConfig(samples=64))
        self.error = error

    def build_model(self):
        raise self.error


@pytest.mark.parametrize("error", [UserError("a mistake"), RuntimeError("a bug")])
def test_a_start_that_fails_removes_the_folders_it_made(trainer_config, tmp_path, error):
    with pytest.raises(type(error)):
        Trainer(trainer_config(run_name="broken")).fit(BreaksAtBuild(error))
    assert not (tmp_path / "logs").exists()


def test_a_failed_resume_keeps_the_folder_it_did_not_make(trainer_config, tmp_path):
    Trainer(trainer_config(max_epochs=1, run_name="kept")).fit(ToyTask(ToyConfig(samples=64)))
    before = sorted(p.name for p in (tmp_path / "logs/toy/kept").iterdir())
    with pytest.raises(UserError):
        Trainer(trainer_config(max_epochs=2, run_name="kept", resume=True)).fit(BreaksAtBuild(UserError("no")))
    assert sorted(p.name for p in (tmp_path / "logs/toy/kept").iterdir()) == before


def test_a_failure_after_the_first_checkpoint_keeps_the_run(trainer_config, tmp_path):
    class BreaksInEpoch2(ToyTask):
        name = "toy"

        def on_train_epoch_start(self, trainer, task):
            if trainer.current_epoch == 1:
                raise UserError("stopped by a test")

    with pytest.raises(UserError):
        Trainer(trainer_config(max_epochs=2, run_name="half")).fit(BreaksInEpoch2(ToyConfig(samples=64)))
    assert (tmp_path / "logs/toy/half/checkpoints/checkpoint").exists()


def test_an_exclusive_trainer_refuses_a_folder_that_holds_a_run_and_takes_one_that_holds_only_a_lock(
        trainer_config, tmp_path):
    Trainer(trainer_config(max_epochs=1, run_name="a")).fit(ToyTask(ToyConfig(samples=64)))
    with pytest.raises(UserError, match="already holds a training; continue it with --resume"):
        Trainer(trainer_config(max_epochs=1, run_name="a"), exclusive=True).fit(ToyTask(ToyConfig(samples=64)))
    (tmp_path / "logs/toy/b/workers").mkdir(parents=True)  # another worker of the same job got there first
    (tmp_path / "logs/toy/b/.lock").write_text("")
    trainer = Trainer(trainer_config(max_epochs=1, run_name="b"), exclusive=True)
    trainer.fit(ToyTask(ToyConfig(samples=64)))
    assert trainer.run_dir == tmp_path / "logs/toy/b" and (trainer.run_dir / "metrics.json").exists()
