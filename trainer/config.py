"""Frozen configuration of the Trainer; every run writes its resolved copy to its run folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from trainer.errors import UserError

STRATEGIES = ("default", "mirrored", "multi-worker")
PROGRESS_MODES = ("auto", "rich", "plain", "none")


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 10
    # None trains on every batch; a small number makes a quick smoke run on real data.
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None
    # One batch of training and validation, one epoch, no checkpoints: proves the wiring in seconds.
    fast_dev_run: bool = False
    seed: int = 42
    # One draw proves little: a study that repeats per seed trains each model with seed, seed+1, ...
    # and reports mean and sd. 1 keeps a run one draw (and as fast as before).
    seeds: int = field(default=1, metadata={"help": "Studies train each model once per seed (seed, seed+1, ...) "
                                                    "and report mean and sd."})
    # Off by default: deterministic kernels are slower on some devices and a few ops have none (they raise).
    deterministic: bool = field(default=False, metadata={"help": "TensorFlow op determinism: reruns on the "
                                                                 "same machine give the same metrics."})
    strategy: str = "default"
    # Metrics are read back from the device only every N steps: one host sync per logged step.
    log_every_n_steps: int = 50
    logdir: str = "logs"
    run_name: str | None = None
    resume: bool = False
    # Two checkpoints survive a crash during the write of a third.
    keep_checkpoints: int = 2
    checkpoint: bool = True
    progress: str = "auto"

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
