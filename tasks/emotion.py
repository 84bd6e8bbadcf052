"""FER2013 emotion recognition: a CNN searched with KerasTuner, trained on Training, selected on
PublicTest, reported once on PrivateTest, and exported to ``models/emotion.h5`` + JSON + TFLite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from tasks.emotion_config import EmotionConfig
from tasks.emotion_eval import class_report, confusion_figure, export_tflite, report_markdown, tflite_accuracy
from tasks.emotion_model import EmotionHyperModel, MacroF1, class_weights, compile_emotion_model, make_augmentation
from tasks.emotion_tuning import (
    TunerConfig,
    distributed_role,
    make_tuner,
    run_search,
    top_trials,
    trials_markdown,
    trials_table,
)
from tasks.face_preprocessing import FacePreprocessing, preprocess_faces
from trainer import Task
from trainer.datasets import FER_CLASSES, load_fer2013
from trainer.errors import UserError
from trainer.export import load_model_file, read_model_card, save_model_atomic, write_model_card
from trainer.files import atomic_path
from trainer.model_checkpoint import ModelCheckpoint

SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


class EmotionTask(Task):
    """7-class facial expression CNN on FER2013 (48x48 grey faces)."""

    name = "emotion"
    description = "FER2013 emotion CNN, KerasTuner search, .h5 + TFLite export"
    Config = EmotionConfig
    # About 80 s an epoch on 2 cores: a default run finishes in minutes; long budgets are flags.
    default_epochs = 5

    def __init__(self, config: EmotionConfig | None = None) -> None:
        super().__init__(config)
        self.batch_size = self.config.batch_size
        self.preprocessing = FacePreprocessing()
        self.hyperparameters: keras_tuner.HyperParameters | None = None
        self.augmentation = None
        self.evaluation: dict | None = None
        self.search_rows: list[dict] = []
        self.exported: list[str] = []
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._checksums: dict[str, str] = {}
        self._weights = None
        # The best PublicTest epoch is kept by the Trainer's ModelCheckpoint, driven by this task's hooks.
        self.checkpoint = ModelCheckpoint(monitor="val_accuracy", mode="max", save_top_k=1, save_last=False)

    # --- data ---------------------------------------------------------------------------------
    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A split as (float32 faces from the shared preprocessing, int64 labels), loaded once."""
        if self._splits is None:
            dataset = load_fer2013(self.data_dir)
            missing = [s for s in SPLITS.values() if s not in dataset.splits]
            if missing:
                raise UserError(f"{dataset.source} has no {', '.join(missing)} rows; the emotion task needs "
                                "the Usage column's Training, PublicTest and PrivateTest splits")
            self._splits = {s: (preprocess_faces(x, self.preprocessing), y) for s, (x, y) in dataset.splits.items()}
            self._checksums = dataset.checksums
        return self._splits[SPLITS[name]]

    def train_data(self):
        return self.split("train")

    def val_data(self):
        return self.split("val")

    def test_data(self):
        return self.split("test")

    def data_checksums(self) -> dict:
        return dict(self._checksums)

    # --- model --------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        if self.config.model:
            return self._load_exported(Path(self.config.model))
        hp = self.hyperparameters or keras_tuner.HyperParameters()
        model = EmotionHyperModel(self.preprocessing.input_shape).build(hp)
        self.hyperparameters = hp
        self.augmentation = make_augmentation()
        return model

    def _load_exported(self, path: Path) -> keras.Model:
        card = read_model_card(path)
        self.preprocessing = FacePreprocessing.from_dict(card.get("preprocessing", {}))
        model = load_model_file(path, custom_objects={"MacroF1": MacroF1})
        if tuple(model.input_shape[1:]) != self.preprocessing.input_shape:
            raise UserError(f"model {path} takes {model.input_shape[1:]} but its card's preprocessing gives "
                            f"{self.preprocessing.input_shape}; re-export the model with `fit emotion`")
        return compile_emotion_model(model)

    def train_step(self, batch) -> dict:
        x, y = batch
        # Augmentation and class weights run in the step, so the exported model is the bare classifier.
        return self.model.train_step((self.augmentation(x, training=True), y, self._sample_weights(y)))

    def _sample_weights(self, y):
        if self._weights is None:
            self._weights = class_weights(self.split("train")[1], self.config.class_weight_power)
        return tf.gather(self._weights, y)

    def hparams(self) -> dict:
        values = dict(self.hyperparameters.values) if self.hyperparameters else {}
        return {**super().hparams(), **{k: v for k, v in values.items() if not k.startswith("tuner/")}}

    # --- the whole job ------------------------------------------------------------------------
    def run(self, trainer) -> dict:
        """Searches (with --tune), retrains the best network, tests on PrivateTest, exports."""
        if self.config.tune and not self.search(trainer):
            return {}  # a distributed worker: its trials are done
        trainer.fit(self)
        if not trainer.is_chief:
            return dict(trainer.metrics)
        if self._best:
            print(f"kept epoch {self._best['epoch'] + 1}: best PublicTest accuracy {self._best['val_accuracy']:.4f}")
        trainer.test(self)
        self.export(trainer)
        return dict(trainer.metrics)

    def search(self, trainer) -> bool:
        """Runs the KerasTuner search in ``<run>/search``; False on a distributed worker (its job ends here)."""
        from rich.console import Console

        config = TunerConfig(self.config.tuner, self.config.max_trials, self.config.tune_epochs,
                             seed=trainer.config.seed)
        role = distributed_role()
        run_dir = trainer.resolve_run_dir(self)
        keras.utils.set_random_seed(trainer.config.seed)
        tuner = make_tuner(EmotionHyperModel(self.preprocessing.input_shape), config, run_dir)
        limits = trainer.config.effective
        run_search(tuner, config, self._tuning_data("train", limits.limit_train_batches or self.config.tune_batches),
                   self._tuning_data("val", limits.limit_val_batches), run_dir / "search" / "tensorboard")
        if role == "worker":
            return False
        self.search_rows = top_trials(tuner)
        if not self.search_rows:
            raise UserError(f"the search in {run_dir / 'search'} finished no trial; see the errors above")
        console = Console()
        # Without a terminal rich assumes 80 columns and truncates the hyperparameter names.
        (console if console.is_terminal else Console(width=160)).print(trials_table(self.search_rows))
        self.hyperparameters = tuner.get_best_hyperparameters(1)[0]
        keras.backend.clear_session()
        return True

    def _tuning_data(self, name: str, limit: int | None):
        """Batched tf.data for KerasTuner's ``model.fit``: the same augmentation and weights as ``train_step``."""
        x, y = self.split(name)
        data = tf.data.Dataset.from_tensor_slices((x, y))
        if name == "train":
            augmentation = make_augmentation()
            data = data.shuffle(len(x), seed=0).batch(self.batch_size).map(
                lambda xb, yb: (augmentation(xb, training=True), yb, self._sample_weights(yb)),
                num_parallel_calls=tf.data.AUTOTUNE)
        else:
            data = data.batch(self.batch_size)
        if limit is not None:
            data = data.take(limit)
        return data.prefetch(tf.data.AUTOTUNE)

    # --- hooks: schedule, selection on PublicTest, PrivateTest evaluation ----------------------
    @property
    def _best(self) -> dict | None:
        best = self.checkpoint.best
        if best is None:
            return None
        return {"epoch": best["epoch"], "val_accuracy": best["value"],
                "val_macro_f1": best["metrics"].get("val_macro_f1")}

    def setup(self, trainer, task, stage) -> None:
        self.checkpoint.setup(trainer, task, stage)

    def on_fit_start(self, trainer, task) -> None:
        self.checkpoint.on_fit_start(trainer, task)

    def on_validation_epoch_end(self, trainer, task) -> None:
        self.checkpoint.on_validation_epoch_end(trainer, task)

    def state_dict(self) -> dict:
        return {"checkpoint": self.checkpoint.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.checkpoint.load_state_dict(state.get("checkpoint", {}))

    def on_train_epoch_start(self, trainer, task) -> None:
        base = float(self.hyperparameters.get("learning_rate")) if self.hyperparameters else 1e-3
        progress = trainer.current_epoch / max(1, trainer.config.effective.max_epochs - 1)
        floor = self.config.final_lr_fraction
        self.model.optimizer.learning_rate = base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

    def on_train_epoch_end(self, trainer, task) -> None:
        if self._best and trainer.current_epoch - self._best["epoch"] >= self.config.stop_patience:
            trainer.should_stop = True

    def on_fit_end(self, trainer, task) -> None:
        best = self.checkpoint.best_model_path
        if best is not None and best.exists():
            self.model.load_weights(best)

    def on_test_epoch_end(self, trainer, task) -> None:
        confusion = _macro_f1_metric(self.model).confusion.numpy()
        self.evaluation = class_report(confusion, FER_CLASSES)
        figure = confusion_figure(confusion, FER_CLASSES)
        trainer.logger.log_figure("confusion_matrix", figure, trainer.current_epoch, split="test")
        if trainer.run_dir is not None:
            with atomic_path(trainer.run_dir / "confusion_matrix.png") as tmp:
                figure.savefig(tmp, dpi=100)
        import matplotlib.pyplot as plt

        plt.close(figure)

    # --- export -------------------------------------------------------------------------------
    def export(self, trainer) -> Path:
        """Writes ``.keras`` (run folder), then ``.h5`` + JSON card + ``.tflite`` to models/ or the run folder.

        The ``.keras`` copy goes first: saving ``.h5`` in Keras 3.15 drops the optimizer from the
        model's compile config in memory.
        """
        run_dir = trainer.run_dir
        save_model_atomic(self.model, run_dir / "emotion.keras")
        card = self.model_card(trainer)
        target = self._export_target(trainer, card["metrics"]["public_test_accuracy"])
        model_path = save_model_atomic(_inference_copy(self.model), target / "emotion.h5")
        tflite = export_tflite(self.model, target / "emotion.tflite")
        card["metrics"]["private_test_accuracy_tflite"] = tflite_accuracy(tflite, *self.split("test"))
        write_model_card(model_path, {**card, "tflite": "emotion.tflite", "tflite_quantization": "dynamic-range int8"})
        self.exported = [str(model_path), str(model_path.with_suffix(".json")), str(target / "emotion.tflite")]
        print(f"exported {', '.join(self.exported)}")
        return model_path

    def _export_target(self, trainer, public_accuracy: float) -> Path:
        if self.config.export_dir is None or trainer.config.fast_dev_run:
            return trainer.run_dir
        target = Path(self.config.export_dir)
        shipped = target / "emotion.json"
        if shipped.exists():
            previous = json.loads(shipped.read_text()).get("metrics", {}).get("public_test_accuracy", 0.0)
            if previous >= public_accuracy:
                print(f"kept {target / 'emotion.h5'}: its PublicTest accuracy {previous:.4f} is not below "
                      f"this run's {public_accuracy:.4f}; this model is exported to {trainer.run_dir}")
                return trainer.run_dir
        return target

    def model_card(self, trainer) -> dict:
        metrics = trainer.metrics
        evaluation = self.evaluation or {}
        public = self._best["val_accuracy"] if self._best else metrics.get("val_accuracy", 0.0)
        return {
            "task": self.name,
            "classes": list(FER_CLASSES),
            "input_shape": list(self.preprocessing.input_shape),
            "preprocessing": self.preprocessing.to_dict(),
            "metrics": {
                "private_test_accuracy": metrics.get("test_accuracy"),
                "private_test_macro_f1": metrics.get("test_macro_f1"),
                "private_test_loss": metrics.get("test_loss"),
                "public_test_accuracy": public,
                "per_class": evaluation.get("per_class"),
                "confusion_matrix": evaluation.get("confusion_matrix"),
            },
            "data": self.data_checksums(),
            "seed": trainer.config.seed,
            "architecture": {k: v for k, v in self.hyperparameters.values.items() if not k.startswith("tuner/")},
            "parameters": int(self.model.count_params()),
            "training": {"epochs": trainer.current_epoch, "best_epoch": (self._best or {}).get("epoch"),
                         "fit_seconds": round(trainer.fit_seconds, 1), "batch_size": self.batch_size,
                         "class_weight_power": self.config.class_weight_power, "tuned": self.config.tune,
                         "run": trainer.run_dir.name},
        }

    # --- reporting ----------------------------------------------------------------------------
    def results(self, trainer) -> dict:
        results = dict(trainer.metrics)
        if self.evaluation:
            results["private_test"] = self.evaluation
        if self._best:
            results["best_epoch"] = self._best
        return results

    def report_sections(self, trainer) -> list[tuple[str, str]]:
        sections = []
        if self.search_rows:
            sections.append(("Architecture search (top trials)", trials_markdown(self.search_rows)))
        if self.evaluation:
            body = report_markdown(self.evaluation) + "\n\n![confusion matrix](confusion_matrix.png)"
            sections.append(("PrivateTest per class", body))
        return sections


def _macro_f1_metric(model) -> MacroF1:
    """The model's MacroF1 instance, also when Keras nests compiled metrics in a container."""
    stack = list(model.metrics)
    while stack:
        metric = stack.pop()
        if isinstance(metric, MacroF1):
            return metric
        stack.extend(getattr(metric, "metrics", []))
    raise UserError("the emotion model was compiled without its macro_f1 metric; build it with compile_emotion_model")


def _inference_copy(model) -> keras.Model:
    """The trained network with a fresh, unbuilt optimizer: the .h5 then holds no Adam moments (a third the size)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return compile_emotion_model(copy)
