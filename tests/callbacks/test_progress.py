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


def test_plain_progress_says_how_long_a_long_run_has_left_and_how_to_shorten_it(trainer_config):
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.long_run_seconds = 0.0  # every toy run counts as long here
    Trainer(trainer_config(max_epochs=12), callbacks=[progress]).fit(ToyTask())
    notes = [line for line in stream.getvalue().splitlines() if " left: " in line]
    # After the first epoch (11 left) and after the tenth (2 left); none once nothing is left.
    assert [note.split(" left: ")[1].split()[0] for note in notes] == ["11", "2"]
    assert "--max-epochs N shortens it" in notes[0]


def test_time_left_follows_the_pace_after_the_first_epoch():
    from callbacks.progress import time_left

    assert time_left([30.0], 4) == 120.0
    assert time_left([30.0, 10.0, 12.0], 5) == 55.0  # the first epoch (tracing) no longer counts
