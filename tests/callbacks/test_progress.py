"""Progress displays: rich bars into a capture console, plain lines into a stream."""

from __future__ import annotations

import io

from rich.console import Console

from callbacks.progress import PlainProgress, RichProgress, make_progress
from tasks.toy.task import ToyTask
from trainer import Trainer


def test_rich_progress_renders_epochs_and_metrics(trainer_config):
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    trainer = Trainer(trainer_config(max_epochs=2, log_every_n_steps=4), callbacks=[RichProgress(console)])
    trainer.fit(ToyTask())
    screen = console.file.getvalue()
    assert "toy epochs" in screen and "2/2" in screen
    assert "val_accuracy=" in screen


def test_plain_progress_prints_one_line_per_epoch(trainer_config):
    stream = io.StringIO()
    task = ToyTask()
    trainer = Trainer(trainer_config(max_epochs=3), callbacks=[PlainProgress(stream)])
    trainer.fit(task)
    trainer.test(task)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1:3] for line in lines[:3]] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
    assert lines[3].startswith("[toy] test test_loss=")


def test_auto_mode_picks_plain_without_a_terminal(capsys):
    assert isinstance(make_progress("auto"), PlainProgress)  # pytest's stdout is not a TTY
    assert make_progress("none") is None
