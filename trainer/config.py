"""Frozen configuration of the Trainer; every run writes its resolved copy to its run folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from trainer.errors import UserError

STRATEGIES = ("default", "mirrored", "multi-worker")
PROGRESS_MODES = ("auto", "rich", "plain", "none")


@dataclass(frozen=True)
class TrainerConfig:
    # Used only when the task has no default_epochs of its own; the CLI gives the task's.
    max_epochs: int = field(default=10, metadata={"help": "Epochs to train.", "show_default": "the task's own"})
    # None trains on every batch; a small number makes a quick smoke run on real data.
    limit_train_batches: int | None = field(default=None, metadata={"help": "Train on at most N batches per epoch."})
    limit_val_batches: int | None = field(default=None, metadata={"help": "Validate on at most N batches."})
    # One batch of training and validation, one epoch, no checkpoints: proves the wiring in seconds.
    fast_dev_run: bool = field(
        default=False, metadata={"help": "One batch, one epoch, no checkpoints: a wiring check."})
    seed: int = field(default=42, metadata={
        "help": "Seeds Python, NumPy and TensorFlow: initial weights and batch order (--deterministic for "
                "identical reruns)."})
    # One draw proves little: a study that repeats per seed trains each model with seed, seed+1, ...
    # and reports mean and sd. 1 keeps a run one draw (and as fast as before).
    seeds: int = field(default=1, metadata={"help": "Studies train each model once per seed (seed, seed+1, ...) "
                                                    "and report mean and sd."})
    # Off by default: deterministic kernels are slower on some devices and a few ops have none (they raise).
    deterministic: bool = field(default=False, metadata={"help": "TensorFlow op determinism: reruns on the "
                                                                 "same machine give the same metrics."})
    strategy: str = field(default="default", metadata={
        "help": "tf.distribute strategy; multi-worker reads TF_CONFIG.", "choices": STRATEGIES})
    # Metrics are read back from the device only every N steps: one host sync per logged step.
    log_every_n_steps: int = field(
        default=50, metadata={"help": "Read metrics back every N steps (one host sync each)."})
    logdir: str = field(default="logs", metadata={"help": "TensorBoard root; runs go to <logdir>/<task>/<run-name>/."})
    run_name: str | None = field(default=None, metadata={"help": "Run folder name; default: a timestamp."})
    resume: bool = field(
        default=False, metadata={"help": "Continue the newest run (or --run-name) from its last checkpoint."})
    # Two checkpoints survive a crash during the write of a third.
    keep_checkpoints: int = field(default=2, metadata={"help": "Checkpoints kept in the run folder."})
    checkpoint: bool = field(default=True, metadata={"help": "Checkpoint every epoch (--no-checkpoint: none)."})
    progress: str = field(default="auto", metadata={
        "help": "Progress display; auto picks rich on a terminal.", "choices": PROGRESS_MODES})

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(f"strategy {self.strategy!r} is unknown; use one of {', '.join(STRATEGIES)}")
        if self.progress not in PROGRESS_MODES:
            raise UserError(f"progress {self.progress!r} is unknown; use one of {', '.join(PROGRESS_MODES)}")
        for name in ("max_epochs", "log_every_n_steps", "keep_checkpoints", "seeds"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("limit_train_batches", "limit_val_batches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds a per-seed study trains with: ``seed``, ``seed + 1``, ... (``seeds`` of them)."""
        return tuple(self.seed + offset for offset in range(self.seeds))

    @property
    def effective(self) -> TrainerConfig:
        """The configuration actually run: fast_dev_run narrows epochs and batches."""
        if not self.fast_dev_run:
            return self
        return dataclasses.replace(
            self, max_epochs=1, limit_train_batches=1, limit_val_batches=1, checkpoint=False, log_every_n_steps=1
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
