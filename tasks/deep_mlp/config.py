"""The deep-mlp study's options, importable without TensorFlow so ``fit deep-mlp --help`` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.validation import check_fields, listed_once

# The keys of tasks.deep_mlp.activations.ACTIVATIONS (a test keeps them equal); that module imports Keras.
ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "lecun")
MNIST_TRAIN = 60000


@dataclass(frozen=True)
class DeepMLPConfig:
    depths: tuple[int, ...] = field(default=(5, 20, 40), metadata={
        "help": "Hidden-layer counts, e.g. 5,20,40.", "min": 1, "check": listed_once})
    activations: tuple[str, ...] = field(default=ACTIVATION_NAMES, metadata={
        "help": "e.g. relu,tanh,sigmoid,lecun.", "choices": ACTIVATION_NAMES, "check": listed_once})
    # bench/deep_mlp.py grad-cost, depth 40: every 100 steps costs 1.04x an epoch's CPU time, every 10 1.43x.
    grad_every: int = field(default=100, metadata={"help": "Gradient histograms every N steps.", "min": 1})
    # The study's setting: plain SGD on mini-batches of Keras's default size.
    batch_size: int = field(default=32, metadata={"help": "Batch size.", "min": 1})
    hidden_units: int = field(default=32, metadata={"help": "Units of each hidden layer.", "min": 1})
    learning_rate: float = field(default=0.01, metadata={"help": "SGD learning rate.", "above": 0})
    # The last 5,000 training images validate, as Keras's validation_split=1/12 would pick them.
    # At most all but one of MNIST's 60,000 training images (a smaller data folder is checked when it loads).
    validation_samples: int = field(default=5000, metadata={
        "help": "Training images held out for validation.", "min": 1, "max": MNIST_TRAIN - 1})
    # The first images of the training split: one fixed batch, the same for every model.
    probe_samples: int = field(default=128, metadata={
        "help": "Images in the fixed gradient-probe batch.", "min": 1, "max": MNIST_TRAIN})

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(self.depths))
        object.__setattr__(self, "activations", tuple(self.activations))
        check_fields(self)
