"""The emotion task's options, importable without TensorFlow so ``fit emotion --help`` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.emotion_tuning import TUNERS, TunerConfig
from trainer.errors import UserError
from trainer.shipped import find_model


@dataclass(frozen=True)
class EmotionConfig:
    # 64 gives twice the updates of 128 per epoch at about the same CPU cost per image.
    batch_size: int = field(default=64, metadata={"help": "Batch size."})
    tune: bool = field(default=False, metadata={"help": "Search the architecture with KerasTuner first."})
    # Random search with fewer, longer trials: Hyperband's one-epoch rounds ranked noise (every
    # trial near the majority-class rate); a whole short cosine schedule per trial ranks.
    tuner: str = field(default="random", metadata={"help": "Search algorithm.", "choices": TUNERS})
    # Random and Bayesian search: trials at most; the --tune-minutes budget usually ends it first.
    max_trials: int = field(default=12, metadata={"help": "Trials for bayesian/random search, at most."})
    # Each trial is a full cosine schedule on the --tune-faces subset.
    tune_epochs: int = field(default=5, metadata={"help": "Epochs per trial (Hyperband: the most)."})
    # About 30 minutes on a laptop CPU; kept in <run>/search/budget.json, so it holds across --resume.
    tune_minutes: float = field(
        default=30.0, metadata={"help": "Wall-clock minutes for the whole search, across --resume."})
    # A fixed class-stratified fifth of Training: a trial costs about one full-data epoch and every
    # trial sees the same faces. --limit-train-batches also applies.
    tune_faces: int = field(default=6000, metadata={"help": "Training faces per trial (fixed stratified subset)."})
    # The noise floor a difference between trials must beat.
    tune_seeds: int = field(
        default=2, metadata={"help": "Extra seeds of the default network trained to measure the seed spread."})
    # `test --model`: an exported .h5 (its JSON card beside it) to evaluate instead of a new network.
    model: str | None = field(
        default=None, metadata={"help": "An exported model (.h5) to evaluate, e.g. models/emotion.h5."})
    # Class weights count**-power: 0.5 lifts disgust (436 training faces) 4x over happy without
    # the accuracy loss of full inverse-frequency weights.
    class_weight_power: float = field(default=0.5, metadata={"help": "Class weights count**-power; 0 turns them off."})
    # Stop when PublicTest accuracy has not improved for this many epochs; the best epoch is kept.
    stop_patience: int = field(
        default=10, metadata={"help": "Epochs without a better PublicTest accuracy before training stops."})
    # Cosine decay per epoch from the searched learning rate down to this fraction of it.
    final_lr_fraction: float = field(
        default=0.02, metadata={"help": "Cosine decay ends at this fraction of the learning rate."})
    # Where the shipped model goes; it is replaced only by a model with better PublicTest accuracy.
    export_dir: str | None = field(
        default="models", metadata={"help": "Folder of the exported model, replaced only by a better one."})

    def __post_init__(self) -> None:
        if self.model is not None:  # models/... is also found from another folder, in the installed project
            object.__setattr__(self, "model", str(find_model(self.model)))
        if self.tune_faces < 7:
            raise UserError(f"--tune-faces must be at least 7 (one face a class), got {self.tune_faces}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.model is not None and not str(self.model).endswith((".h5", ".keras")):
            raise UserError(f"--model {self.model} must be an .h5 or .keras file, e.g. models/emotion.h5")
        self.tuner_config()  # validates the search options

    def tuner_config(self, seed: int = 42) -> TunerConfig:
        return TunerConfig(self.tuner, self.max_trials, self.tune_epochs, seed=seed, minutes=self.tune_minutes,
                           seed_repeats=self.tune_seeds)
