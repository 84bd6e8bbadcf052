"""The adversarial task's options, importable without TensorFlow so ``fit adversarial --help`` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.shipped import find_model
from trainer.validation import check_fields, model_file_error

DATASETS = ("mnist", "cifar10")
# MNIST and CIFAR-10 each hold 10,000 test images.
LAST_TEST_IMAGE = 9999


@dataclass(frozen=True)
class AdversarialConfig:
    dataset: str = field(default="mnist", metadata={"help": "Data set of the classifier.", "choices": DATASETS})
    retrain: bool = field(default=False, metadata={"help": "Retrain the classifier even if its model file exists."})
    # Test-image indices to attack; None picks them by seed (MNIST: 5 digits, CIFAR-10: 1 image).
    samples: tuple[int, ...] | None = field(
        default=None, metadata={"help": "Test-image indices to attack, e.g. 3,2,1; default: picked by seed.",
                                "min": 0, "max": LAST_TEST_IMAGE, "fix": "e.g. --samples 3,2,1"})
    # A softmax never reaches 1, so an attack asked for it would run all --max-rounds.
    confidence: float = field(default=0.9, metadata={
        "help": "Target confidence that ends an attack.", "above": 0, "below": 1})
    # Median pair: ~28 rounds on MNIST; the slowest of the default 50 needs 941, so 2000 leaves room.
    max_rounds: int = field(default=2000, metadata={"help": "Alternating rounds per attack at most.", "min": 1})
    # A weak pull back toward the image (1e-3) against a strong push to the target (1e-2): with
    # equal rates the two steps cancel and confidence stalls near 0.8.
    generator_lr: float = field(default=1e-3, metadata={"help": "Adam rate pulling f toward the image.", "above": 0})
    composite_lr: float = field(default=1e-2, metadata={"help": "Adam rate pushing C(f) to the target.", "above": 0})
    batch_size: int = field(default=128, metadata={"help": "Batch size of the classifier's training.", "min": 1})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate of the classifier.",
                                                         "above": 0})
    # The classifier file; None means models/<dataset>_cnn.h5. `cli.py test --model` sets it.
    model: str | None = field(
        default=None, metadata={"help": "Classifier (.h5) to attack or test; default: models/<dataset>_cnn.h5.",
                                "check": model_file_error})

    def __post_init__(self) -> None:
        if self.model is not None:  # models/... is also found from another folder, in the installed project
            object.__setattr__(self, "model", str(find_model(self.model)))
        check_fields(self)
