"""The emotion task: FER2013's splits, the CNN and its training step and schedule, selection on
PublicTest, one report on PrivateTest; the search is in ``search.py``, the export in ``export.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from callbacks.model_checkpoint import ModelCheckpoint
from common.errors import UserError
from common.files import atomic_path
from data.datasets import FER_CLASSES, load_fer2013
from tasks.emotion.config import EmotionConfig
from tasks.emotion.evaluation import class_report, confusion_figure, in_training_mask, report_markdown
from tasks.emotion.export import (
    JudgingFaces,
    choose_test_time_augmentation,
    crop_record,
    export_target,
    inference_copy,
    write_export,
)
from tasks.emotion.model import (
    EmotionHyperModel,
    LabelAccuracy,
    MacroF1,
    class_weights,
    compile_emotion_model,
    make_augmentation,
)
from tasks.emotion.preprocessing import FacePreprocessing, preprocess_faces
from tasks.emotion.search import SearchResult, run_search, search_plan, signal_line, trials_markdown
from trainer import Task
from trainer.export import load_model_file, read_model_card, save_model_atomic
from trainer.validation import other_task_model_error

SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


class EmotionTask(Task):
    """7-class facial expression CNN on FER2013 (48x48 grey faces)."""

    name = "emotion"
    Config = EmotionConfig
    # The shipped recipe's one cosine schedule (about 95 s an epoch in bf16 on 2 cores); --max-epochs 5
    # is the quick run.
    default_epochs = 70

    def __init__(self, config: EmotionConfig | None = None) -> None:
        super().__init__(config)
        self.batch_size = self.config.batch_size
        self.preprocessing = FacePreprocessing()
        self.hyperparameters: keras_tuner.HyperParameters | None = None
        self.augmentation = None
        self.evaluation: dict | None = None
        self.search_result: SearchResult | None = None
        self.train_indices: np.ndarray | None = None
        self.exported: list[str] = []
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._checksums: dict[str, str] = {}
        self._weights = None
        self._subset: tuple[np.ndarray, np.ndarray] | None = None
        self._in_training: dict[str, np.ndarray] = {}
        self._clean_accuracy: LabelAccuracy | None = None
        # Keeps the best PublicTest epoch; the Trainer runs it (configure_callbacks) and resumes its state.
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
            training = dataset.splits["Training"][0]
            self._in_training = {s: in_training_mask(x, training) for s, (x, _) in dataset.splits.items()
                                 if s != "Training"}
        return self._splits[SPLITS[name]]

    def train_data(self):
        x, y = self.split("train")
        if self.train_indices is None:
            return x, y
        if self._subset is None:  # one pair of arrays per task: the Trainer converts them once
            self._subset = (x[self.train_indices], y[self.train_indices])
        return self._subset

    def tuning_indices(self) -> np.ndarray:
        """The fixed, class-stratified subset of Training every trial trains on (independent of the seed)."""
        labels = self.split("train")[1]
        order = np.random.default_rng(0).permutation(len(labels))
        share = min(1.0, self.config.tune_faces / len(labels))
        picked = [order[labels[order] == c][:max(1, round(share * np.sum(labels == c)))] for c in np.unique(labels)]
        return np.sort(np.concatenate(picked))

    def val_data(self):
        return self.split("val")

    def test_data(self):
        x, y = self.split("test")
        # The third array marks the faces byte-identical to Training faces, for the clean accuracy.
        return x, y, self.in_training("test").astype(np.float32)

    def test_step(self, batch) -> dict:
        """The compiled metrics on every face, plus ``accuracy_not_in_training`` on the faces that are
        not copies of Training faces (288 of FER2013's 3,589 PrivateTest faces are)."""
        x, y, in_training = batch
        outputs = dict(self.model.test_step((x, y)))
        self._clean_accuracy.update_state(y, self.model(x, training=False), sample_weight=1.0 - in_training)
        outputs["accuracy_not_in_training"] = self._clean_accuracy.result()
        return outputs

    def on_test_epoch_start(self, trainer, task) -> None:
        self._clean_accuracy.reset_state()

    def in_training(self, name: str) -> np.ndarray:
        """Which faces of split ``name`` are byte-identical to Training faces (none before the splits load)."""
        return self._in_training.get(SPLITS[name], np.zeros(0, bool))

    def data_checksums(self) -> dict:
        return dict(self._checksums)

    # --- model --------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        self._clean_accuracy = LabelAccuracy(name="accuracy_not_in_training")  # in the strategy's scope
        if self.config.model:
            return self._load_exported(Path(self.config.model))
        hp = self.hyperparameters or keras_tuner.HyperParameters()
        model = self.hypermodel().build(hp)
        self.hyperparameters = hp
        self.augmentation = make_augmentation(self.config.rotation_degrees, self.config.framing_zoom,
                                              self.config.framing_shift)
        return model

    def hypermodel(self) -> EmotionHyperModel:
        """The search space, its defaults this task's options: what ``build_model`` and the search build from."""
        return EmotionHyperModel(self.preprocessing.input_shape, defaults=self.config)

    def _load_exported(self, path: Path) -> keras.Model:
        card = read_model_card(path)
        wrong = other_task_model_error(path, self.name)
        if wrong:
            raise UserError(wrong)
        self.preprocessing = FacePreprocessing.from_dict(card.get("preprocessing", {}))
        model = load_model_file(path)
        if tuple(model.input_shape[1:]) != self.preprocessing.input_shape:
            raise UserError(f"model {path} takes {model.input_shape[1:]} but its card's preprocessing gives "
                            f"{self.preprocessing.input_shape}; re-export the model with `fit emotion`")
        return compile_emotion_model(model)

    def train_step(self, batch) -> dict:
        x, y = batch
        # Flips, a rotation and class weights run in the step, so the exported model is the bare
        # classifier; the random crop is the model's FaceCrop layer (the centre crop at inference).
        x = self.augmentation(x, training=True)
        if not self.config.class_weight_power:
            return self.model.train_step((x, y))
        return self.model.train_step((x, y, self._sample_weights(y)))

    def _sample_weights(self, y):
        if self._weights is None:
            self._weights = class_weights(self.split("train")[1], self.config.class_weight_power)
        return tf.gather(self._weights, y)

    def hparams(self) -> dict:
        values = dict(self.hyperparameters.values) if self.hyperparameters else {}
        return {**super().hparams(), **{k: v for k, v in values.items() if not k.startswith("tuner/")}}

    # --- the whole job ------------------------------------------------------------------------
    def run(self, trainer) -> dict:
        """Searches (with --tune), trains the pick on every Training face, tests on PrivateTest, exports."""
        if self.config.tune:
            if trainer.is_chief:
                epochs = trainer.config.effective.max_epochs
                print(search_plan(self.config.tuner_config(), self.config.tune_faces, epochs), flush=True)
            if not self.search(trainer):
                return {}  # a distributed worker: its trials are done
        trainer.fit(self)
        if self._best and trainer.is_chief:
            print(f"kept epoch {self._best['epoch'] + 1}: best PublicTest accuracy {self._best['val_accuracy']:.4f}")
        trainer.test(self)  # collective under multi-worker: every worker takes part, only the chief exports
        if trainer.is_chief:
            self.export(trainer)
        return dict(trainer.metrics)

    def search(self, trainer) -> bool:
        """Runs the KerasTuner search in ``<run>/search`` and keeps its pick; False on a distributed worker."""
        result = run_search(self, trainer)
        if result is None:
            return False
        self.search_result, self.hyperparameters = result, result.hyperparameters
        return True

    def judging_faces(self) -> JudgingFaces:
        return JudgingFaces(self.split("val"), self.split("test"), self.in_training("test"))

    def export(self, trainer) -> list:
        """Writes ``emotion.keras`` (run folder), then ``.h5`` + card + ``.tflite`` to --export-dir when
        it beats the shipped model on PublicTest, else to the run folder.

        The ``.keras`` copy goes first: saving ``.h5`` in Keras 3.15 drops the optimizer from the
        model's compile config in memory.
        """
        save_model_atomic(self.model, trainer.run_dir / "emotion.keras")
        # The selection reads the PublicTest faces validation read (--limit-val-batches narrows both).
        limit = trainer.config.effective.limit_val_batches
        shipped, card = choose_test_time_augmentation(inference_copy(self.model), self.model_card(trainer),
                                                      self.judging_faces(),
                                                      None if limit is None else limit * self.batch_size)
        export_dir = None if trainer.config.fast_dev_run else self.config.export_dir
        target = export_target(export_dir, trainer.run_dir, card["metrics"]["public_test_accuracy"])
        self.exported = [str(p) for p in write_export(shipped, card, self.judging_faces(), target)]
        return self.exported

    def model_card(self, trainer) -> dict:
        """The card's account of this run: metrics, data, recipe, search and training."""
        metrics, evaluation, best, hp = trainer.metrics, self.evaluation or {}, self._best, self.hyperparameters
        return {
            "task": self.name,
            "classes": list(FER_CLASSES),
            "input_shape": list(self.preprocessing.input_shape),
            "preprocessing": {**self.preprocessing.to_dict(), **crop_record(self.model)},
            "metrics": {
                "private_test_accuracy": metrics.get("test_accuracy"),
                "private_test_macro_f1": metrics.get("test_macro_f1"),
                "private_test_loss": metrics.get("test_loss"),
                # Faces byte-identical to a Training face are left out of this one (FER2013 duplicates).
                "private_test_accuracy_not_in_training": metrics.get("test_accuracy_not_in_training"),
                "private_test_in_training": int(self.in_training("test").sum()),
                "public_test_accuracy": best["val_accuracy"] if best else metrics.get("val_accuracy", 0.0),
                "per_class": evaluation.get("per_class"),
                "confusion_matrix": evaluation.get("confusion_matrix"),
            },
            "data": self.data_checksums(),
            "seed": trainer.config.seed,
            "architecture": {k: v for k, v in hp.values.items() if not k.startswith("tuner/")},
            "search": self.search_result.summary if self.search_result else None,
            "parameters": int(self.model.count_params()),
            "training": {"epochs": trainer.current_epoch, "best_epoch": (best or {}).get("epoch"),
                         "fit_seconds": round(trainer.fit_seconds, 1), "batch_size": self.batch_size,
                         "class_weight_power": self.config.class_weight_power, "tuned": self.config.tune,
                         "precision": trainer.config.precision, "optimizer": "SGD nesterov momentum 0.9",
                         "learning_rate": hp.get("learning_rate"), "weight_decay": hp.get("weight_decay"),
                         "label_smoothing": hp.get("label_smoothing"),
                         "warmup_epochs": self.config.warmup_epochs, "schedule": "warm-up, then one cosine",
                         "final_lr_fraction": self.config.final_lr_fraction,
                         "framing_zoom": self.config.framing_zoom, "framing_shift": self.config.framing_shift,
                         "rotation_degrees": self.config.rotation_degrees,
                         "max_epochs": trainer.config.effective.max_epochs, "run": trainer.run_dir.name},
        }

    def trial(self, hp) -> EmotionTask:
        """A copy of this task for one search trial: ``hp`` on the fixed tuning subset, sharing the loaded faces."""
        trial = EmotionTask(self.config)
        trial.data_dir, trial.preprocessing = self.data_dir, self.preprocessing
        trial._splits, trial._checksums = self._splits, self._checksums
        trial.hyperparameters = hp
        trial.train_indices = self.tuning_indices()
        return trial

    # --- hooks: schedule, selection on PublicTest, PrivateTest evaluation ----------------------
    @property
    def _best(self) -> dict | None:
        best = self.checkpoint.best
        if best is None:
            return None
        return {"epoch": best["epoch"], "val_accuracy": best["value"],
                "val_macro_f1": best["metrics"].get("val_macro_f1")}

    def configure_callbacks(self) -> list:
        # One instance for the task's life: fit and then test read the same record of the best epoch.
        return [self.checkpoint]

    def load_state_dict(self, state: dict) -> None:
        # A checkpoint written before configure_callbacks() kept the best epoch in the task's own state;
        # newer ones keep it with the callbacks', which the Trainer has restored by now.
        if "checkpoint" in state:
            self.checkpoint.load_state_dict(state["checkpoint"])

    def on_train_batch_start(self, trainer, task, batch_idx) -> None:
        base = float(self.hyperparameters.get("learning_rate")) if self.hyperparameters else self.config.learning_rate
        epochs = trainer.config.effective.max_epochs
        self.model.optimizer.learning_rate = base * learning_rate_factor(
            trainer.current_epoch + batch_idx / max(1, trainer.num_train_batches or 1), epochs,
            self.config.warmup_epochs, self.config.final_lr_fraction)

    def on_train_epoch_end(self, trainer, task) -> None:
        patience = self.config.stop_patience
        if patience and self._best and trainer.current_epoch - self._best["epoch"] >= patience:
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
        if self.search_result:
            body = f"{trials_markdown(self.search_result.rows)}\n\n{signal_line(self.search_result.summary)}"
            sections.append(("Architecture search (top trials)", body))
        if self.evaluation:
            body = report_markdown(self.evaluation) + "\n\n![confusion matrix](confusion_matrix.png)"
            sections.append(("PrivateTest per class", body))
        return sections


def learning_rate_factor(epoch: float, epochs: int, warmup_epochs: float, floor: float = 0.0) -> float:
    """The schedule at a fractional ``epoch`` of ``epochs``: a linear warm-up over ``warmup_epochs``
    (at most a quarter of the run), then one cosine from 1 down to ``floor`` at the run's end.

    A function of the position alone, so a resumed run continues the same schedule."""
    warmup = min(warmup_epochs, epochs / 4)
    if epoch < warmup:
        return (epoch + 1 / 64) / warmup if warmup else 1.0
    progress = min(1.0, (epoch - warmup) / max(1e-9, epochs - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _macro_f1_metric(model) -> MacroF1:
    """The model's MacroF1 instance, also when Keras nests compiled metrics in a container."""
    stack = list(model.metrics)
    while stack:
        metric = stack.pop()
        if isinstance(metric, MacroF1):
            return metric
        stack.extend(getattr(metric, "metrics", []))
    raise UserError("the emotion model was compiled without its macro_f1 metric; build it with compile_emotion_model")

