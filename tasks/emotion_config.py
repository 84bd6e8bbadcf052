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
    tuner: str = field(default="hyperband", metadata={"help": "Search algorithm.", "choices": TUNERS})
    # The defaults finish in minutes on a laptop CPU; the shipped model needed --max-epochs 28.
    max_trials: int = field(default=4, metadata={"help": "Trials for bayesian/random search."})
    # Hyperband with 3 epochs at most runs 5 trials (3 of them stopped after one epoch).
    tune_epochs: int = field(default=3, metadata={"help": "Epochs per trial (Hyperband: the most)."})
    # Batches each trial trains on per epoch: a short look is enough to rank architectures.
    # --limit-train-batches overrides it (and also shortens the final training).
    tune_batches: int = field(default=100, metadata={"help": "Training batches per trial epoch."})
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
        if self.tune_batches < 1:
            raise UserError(f"--tune-batches must be at least 1, got {self.tune_batches}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.model is not None and not str(self.model).endswith((".h5", ".keras")):
            raise UserError(f"--model {self.model} must be an .h5 or .keras file, e.g. models/emotion.h5")
        TunerConfig(self.tuner, self.max_trials, self.tune_epochs)  # validates the search options
