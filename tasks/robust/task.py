"""Adversarial training: a classifier that resists L-infinity attacks, on MNIST or CIFAR-10.

The task owns its ``train_step``: each batch is replaced by its adversarial version (FGSM from a
random start, "fast" training after Wong et al. 2020, or PGD after Madry et al. 2018) and the model
is trained on that. The Trainer stays generic. Two parts make the cheap FGSM route safe:

- a one-cycle learning rate and an epsilon that ramps up over the first epochs;
- a guard against catastrophic overfitting: after every epoch, PGD accuracy on a fixed held-out
  batch; if it falls far below its best, the weights of the last good epoch come back and the run
  stops (FGSM training can collapse in one epoch into a model that only resists FGSM).

``fit`` also evaluates the test split, clean accuracy on all of it and accuracy under the strong
evaluation (PGD-50 with cross-entropy and with the margin loss, 10 random restarts each, the worst
case per image) on its first ``eval_images`` images, and exports the model with its JSON card:
``<run>/<dataset>_robust.h5`` always, ``models/<dataset>_robust.h5`` for a full run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from callbacks.model_checkpoint import ModelCheckpoint
from common.errors import UserError
from data.datasets import load_cifar10, load_mnist
from tasks.robust.attacks import AttackConfig, perturb, random_uniform, robust_mask, strong_attacks, trades_perturb
from tasks.robust.config import RECIPES, RobustConfig  # noqa: F401 (bench/robust.py reads RECIPES here)
from trainer import Task
from trainer.export import load_model_file, read_model_card, save_model_atomic, write_model_card
from trainer.shipped import find_model


@dataclass
class CollapseGuard:
    """Watches PGD accuracy on a held-out batch; a drop of more than ``tolerance`` below the best is a collapse."""

    tolerance: float = 0.2
    best: float = -1.0
    last_good_epoch: int = -1
    history: list = field(default_factory=list)

    def check(self, epoch: int, accuracy: float) -> bool:
        """Records the epoch's accuracy; True when training has collapsed."""
        self.history.append({"epoch": epoch, "pgd_accuracy": accuracy})
        if self.best >= 0 and accuracy < self.best - self.tolerance:
            return True
        self.best = max(self.best, accuracy)
        self.last_good_epoch = epoch
        return False

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def one_cycle(progress: float, peak: float, warmup: float = 0.4) -> float:
    """Learning rate at ``progress`` in [0, 1]: linear from 0 to ``peak`` and back to 0."""
    if progress < warmup:
        return peak * progress / warmup
    return peak * max(0.0, (1 - progress) / (1 - warmup))


def build_mnist_model(width: int = 32) -> keras.Model:
    """Wong et al.'s MNIST net at twice the width: stride-2 convolutions, 0.84M parameters (width 32).

    Madry et al.'s larger CNN costs five times the compute per step, more than 2 shared cores allow.
    """
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(width, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(2 * width, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ], name="mnist_robust")


def build_cifar10_model(width: int = 48) -> keras.Model:
    """Three conv-pool blocks (width, 2 x width, 4 x width filters) and no batch norm: 0.99M parameters at 48.

    Batch norm's moving statistics lagged the fast-changing weights of adversarial training, so the
    inference-mode model (the one attacks and users see) trailed the training-mode one by 25 points.
    """
    layers = [keras.Input((32, 32, 3))]
    for filters in (width, 2 * width, 4 * width):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"),
               keras.layers.Dense(10, activation="softmax")]
    return keras.Sequential(layers, name="cifar10_robust")


def random_crop_and_flip(x, pad: int = 4, seed=None):
    """Per-image random translation by up to ``pad`` pixels and horizontal flip (zero padding);
    drawn from ``seed`` (a ``keras.random.SeedGenerator``) when given."""
    size = tf.shape(x)[1]
    count = tf.shape(x)[0]
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = random_uniform((count, 2), 0, 2 * pad + 1, seed, dtype=tf.int32)
    full = tf.cast(size + 2 * pad - 1, tf.float32)
    start = tf.cast(offsets, tf.float32) / full
    end = tf.cast(offsets + size - 1, tf.float32) / full
    boxes = tf.concat([start, end], axis=1)
    crops = tf.image.crop_and_resize(padded, boxes, tf.range(count), tf.stack([size, size]), method="nearest")
    flip = random_uniform((count, 1, 1, 1), 0.0, 1.0, seed) < 0.5
    return tf.where(flip, tf.reverse(crops, axis=[2]), crops)


