"""The vanishing-gradient study: MNIST MLPs of several depths and activations, trained side by side.

``python cli.py fit deep-mlp`` trains every (depth, activation) model of the grid with a child
Trainer (``trainer.spawn``), so each model's curves land in TensorBoard under the one run folder,
then writes the study's table, figures and report into that folder (see ``tasks.deep_mlp.study``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from callbacks.gradients import GradientHistogram, GradientProbe
from common.errors import UserError
from common.files import write_atomic
from data.datasets import load_mnist
from tasks.deep_mlp.activations import ACTIVATIONS
from tasks.deep_mlp.config import DeepMLPConfig
from trainer import Task
from trainer.export import save_model_atomic, write_model_card

CLASSES = 10


@dataclass
class MNISTSplits:
    """Flattened images in [0, 1] (not standardized) and one-hot labels, for train/validation/test."""

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    checksums: dict

    @classmethod
    def from_arrays(cls, train, test, validation_samples: int, checksums: dict | None = None) -> MNISTSplits:
        x, y = _prepare(*train)
        if not 0 < validation_samples < len(x):
            raise UserError(f"validation_samples {validation_samples} must be between 1 and {len(x) - 1}")
        cut = len(x) - validation_samples
        return cls((x[:cut], y[:cut]), (x[cut:], y[cut:]), _prepare(*test), dict(checksums or {}))


def _prepare(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = images.reshape(len(images), -1).astype("float32") / 255.0
    return x, keras.utils.to_categorical(labels, CLASSES).astype("float32")


class DeepMLPTask(Task):
    """The study: one ``MLPTask`` per (depth, activation), trained in turn with the same seed; with
    ``--seeds N`` the grid is trained once per seed and the table reports mean and sd."""

    name = "deep-mlp"
    Config = DeepMLPConfig
    # The study's analysis point; --max-epochs trains longer.
    default_epochs = 3
    # Repeats its grid for each of --seeds N seeds (TrainerConfig.run_seeds).
    runs_per_seed = True

    def __init__(self, config: DeepMLPConfig | None = None, splits: MNISTSplits | None = None) -> None:
        super().__init__(config)
        self.batch_size = self.config.batch_size
        self._splits = splits

    @property
    def splits(self) -> MNISTSplits:
        if self._splits is None:
            mnist = load_mnist(self.data_dir)
            self._splits = MNISTSplits.from_arrays(mnist["train"], mnist["test"], self.config.validation_samples,
                                                   mnist.checksums)
        return self._splits

    def grid(self) -> list[tuple[int, str]]:
        return [(depth, activation) for depth in self.config.depths for activation in self.config.activations]

    def member(self, depth: int, activation: str) -> MLPTask:
        config = dataclasses.replace(self.config, depths=(depth,), activations=(activation,))
        return MLPTask(config, self.splits, self.probe_batch())

    def probe_batch(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.splits.train
        return x[: self.config.probe_samples], y[: self.config.probe_samples]

    def data_checksums(self) -> dict:
        return self.splits.checksums

    def run(self, trainer) -> dict:
        from tasks.deep_mlp.study import Study, announce

        study = Study(self, trainer.resolve_run_dir(self))
        seeds, grid = trainer.config.run_seeds, self.grid()
        # Seed by seed: an interrupted run holds whole grids, and --resume skips what finished.
        for round_index, seed in enumerate(seeds):
            for index, (depth, activation) in enumerate(grid, start=1):
                announce(f"[{self.name}] model {round_index * len(grid) + index}/{len(seeds) * len(grid)}: "
                         f"{depth} hidden layers, {activation}, seed {seed}")
                folder = self.member_folder(depth, activation, seed, len(seeds))
                result = self.train_member(trainer, depth, activation, seed, folder)
                if result is not None:  # None on a worker that is not the chief
                    study.add(result)
        study.write()
        return study.metrics()

    @staticmethod
    def member_folder(depth: int, activation: str, seed: int, seeds: int) -> str:
        """``<depth>-<activation>`` for a one-seed run (as before seeds existed), else under ``seed-<N>/``."""
        label = f"{depth}-{activation}"
        return label if seeds == 1 else f"seed-{seed}/{label}"

    def train_member(self, trainer, depth: int, activation: str, seed: int | None = None,
                     folder: str | None = None) -> dict | None:
        """Fits, tests and exports one model of the grid in ``<run>/<folder>``; returns its results."""
        member = self.member(depth, activation)
        child = trainer.spawn(self, folder or member.label, seed=seed)
        child.fit(member)
        child.test(member)  # collective under multi-worker: every worker takes part, only the chief exports
        if not child.is_chief:
            return None
        member.export(child)
        return {**member.result(child), "folder": folder or member.label}

    # The study trains no model of its own: each grid cell is an MLPTask.
    def build_model(self):
        raise UserError("deep-mlp trains one model per grid cell; run it with `python cli.py fit deep-mlp`")


class MLPTask(Task):
    """One model of the study: ``depth`` hidden Dense layers of one activation, softmax output, SGD."""

    name = "deep-mlp"
    Config = DeepMLPConfig

    # False leaves out the gradient histograms: a baseline for their cost (bench/deep_mlp.py).
    log_gradients = True

    def __init__(self, config: DeepMLPConfig, splits: MNISTSplits, probe_batch: tuple) -> None:
        super().__init__(config)
        if len(config.depths) != 1 or len(config.activations) != 1:
            raise ValueError("an MLPTask is one model: give exactly one depth and one activation")
        self.depth, self.activation = config.depths[0], config.activations[0]
        self.batch_size = config.batch_size
        self.splits = splits
        self.probe_batch = probe_batch
        self.history: list[dict] = []
        self.untrained_gradients: dict[str, float] = {}
        self.trained_gradients: dict[str, float] = {}

    @property
    def label(self) -> str:
        return f"{self.depth}-{self.activation}"

    def build_model(self) -> keras.Model:
        c = self.config
        activation = ACTIVATIONS[self.activation]
        hidden = [keras.layers.Dense(c.hidden_units, activation=activation, name=f"hidden_{i:02d}")
                  for i in range(1, self.depth + 1)]
        model = keras.Sequential([keras.Input((self.splits.train[0].shape[1],)), *hidden,
                                  keras.layers.Dense(CLASSES, activation="softmax", name="output")],
                                 name=f"mlp_{self.depth}_{self.activation}")
        model.compile(optimizer=keras.optimizers.SGD(c.learning_rate), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def train_data(self):
        return self.splits.train

    def val_data(self):
        return self.splits.validation

    def test_data(self):
        return self.splits.test

    def data_checksums(self) -> dict:
        return self.splits.checksums

    # --- hooks ------------------------------------------------------------------------------
    def configure_callbacks(self) -> list:
        if not self.log_gradients:
            return []
        return [GradientHistogram(self.probe_batch, every_n_steps=self.config.grad_every)]

    def setup(self, trainer, task, stage):
        if stage == "fit":
            # Runs before a resumed checkpoint is restored, so these are always the initial weights.
            self.untrained_gradients = GradientProbe(self.model, *self.probe_batch).max_abs()

    def on_fit_start(self, trainer, task):
        path = trainer.run_dir / "history.json"
        if trainer.current_epoch and path.exists():
            self.history = json.loads(path.read_text())[: trainer.current_epoch]

    def on_train_epoch_end(self, trainer, task):
        keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
        self.history.append({"epoch": trainer.current_epoch + 1, **{k: trainer.metrics[k] for k in keys}})
        write_atomic(trainer.run_dir / "history.json", json.dumps(self.history, indent=2))

    def on_fit_end(self, trainer, task):
        self.trained_gradients = GradientProbe(self.model, *self.probe_batch).max_abs()

    # --- results ----------------------------------------------------------------------------
    def export(self, trainer) -> Path:
        """Saves ``model.h5`` and its card into the model's folder (``lecun`` loads back by name)."""
        path = save_model_atomic(self.model, trainer.run_dir / "model.h5")
        write_model_card(path, {"task": self.name, "depth": self.depth, "activation": self.activation,
                                "seed": trainer.config.seed, "epochs": trainer.current_epoch,
                                "metrics": {k: v for k, v in trainer.metrics.items() if k.startswith("test_")},
                                "data": self.splits.checksums,
                                "preprocessing": "flatten 28x28 to 784, divide by 255, no standardization"})
        return path

    def result(self, trainer) -> dict:
        return {"depth": self.depth, "activation": self.activation, "seed": trainer.config.seed,
                "test_loss": trainer.metrics["test_loss"], "test_accuracy": trainer.metrics["test_accuracy"],
                "epochs": trainer.current_epoch, "steps": trainer.global_step, "seconds": trainer.fit_seconds,
                "history": self.history,
                "untrained_gradients": list(self.untrained_gradients.values()),
                "trained_gradients": list(self.trained_gradients.values())}
