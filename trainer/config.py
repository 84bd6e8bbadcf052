"""Frozen configuration of the Trainer; every run writes its resolved copy to its run folder."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from common.errors import UserError
from trainer.validation import check_fields, one_path_component, tf_config_error

STRATEGIES = ("default", "mirrored", "multi-worker")
PROGRESS_MODES = ("auto", "rich", "plain", "none")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
CLIP_ALGORITHMS = ("norm", "value")
PROFILERS = ("none", "simple")
AVERAGING = ("none", "ema", "swa")
# NumPy seeds with an unsigned 32-bit integer (studies add 1 per extra seed).
SEED_MAX = 2**32 - 1
MAX_TIME = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}):(\d{1,2})$")


def _max_time_seconds(text: str) -> float:
    """DD:HH:MM:SS in seconds; a malformed or empty budget raises UserError."""
    message = _max_time_error(text)
    if message:
        raise UserError(f"--max-time {message}")
    days, hours, minutes, seconds = map(int, MAX_TIME.match(text.strip()).groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def _max_time_error(text: str) -> str | None:
    match = MAX_TIME.match(text.strip())
    if match is None:
        return f"{text!r} is not DD:HH:MM:SS; e.g. 00:02:00:00 for two hours"
    days, hours, minutes, seconds = map(int, match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        return f"{text!r} has an hour above 23 or a minute/second above 59; e.g. 01:00:00:00 for 24 hours"
    if days == hours == minutes == seconds == 0:
        return f"{text!r} is no time at all; e.g. 00:00:30:00 for 30 minutes"
    return None


def _swa_start_error(value: int | float) -> str | None:
    if isinstance(value, float) and not 0 <= value <= 1:
        return (f"{value} as a fraction of the epochs must be in [0, 1]; "
                "give an int for an epoch number, e.g. 3")
    if value < 0:
        return f"must be 0 or more, got {value}; e.g. --swa-epoch-start 3 (an epoch) or 0.8 (a fraction)"
    return None


def _val_interval_error(value: int | float) -> str | None:
    if isinstance(value, float) and not 0 < value <= 1:
        return f"{value} as a fraction must be in (0, 1]; give an int for a step count, e.g. 100"
    if isinstance(value, int) and value < 1:
        return f"must be at least 1 step, got {value}; e.g. --val-check-interval 100"
    return None


@dataclass(frozen=True)
class TrainerConfig:
    # Used only when the task has no default_epochs of its own; the CLI gives the task's.
    max_epochs: int = field(default=10, metadata={
        "help": "Epochs to train.", "show_default": "the task's own", "min": 1})
    # None trains on every batch; a small number makes a quick smoke run on real data.
    limit_train_batches: int | None = field(default=None, metadata={
        "help": "Train on at most N batches per epoch.", "min": 1})
    limit_val_batches: int | None = field(default=None, metadata={"help": "Validate on at most N batches.", "min": 1})
    # One batch of training and validation, one epoch, no checkpoints: proves the wiring in seconds.
    fast_dev_run: bool = field(
        default=False, metadata={"help": "One batch, one epoch, no checkpoints: a wiring check."})
    seed: int = field(default=42, metadata={
        "help": "Seeds Python, NumPy and TensorFlow: initial weights and batch order (--deterministic for "
                "identical reruns).", "min": 0, "max": SEED_MAX})
    # One draw proves little: a study that repeats per seed trains each model with seed, seed+1, ...
    # and reports mean and sd. 1 keeps a run one draw (and as fast as before).
    seeds: int = field(default=1, metadata={"help": "Studies train each model once per seed (seed, seed+1, ...) "
                                                    "and report mean and sd.", "min": 1})
    # Off by default: deterministic kernels are slower on some devices and a few ops have none (they raise).
    deterministic: bool = field(default=False, metadata={"help": "TensorFlow op determinism: reruns on the "
                                                                 "same machine give the same metrics."})
    strategy: str = field(default="default", metadata={
        "help": "tf.distribute strategy; multi-worker reads TF_CONFIG.", "choices": STRATEGIES,
        "check": tf_config_error})
    # Metrics are read back from the device only every N steps: one host sync per logged step.
    log_every_n_steps: int = field(
        default=50, metadata={"help": "Read metrics back every N steps (one host sync each).", "min": 1})
    logdir: str = field(default="logs", metadata={
        "help": "TensorBoard root; runs go to <logdir>/<task>/<run-name>/.",
        "any": "a folder that cannot be made or written is named when the run starts"})
    # One folder name, so that no run writes outside <logdir>/<task>/ or into another's sub-folder.
    run_name: str | None = field(default=None, metadata={
        "help": "Run folder name (letters, digits, '.', '-', '_'); default: a timestamp.", "check": one_path_component})
    resume: bool = field(
        default=False, metadata={"help": "Continue the newest run (or --run-name) from its last checkpoint."})
    # Two checkpoints survive a crash during the write of a third.
    keep_checkpoints: int = field(default=2, metadata={"help": "Checkpoints kept in the run folder.", "min": 1})
    checkpoint: bool = field(default=True, metadata={"help": "Checkpoint every epoch (--no-checkpoint: none)."})
    progress: str = field(default="auto", metadata={
        "help": "Progress display; auto picks rich on a terminal.", "choices": PROGRESS_MODES})

    # Full float32 by default: mixed precision pays off only where the hardware has fast bf16/fp16 units.
    precision: str = field(default="32", metadata={
        "help": "32, bf16-mixed or 16-mixed (float16 with dynamic loss scaling); the output layer stays float32.",
        "choices": PRECISIONS})
    # None: no clipping, as Keras and Lightning do by default.
    gradient_clip_val: float | None = field(default=None, metadata={
        "help": "Clip gradients at this value (see --gradient-clip-algorithm).", "above": 0,
        "fix": "omit it to not clip"})
    # Lightning's default: the norm of all gradients together (Keras global_clipnorm).
    gradient_clip_algorithm: str = field(default="norm", metadata={
        "help": "norm: clip the global norm of all gradients; value: clip each element.", "choices": CLIP_ALGORITHMS})
    # 1 applies every batch's gradient; N averages N batches' gradients into one update (Keras's own accumulation).
    accumulate_grad_batches: int = field(default=1, metadata={
        "help": "Average the gradients of N batches into one optimizer update.", "min": 1})
    # Off by default: averaging costs a copy of the weights and changes what validation sees.
    weight_averaging: str = field(default="none", metadata={
        "help": "none, ema (exponential moving average of the weights every step) or swa (equal average per epoch).",
        "choices": AVERAGING})
    # 0.999 is Keras's own default for its optimizers' EMA.
    ema_decay: float = field(default=0.999, metadata={
        "help": "EMA momentum: the weight of the old average per step.", "above": 0, "below": 1})
    # Lightning's default: average over the last 20% of the epochs.
    swa_epoch_start: int | float = field(default=0.8, metadata={
        "help": "SWA starts at this epoch (an int, 0 the first) or this fraction of --max-epochs (a float).",
        "check": _swa_start_error})
    # None: no wall-clock budget.
    max_time: str | None = field(default=None, metadata={
        "help": "Wall-clock budget DD:HH:MM:SS: stop at a step boundary, validate and checkpoint.",
        "check": _max_time_error})
    # None validates at the end of every epoch only; the common case costs nothing extra.
    val_check_interval: int | float | None = field(default=None, metadata={
        "help": "Validate also every N training batches (an int, 100) or fraction of an epoch (a float, 0.25).",
        "check": _val_interval_error})
    check_val_every_n_epoch: int = field(default=1, metadata={"help": "Validate after every N-th epoch.", "min": 1})
    # Off by default: timing every section costs a clock read per step and fetches batches outside the step.
    profiler: str = field(default="none", metadata={
        "help": "simple: seconds in data loading, steps, validation, callbacks, checkpoints, in the report.",
        "choices": PROFILERS})

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def max_time_seconds(self) -> float | None:
        """``max_time`` in seconds, None without a budget."""
        return None if self.max_time is None else _max_time_seconds(self.max_time)

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds a per-seed study trains with: ``seed``, ``seed + 1``, ... (``seeds`` of them)."""
        return tuple(self.seed + offset for offset in range(self.seeds))

    @property
    def effective(self) -> TrainerConfig:
        """The configuration actually run: fast_dev_run narrows epochs and batches.

        The one rule: whatever decides or describes how the run goes (epochs, batches, schedules, estimates,
        model cards) reads ``effective``; ``config`` itself is what was asked for, which config.yaml and
        checkpoints record so that a rerun asks the same."""
        if not self.fast_dev_run:
            return self
        return dataclasses.replace(
            self, max_epochs=1, limit_train_batches=1, limit_val_batches=1, checkpoint=False, log_every_n_steps=1
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
