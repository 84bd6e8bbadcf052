"""Progress display: rich bars on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time

from callbacks.callback import Callback


def _format_metrics(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())


class PlainProgress(Callback):
    """One line per epoch and per evaluation; safe for logs and pipes."""

    # A run with more than this left says how long, measured on its own epochs, and how to shorten it.
    long_run_seconds = 120.0

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self._started = 0.0
        self._epoch_seconds: list[float] = []

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_train_epoch_start(self, trainer, task):
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, task):
        seconds = time.perf_counter() - self._started
        epoch = f"epoch {trainer.current_epoch + 1}/{trainer.config.effective.max_epochs}"
        self._print(f"[{task.name}] {epoch} {seconds:.1f}s {_format_metrics(trainer.metrics)}")
        self._epoch_seconds.append(seconds)
        left = trainer.config.effective.max_epochs - trainer.current_epoch - 1
        # Said after this process's first epoch, then every tenth: the estimate follows the measured pace.
        if left and (len(self._epoch_seconds) == 1 or len(self._epoch_seconds) % 10 == 0):
            estimate = time_left(self._epoch_seconds, left)
            if estimate > self.long_run_seconds:
                self._print(f"[{task.name}] about {_duration(estimate)} left: {left} epochs at "
                            f"{estimate / left:.0f} s an epoch, measured on this machine; --max-epochs N "
                            "shortens it, --resume continues it")

    def on_test_epoch_end(self, trainer, task):
        test = {k: v for k, v in trainer.metrics.items() if k.startswith("test_")}
        self._print(f"[{task.name}] test {_format_metrics(test)}")


def time_left(epoch_seconds: list[float], epochs_left: int) -> float:
    """Seconds for ``epochs_left`` more epochs at the pace of the recent ones (the first epoch also traces
    the step, so it counts only until others are measured)."""
    recent = epoch_seconds[1:][-10:] or epoch_seconds
    return epochs_left * sum(recent) / len(recent)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


class RichProgress(Callback):
    """A rich progress bar for epochs and one for the steps of the current epoch.

    The bar is refreshed at a fixed rate by rich, and the step count is pushed only on logged steps,
    so the display never forces a host sync.
    """

    def __init__(self, console=None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self._progress = None
        self._epoch_bar = None
        self._step_bar = None

    def setup(self, trainer, task, stage):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),  # rich's estimate from the measured pace
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            refresh_per_second=4,
            transient=False,
        )
        self._progress.start()
        if stage == "fit":
            self._epoch_bar = self._progress.add_task(
                f"{task.name} epochs", total=trainer.config.effective.max_epochs,
                completed=trainer.current_epoch, metrics="",
            )

    def on_train_epoch_start(self, trainer, task):
        if self._step_bar is not None:
            self._progress.remove_task(self._step_bar)
        total = trainer.num_train_batches
        self._step_bar = self._progress.add_task(f"epoch {trainer.current_epoch + 1}", total=total, metrics="")

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        if trainer.logged_this_step:
            metrics = _format_metrics({k: v for k, v in trainer.metrics.items() if k.startswith("train_")})
            self._progress.update(self._step_bar, completed=batch_idx + 1, metrics=metrics)

    def on_train_epoch_end(self, trainer, task):
        self._progress.update(self._step_bar, completed=trainer.num_train_batches_seen)
        self._progress.update(self._epoch_bar, advance=1, metrics=_format_metrics(trainer.metrics))

    def on_test_epoch_end(self, trainer, task):
        test = {k: v for k, v in trainer.metrics.items() if k.startswith("test_")}
        self.console.print(f"[bold]{task.name}[/] test {_format_metrics(test)}")

    def teardown(self, trainer, task, stage):
        self._stop()

    def on_exception(self, trainer, task, exception):
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._step_bar = None


def make_progress(mode: str) -> Callback | None:
    if mode == "none":
        return None
    if mode == "rich" or (mode == "auto" and sys.stdout.isatty()):
        return RichProgress()
    return PlainProgress()