class RobustTask(Task):
    name = "robust"
    Config = RobustConfig

    def __init__(self, config: RobustConfig | None = None) -> None:
        super().__init__(config)
        recipe = self.config.recipe
        self.batch_size = self.config.batch_size or recipe.batch_size
        self.default_epochs = recipe.epochs
        self.train_attack = self._training_attack()
        self.eval_attacks = strong_attacks(self.config.budget, restarts=self.config.eval_restarts)
        # The guard runs every epoch on 500 images, so it uses the cheaper 10-step PGD.
        self.guard_attack = AttackConfig.pgd(self.config.budget, steps=10)
        self.guard = CollapseGuard()
        # --keep-best-guard: the Trainer's ModelCheckpoint keeps the best held-out PGD epoch (and resumes it).
        self.best_guard = ModelCheckpoint(monitor="val_pgd_accuracy", mode="max", save_top_k=1, save_last=False) \
            if self.config.keep_best_guard else None
        self.export_path: Path | None = None
        self._arrays: dict | None = None
        self._good_weights = None
        self._checksums: dict = {}
        # Summed over resumed runs too: the time the shipped model really took to train.
        self.training_seconds = 0.0
        self._epoch_started = 0.0

    @classmethod
    def from_options(cls, options: dict) -> RobustTask:
        """As Task.from_options; `test --model` without --dataset takes the data set from the model's card."""
        if options.get("model") and not options.get("dataset"):
            options = {**options, "dataset": dataset_of_model(find_model(options["model"])) or "mnist"}
        return super().from_options(options)

    # --- configuration ------------------------------------------------------------------------
    def _training_attack(self) -> AttackConfig:
        eps, recipe = self.config.budget, self.config.recipe
        if self.config.attack == "fgsm":
            return AttackConfig.fast(eps)
        return AttackConfig.pgd(eps, recipe.train_pgd_steps, recipe.train_pgd_step_size * eps / recipe.epsilon)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "epsilon": self.config.budget, "batch_size": self.batch_size,
                "train_attack": asdict(self.train_attack), "eval_attacks": [asdict(a) for a in self.eval_attacks],
                "guard_attack": asdict(self.guard_attack), "recipe": asdict(self.config.recipe)}

    # --- model --------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        if self.config.model is not None:
            model = load_model_file(self.config.model)
        else:
            build = build_mnist_model if self.config.dataset == "mnist" else build_cifar10_model
            model = build(self.config.filters)
        self._check_input_shape(model)
        model.compile(optimizer=keras.optimizers.Adam(self.config.recipe.max_learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self._epsilon = tf.Variable(self.config.budget, trainable=False, dtype=tf.float32, name="epsilon")
        # Augmentation, random starts and the guard's attack draw from generators a checkpoint keeps,
        # so --resume continues their streams exactly.
        self._seed = keras.random.SeedGenerator()
        self._guard_seed = keras.random.SeedGenerator()
        self._strong_accuracy = keras.metrics.Mean(name="strong_accuracy")
        # A custom step does not feed Keras's own loss tracker, so the task keeps the running mean.
        self._train_loss = keras.metrics.Mean(name="loss")
        return model

    def _check_input_shape(self, model) -> None:
        expected = self.config.recipe.input_shape
        if tuple(model.input_shape[1:]) != expected:
            raise UserError(f"model {self.config.model} takes inputs {model.input_shape[1:]}, but "
                            f"{self.config.dataset} images are {expected}; pass the matching --dataset")

    # --- data ---------------------------------------------------------------------------------
    def _data(self) -> dict:
        if self._arrays is None:
            loaded = (load_mnist if self.config.dataset == "mnist" else load_cifar10)(self.data_dir)
            self._checksums = dict(loaded.checksums)
            x_train, y_train = (self.prepare(a) for a in loaded.splits["train"])
            x_test, y_test = (self.prepare(a) for a in loaded.splits["test"])
            held = self.config.recipe.validation_size
            self._arrays = {"train": (x_train[:-held], y_train[:-held]), "val": (x_train[-held:], y_train[-held:]),
                            "test": (x_test, y_test)}
        return self._arrays

    def prepare(self, array: np.ndarray) -> np.ndarray:
        """Images to float32 in [0, 1] with a channel axis; labels to int64."""
        if array.ndim == 1:
            return array.astype(np.int64)
        images = array.astype(np.float32) / 255.0
        return images[..., None] if images.ndim == 3 else images

    def train_data(self):
        return self._data()["train"]

    def val_data(self):
        return self._data()["val"]

    def test_data(self):
        """Test images, labels, and whether the strong evaluation attacks the image (the first eval_images)."""
        x, y = self._data()["test"]
        return x, y, np.arange(len(y)) < self.config.eval_images

    @property
    def strong_images(self) -> int:
        return min(self.config.eval_images, len(self._data()["test"][1]))

    def guard_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed held-out batch of the collapse guard: the first 500 validation images."""
        x, y = self._data()["val"]
        return x[:500], y[:500]

    def data_checksums(self) -> dict:
        return dict(self._checksums)

    # --- steps --------------------------------------------------------------------------------
    def train_step(self, batch) -> dict:
        x, y = batch
        if self.config.recipe.augment:
            x = random_crop_and_flip(x, seed=self._seed)
        if self.config.trades_beta:
            adversarial, tape, predictions, loss = self._trades_loss(x, y)
        else:
            adversarial = perturb(self.model, x, y, self.train_attack, epsilon=self._epsilon, seed=self._seed)
            with tf.GradientTape() as tape:
                predictions = self.model(adversarial, training=True)
                loss = self.model.compute_loss(x=adversarial, y=y, y_pred=predictions, training=True)
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.model.optimizer.apply(gradients, self.model.trainable_variables)
        # compute_loss divides by the replica count for the gradient sum; the reported loss is per sample.
        self._train_loss.update_state(loss * tf.distribute.get_strategy().num_replicas_in_sync)
        # train_accuracy is accuracy on the adversarial batch the step trained on.
        return {**self.model.compute_metrics(adversarial, y, predictions), "loss": self._train_loss.result()}

    def _trades_loss(self, x, y):
        """TRADES: the adversarial batch, the tape that recorded the loss, the adversarial predictions, and
        CE(clean) + beta x KL(clean || adversarial) (one training forward pass of each batch)."""
        attack = self.train_attack
        clean = tf.stop_gradient(self.model(x, training=False))
        step = self._epsilon * (attack.step_size / attack.epsilon)
        adversarial = trades_perturb(self.model, x, clean, self._epsilon, attack.steps, step, seed=self._seed)
        with tf.GradientTape() as tape:
            natural = self.model(x, training=True)
            predictions = self.model(adversarial, training=True)
            natural_loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, natural))
            divergence = tf.reduce_mean(keras.losses.kl_divergence(natural, predictions))
            # Divided by the replica count, as compute_loss does, so the replicas' gradients sum to the mean.
            loss = (natural_loss + self.config.trades_beta * divergence) / \
                tf.distribute.get_strategy().num_replicas_in_sync
        return adversarial, tape, predictions, loss

    def test_step(self, batch) -> dict:
        """Clean loss and accuracy; on the flagged images, accuracy under the strong evaluation's worst case."""
        x, y, attacked = batch
        clean = self.model.test_step((x, y))
        # Unflagged images are dropped before the attack, so the rest of the test split costs nothing.
        robust = robust_mask(self.model, tf.boolean_mask(x, attacked), tf.boolean_mask(y, attacked), self.eval_attacks)
        self._strong_accuracy.update_state(tf.cast(robust, tf.float32))
        return {**clean, "strong_accuracy": self._strong_accuracy.result()}

    # --- hooks --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"guard": self.guard.state_dict(), "training_seconds": self.training_seconds}

    def load_state_dict(self, state: dict) -> None:
        self.guard.load_state_dict(state["guard"])
        self.training_seconds = state["training_seconds"]

    def on_train_batch_start(self, trainer, task, batch_idx: int) -> None:
        # Two scalar writes per step, negligible next to the attack's extra forward and backward pass.
        total = trainer.config.effective.max_epochs * max(trainer.num_train_batches or 1, 1)
        progress = min(trainer.global_step / total, 1.0)
        self.model.optimizer.learning_rate.assign(one_cycle(progress, self.config.recipe.max_learning_rate))
        ramp_steps = self.config.recipe.epsilon_ramp * total
        ramped = min(1.0, (trainer.global_step + 1) / ramp_steps) if ramp_steps else 1.0
        self._epsilon.assign(self.config.budget * ramped)

    def on_fit_start(self, trainer, task) -> None:
        # A resumed run starts from its newest checkpoint, which the guard had accepted.
        self._good_weights = self.model.get_weights()

    def on_train_epoch_start(self, trainer, task) -> None:
        self._epoch_started = time.perf_counter()
        self._train_loss.reset_state()

    def on_test_epoch_start(self, trainer, task) -> None:
        self._strong_accuracy.reset_state()

    def validation_metrics(self, trainer) -> dict:
        """The guard's reading, ``val_pgd_accuracy``: PGD-10 accuracy on the first 500 validation images."""
        from tasks.robust.attacks import accuracy_under_attack

        x, y = self.guard_batch()
        return {"pgd_accuracy": accuracy_under_attack(self.model, x, y, self.guard_attack, seed=self._guard_seed)}

    def configure_callbacks(self) -> list:
        return [self.best_guard] if self.best_guard is not None else []

    def on_fit_end(self, trainer, task) -> None:
        best = self.best_guard.best_model_path if self.best_guard is not None else None
        if best is not None and best.exists():
            self.model.load_weights(best)
            print(f"kept epoch {self.best_guard.best['epoch'] + 1}: best held-out PGD accuracy "
                  f"{self.best_guard.best['value']:.4f}")

    def on_train_epoch_end(self, trainer, task) -> None:
        self.training_seconds += time.perf_counter() - self._epoch_started
        if not trainer.validated_this_epoch:
            return
        accuracy = trainer.metrics["val_pgd_accuracy"]
        if self.guard.check(trainer.current_epoch, accuracy):
            self.model.set_weights(self._good_weights)
            trainer.should_stop = True
            print(f"catastrophic overfitting: held-out PGD accuracy fell to {accuracy:.3f} from {self.guard.best:.3f}; "
                  f"rolled back to the weights of epoch {self.guard.last_good_epoch} and stopped")
        else:
            self._good_weights = self.model.get_weights()

    # --- the whole job ------------------------------------------------------------------------
    def run(self, trainer) -> dict:
        trainer.fit(self)
        trainer.test(self)  # collective under multi-worker: every worker takes part, only the chief exports
        if trainer.is_chief:
            self.export(trainer)
        return dict(trainer.metrics)

    def export(self, trainer) -> Path:
        """Saves the model and its card to the run folder, and to models/ when the run was a full one."""
        config = trainer.config.effective
        name = f"{self.config.dataset}_robust.h5"
        full_run = not config.fast_dev_run and config.limit_train_batches is None
        targets = [trainer.run_dir / name] + ([Path("models") / name] if full_run else [])
        card = self.model_card(trainer)
        for target in targets:
            save_model_atomic(self.model, target, include_optimizer=False)
            write_model_card(target, card)
        self.export_path = targets[-1]
        print(f"exported {', '.join(str(t) for t in targets)}")
        return self.export_path

    def model_card(self, trainer) -> dict:
        return {
            "task": self.name, "dataset": self.config.dataset, "seed": trainer.config.seed,
            "epochs": trainer.current_epoch, "training_seconds": round(self.training_seconds, 1),
            "width": self.config.filters, "parameters": self.model.count_params(),
            "metrics": {k: v for k, v in trainer.metrics.items() if k.startswith(("test_", "val_"))},
            "train_attack": asdict(self.train_attack),
            "strong_evaluation": {"attacks": [a.describe() for a in self.eval_attacks],
                                  "images": self.strong_images, "worst_case_per_image": True},
            "collapse_guard": self.guard.state_dict(), "data_checksums": self.data_checksums(),
            "trades_beta": self.config.trades_beta,
            "kept_epoch": (self.best_guard.best or {}).get("epoch") if self.best_guard is not None else None,
            "preprocessing": {"scale": 1 / 255, "input_shape": list(self.config.recipe.input_shape)},
        }

    def results(self, trainer) -> dict:
        return {**trainer.metrics, "guard_history": self.guard.history}

    def report_sections(self, trainer) -> list[tuple[str, str]]:
        rows = "\n".join(f"| {h['epoch']} | {h['pgd_accuracy']:.3f} |" for h in self.guard.history)
        if not rows:
            return []
        text = (f"Training attack: {self.train_attack.describe()}. Held-out guard: {self.guard_attack.describe()} "
                f"on 500 validation images.\n\n| epoch | PGD accuracy |\n|---|---|\n{rows}")
        return [("Adversarial training", text)]


def dataset_of_model(path: str) -> str | None:
    """The data set named in a model's JSON card, if it has one."""
    try:
        return read_model_card(path).get("dataset")
    except UserError:
        return None
