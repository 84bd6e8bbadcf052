"""The toy task's options, importable without TensorFlow so ``fit toy --help`` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.validation import check_fields


@dataclass(frozen=True)
class ToyConfig:
    # 512 samples in 16 batches: enough steps per epoch to see the loss fall, a second an epoch.
    # At least 4, so that the quarter held out to validate and test holds one sample.
    samples: int = field(default=512, metadata={"help": "Random training samples (a quarter as many validate).",
                                                "min": 4})
    features: int = field(default=16, metadata={"help": "Input features per sample.", "min": 1})
    # One class would make every label the same: nothing to learn.
    classes: int = field(default=4, metadata={"help": "Classes the labels take.", "min": 2})
    hidden: int = field(default=32, metadata={"help": "Units of the hidden layer.", "min": 1})
    learning_rate: float = field(default=1e-2, metadata={"help": "Adam learning rate.", "above": 0})
    batch_size: int = field(default=32, metadata={"help": "Batch size.", "min": 1})

    def __post_init__(self) -> None:
        check_fields(self)
