"""The toy task's options, importable without TensorFlow so ``fit toy --help`` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ToyConfig:
    # 512 samples in 16 batches: enough steps per epoch to see the loss fall, a second an epoch.
    samples: int = field(default=512, metadata={"help": "Random training samples (a quarter as many validate)."})
    features: int = field(default=16, metadata={"help": "Input features per sample."})
    classes: int = field(default=4, metadata={"help": "Classes the labels take."})
    hidden: int = field(default=32, metadata={"help": "Units of the hidden layer."})
    learning_rate: float = field(default=1e-2, metadata={"help": "Adam learning rate."})
    batch_size: int = field(default=32, metadata={"help": "Batch size."})
