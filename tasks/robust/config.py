"""The robust task's options and per-data-set recipes, importable without TensorFlow (``fit robust --help``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.shipped import find_model
from trainer.validation import check_fields, model_file_error

DATASETS = ("mnist", "cifar10")
TRAINING_ATTACKS = ("fgsm", "pgd")
# MNIST and CIFAR-10 each hold 10,000 test images.
TEST_IMAGES = 10000


@dataclass(frozen=True)
class Recipe:
    """What differs between the data sets; each default is the literature's or what fits 2 CPU cores."""

    epsilon: float
    # PGD training is the expensive option: (steps + 1) gradient passes per batch.
    train_pgd_steps: int
    train_pgd_step_size: float
    epochs: int
    batch_size: int
    max_learning_rate: float
    # Fraction of training during which epsilon grows linearly from 0 (avoids early collapse).
    epsilon_ramp: float
    validation_size: int
    augment: bool
    input_shape: tuple[int, ...]
    # Filters of the network's first convolution; each later convolution doubles them.
    width: int


RECIPES = {
    # MNIST PGD training: 10 steps of 2.5 eps / 10, a quarter of Madry's PGD-40 cost.
    "mnist": Recipe(epsilon=0.3, train_pgd_steps=10, train_pgd_step_size=0.075, epochs=10, batch_size=100,
                    max_learning_rate=5e-3, epsilon_ramp=0.25, validation_size=5000, augment=False,
                    input_shape=(28, 28, 1), width=32),
    "cifar10": Recipe(epsilon=8 / 255, train_pgd_steps=7,
                      train_pgd_step_size=2 / 255, epochs=25, batch_size=128, max_learning_rate=2e-3,
                      epsilon_ramp=0.15, validation_size=1000, augment=True, input_shape=(32, 32, 3),
                      width=48),
}


@dataclass(frozen=True)
class RobustConfig:
    dataset: str = field(default="mnist", metadata={"help": "Data set to train on.", "choices": DATASETS})
    # fgsm means FGSM from a random start with step 1.25 epsilon: one gradient per batch, PGD's robustness.
    attack: str = field(default="fgsm", metadata={"help": "Adversarial training attack.", "choices": TRAINING_ATTACKS})
    epsilon: float | None = field(  # None: the data set's budget (0.3 MNIST, 8/255 CIFAR-10); pixels are in [0, 1]
        default=None, metadata={"help": "L-infinity budget (default 0.3 MNIST, 8/255 CIFAR-10).", "above": 0,
                                "max": 1, "fix": "e.g. --epsilon 0.3 (MNIST) or 0.0314 (8/255, CIFAR-10)"})
    batch_size: int | None = field(default=None, metadata={"help": "Batch size; default: the data set's recipe.",
                                                           "min": 1, "fix": "e.g. --batch-size 128"})
    # Robustness needs capacity (Madry et al. 2018, figure 4): the cost per step grows with its square.
    width: int | None = field(default=None, metadata={
        "help": "Filters of the first convolution, doubling per layer (default 32 MNIST, 48 CIFAR-10).", "min": 1,
        "fix": "e.g. --width 96"})
    # TRADES (Zhang et al. 2019): cross-entropy on the clean batch plus beta x KL(clean || adversarial), the
    # adversary maximising that KL with --attack's steps. Their beta is 6; it trades clean for robust accuracy.
    trades_beta: float = field(default=0.0, metadata={
        "help": "TRADES: train on CE(clean) + beta x KL(clean||adversarial) (the paper's beta: 6); 0: CE on the "
                "adversarial batch (PGD/FGSM training).", "min": 0, "fix": "e.g. --trades-beta 6"})
    # Rice et al. (2020): robust accuracy peaks, then falls as training overfits; keep the best epoch.
    keep_best_guard: bool = field(default=False, metadata={
        "help": "Keep the epoch with the best held-out PGD accuracy (val_pgd_accuracy) instead of the last."})
    model: str | None = field(  # `test robust --model`: an exported model to evaluate
        default=None, metadata={"help": "An exported model (.h5) to evaluate; its card gives the data set.",
                                "check": model_file_error})
    # 1,000 images keep the strong test pass to minutes on 2 CPU cores (20 PGD-50 runs per image).
    eval_images: int = field(default=1000, metadata={
        "help": "First N test images attacked by the strong evaluation (clean accuracy uses all).", "min": 0,
        "max": TEST_IMAGES})
    # Wong et al. (2020) evaluate with 10 restarts of PGD-50.
    eval_restarts: int = field(default=10, metadata={
        "help": "Random restarts of each strong-evaluation attack (PGD-50 cross-entropy and margin loss).", "min": 1})

    def __post_init__(self) -> None:
        if self.model is not None:  # models/... is also found from another folder, in the installed project
            object.__setattr__(self, "model", str(find_model(self.model)))
        check_fields(self)

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self.dataset]

    @property
    def filters(self) -> int:
        return self.recipe.width if self.width is None else self.width

    @property
    def budget(self) -> float:
        return self.recipe.epsilon if self.epsilon is None else self.epsilon


