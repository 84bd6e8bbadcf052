"""FER2013 emotion recognition: a CNN searched with KerasTuner, trained on Training, selected on
PublicTest, reported once on PrivateTest, and exported to ``models/emotion.h5`` + JSON + TFLite.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from callbacks.model_checkpoint import ModelCheckpoint
from common.errors import UserError
from common.files import atomic_path, write_atomic
from data.datasets import FER_CLASSES, load_fer2013
from tasks.emotion_config import EmotionConfig
from tasks.emotion_eval import (
    class_report,
    confusion_figure,
    evaluate_faces,
    export_tflite,
    flops_per_face,
    in_training_mask,
    report_markdown,
    select_test_time_augmentation,
    tflite_accuracy,
)
from tasks.emotion_model import (
    EmotionHyperModel,
    FaceCrop,
    LabelAccuracy,
    MacroF1,
    class_weights,
    compile_emotion_model,
    make_augmentation,
    search_space_fingerprint,
)
from tasks.emotion_tuning import (
    SearchBudget,
    TrialMonitor,
    check_search_folder,
    distributed_role,
    make_tuner,
    measure_seed_spread,
    search_signal,
    signal_line,
    top_trials,
    trials_markdown,
    trials_table,
)
from tasks.face_preprocessing import FacePreprocessing, preprocess_faces
from trainer import Task
from trainer.export import float32_copy, load_model_file, read_model_card, save_model_atomic, write_model_card

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
        self.search_summary: dict | None = None
        self.train_indices: np.ndarray | None = None
        self.exported: list[str] = []
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._checksums: dict[str, str] = {}
        self._weights = None
        self._subset: tuple[np.ndarray, np.ndarray] | None = None
        self._in_training: dict[str, np.ndarray] = {}
        self._clean_accuracy: LabelAccuracy | None = None
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
        return x, y, self._in_training[SPLITS["test"]].astype(np.float32)

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

    def data_checksums(self) -> dict:
        return dict(self._checksums)

    # --- model --------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        self._clean_accuracy = LabelAccuracy(name="accuracy_not_in_training")  # in the strategy's scope
        if self.config.model:
            return self._load_exported(Path(self.config.model))
        hp = self.hyperparameters or keras_tuner.HyperParameters()
        model = EmotionHyperModel(self.preprocessing.input_shape, defaults=self.config).build(hp)
        self.hyperparameters = hp
        self.augmentation = make_augmentation(self.config.rotation_degrees)
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
        """Searches (with --tune), retrains the best network, tests on PrivateTest, exports."""
        if self.config.tune and not self.search(trainer):
            return {}  # a distributed worker: its trials are done
        trainer.fit(self)
        if self._best and trainer.is_chief:
            print(f"kept epoch {self._best['epoch'] + 1}: best PublicTest accuracy {self._best['val_accuracy']:.4f}")
        trainer.test(self)  # collective under multi-worker: every worker takes part, only the chief exports
        if trainer.is_chief:
            self.export(trainer)
        return dict(trainer.metrics)

    def search(self, trainer) -> bool:
        """Runs the KerasTuner search in ``<run>/search``; False on a distributed worker (its job ends here)."""
        config = self.config.tuner_config(trainer.config.seed)
        role = distributed_role()
        run_dir = trainer.resolve_run_dir(self)
        search_dir = run_dir / "search"
        hypermodel = EmotionHyperModel(self.preprocessing.input_shape, defaults=self.config)
        check_search_folder(search_dir, {"space": search_space_fingerprint(hypermodel), "tuner": config.tuner,
                                         "epochs": config.epochs, "tune_faces": self.config.tune_faces})
        budget = SearchBudget(search_dir / "budget.json", config.minutes)

        def train_trial(hp, name, epochs, seed):
            return self._train_trial(trainer, hp, f"search/{name}", epochs, seed, budget)

        default_hp = keras_tuner.HyperParameters()
        hypermodel.build(default_hp)
        seeds: dict = {}

        def measure_seeds():  # after the first trial (the default point), so a budget always buys a trial first
            seeds.update(measure_seed_spread(train_trial, default_hp, config, search_dir, budget))

        keras.utils.set_random_seed(trainer.config.seed)
        tuner = make_tuner(hypermodel, config, run_dir, train_trial, budget,
                           after_first_trial=measure_seeds if role == "single" else None)
        tuner.search()
        budget.save()
        if role == "worker":
            return False
        self.search_rows = top_trials(tuner, search_dir)
        if not self.search_rows:
            raise UserError(f"the search in {search_dir} finished no trial; see the errors above")
        chance = float(np.bincount(self.split("val")[1]).max() / len(self.split("val")[1]))
        signal = search_signal(self.search_rows, seeds, dict(default_hp.values), chance)
        self.search_summary = {"run": run_dir.name, "tuner": config.tuner, "minutes": config.minutes,
                               "spent_minutes": round(budget.spent_seconds / 60, 1), "epochs": config.epochs,
                               "tune_faces": self.config.tune_faces, **signal}
        write_atomic(search_dir / "signal.json", json.dumps(self.search_summary, indent=2))
        from rich.console import Console

        console = Console()
        # Without a terminal rich assumes 80 columns and truncates the hyperparameter names.
        (console if console.is_terminal else Console(width=200)).print(trials_table(self.search_rows))
        print(signal_line(signal), flush=True)
        self.hyperparameters = tuner.get_best_hyperparameters(1)[0]
        keras.backend.clear_session()
        return True

    def _train_trial(self, trainer, hp, name: str, epochs: int, seed: int, budget: SearchBudget) -> float | None:
        """One trial: the task's own fit (crops, flips, class weights, schedule, TensorBoard,
        checkpoints) of ``hp`` on the tuning subset, in ``<run>/<name>``; returns its best PublicTest accuracy.

        An interrupted trial resumes from its checkpoints; the budget stops it at an epoch end.
        """
        indices = self.tuning_indices()
        keras.backend.clear_session()
        trial = EmotionTask(self.config)
        trial.data_dir, trial.preprocessing = self.data_dir, self.preprocessing
        trial._splits, trial._checksums = self._splits, self._checksums
        trial.hyperparameters = hp
        trial.train_indices = indices
        child = trainer.spawn(self, name, seed=seed)
        child.config = dataclasses.replace(child.config, max_epochs=epochs, resume=True)
        monitor = TrialMonitor(name, budget)
        child.callbacks.append(monitor)
        child.fit(trial)
        return monitor.best

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

    # --- export -------------------------------------------------------------------------------
    def export(self, trainer) -> Path:
        """Writes ``.keras`` (run folder), then ``.h5`` + JSON card + ``.tflite`` to models/ or the run folder.

        The ``.h5`` is the network inside the test-time augmentation that PublicTest picks (none,
        flip, ten-crop), so live, ``test --model`` and the TFLite file all run what is reported.
        The ``.keras`` copy goes first: saving ``.h5`` in Keras 3.15 drops the optimizer from the
        model's compile config in memory.
        """
        save_model_atomic(self.model, trainer.run_dir / "emotion.keras")
        # The selection reads the PublicTest faces validation read (--limit-val-batches narrows both).
        limit = trainer.config.effective.limit_val_batches
        shipped, card = self.with_test_time_augmentation(_inference_copy(self.model), self.model_card(trainer),
                                                         None if limit is None else limit * self.batch_size)
        return self.write_export(shipped, card, self._export_target(trainer, card["metrics"]["public_test_accuracy"]))

    def with_test_time_augmentation(self, single, card: dict, faces: int | None = None) -> tuple[keras.Model, dict]:
        """The model to ship and its card: the single network, or it inside the TTA graph that scores
        higher on PublicTest, evaluated once on PrivateTest, with the single network's figures beside."""
        public_faces, public_labels = self.split("val")
        choice, shipped, public = select_test_time_augmentation(single, public_faces[:faces], public_labels[:faces])
        card = {**card, "test_time_augmentation": {"chosen": choice, "public_test_accuracy": public},
                "flops_per_face": flops_per_face(shipped)}
        if shipped is single:
            return single, card
        metrics = card["metrics"]
        card["single_network"] = {key: metrics.get(key) for key in (
            "private_test_accuracy", "private_test_macro_f1", "private_test_accuracy_not_in_training",
            "private_test_loss", "public_test_accuracy")}
        card["single_network"]["flops_per_face"] = flops_per_face(single)
        report = evaluate_faces(shipped, *self.split("test"), self._in_training[SPLITS["test"]])
        card["metrics"] = {**metrics, "private_test_accuracy": report["accuracy"],
                           "private_test_macro_f1": report["macro_f1"], "private_test_loss": None,
                           "private_test_accuracy_not_in_training": report["accuracy_not_in_training"],
                           "public_test_accuracy": public[choice], "per_class": report["per_class"],
                           "confusion_matrix": report["confusion_matrix"]}
        return shipped, card

    def write_export(self, model, card: dict, target: Path, name: str = "emotion") -> Path:
        model_path = save_model_atomic(model, target / f"{name}.h5")
        tflite = export_tflite(model, target / f"{name}.tflite")
        card["metrics"]["private_test_accuracy_tflite"] = tflite_accuracy(tflite, *self.split("test"))
        write_model_card(model_path, {**card, "tflite": f"{name}.tflite", "tflite_quantization": "dynamic-range int8"})
        self.exported = [str(model_path), str(model_path.with_suffix(".json")), str(target / f"{name}.tflite")]
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

    def crop_record(self) -> dict:
        """What the network does with the 48x48 face it takes: the card's account of its crop."""
        crop = next((layer.size for layer in self.model.layers if layer.__class__.__name__ == "FaceCrop"), None)
        if crop is None:
            return {}
        return {"crop_size": crop, "crop": "inside the model: a random crop per face in training, the centre "
                "crop at inference (ten crops when test_time_augmentation is ten-crop); feed the 48x48 face"}

    def model_card(self, trainer) -> dict:
        metrics = trainer.metrics
        evaluation = self.evaluation or {}
        public = self._best["val_accuracy"] if self._best else metrics.get("val_accuracy", 0.0)
        return {
            "task": self.name,
            "classes": list(FER_CLASSES),
            "input_shape": list(self.preprocessing.input_shape),
            "preprocessing": {**self.preprocessing.to_dict(), **self.crop_record()},
            "metrics": {
                "private_test_accuracy": metrics.get("test_accuracy"),
                "private_test_macro_f1": metrics.get("test_macro_f1"),
                "private_test_loss": metrics.get("test_loss"),
                # Faces byte-identical to a Training face are left out of this one (FER2013 duplicates).
                "private_test_accuracy_not_in_training": metrics.get("test_accuracy_not_in_training"),
                "private_test_in_training": int(self._in_training.get(SPLITS["test"], np.zeros(0)).sum()),
                "public_test_accuracy": public,
                "per_class": evaluation.get("per_class"),
                "confusion_matrix": evaluation.get("confusion_matrix"),
            },
            "data": self.data_checksums(),
            "seed": trainer.config.seed,
            "architecture": {k: v for k, v in self.hyperparameters.values.items() if not k.startswith("tuner/")},
            "search": self.search_summary,
            "parameters": int(self.model.count_params()),
            "training": {"epochs": trainer.current_epoch, "best_epoch": (self._best or {}).get("epoch"),
                         "fit_seconds": round(trainer.fit_seconds, 1), "batch_size": self.batch_size,
                         "class_weight_power": self.config.class_weight_power, "tuned": self.config.tune,
                         "precision": trainer.config.precision, "optimizer": "SGD nesterov momentum 0.9",
                         "learning_rate": self.hyperparameters.get("learning_rate"),
                         "weight_decay": self.hyperparameters.get("weight_decay"),
                         "label_smoothing": self.hyperparameters.get("label_smoothing"),
                         "warmup_epochs": self.config.warmup_epochs, "schedule": "warm-up, then one cosine",
                         "final_lr_fraction": self.config.final_lr_fraction,
                         "rotation_degrees": self.config.rotation_degrees, "max_epochs": trainer.config.max_epochs,
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
            verdict = f"\n\n{signal_line(self.search_summary)}" if self.search_summary else ""
            sections.append(("Architecture search (top trials)", trials_markdown(self.search_rows) + verdict))
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


def _inference_copy(model) -> keras.Model:
    """The trained network in float32 with a fresh, unbuilt optimizer: the .h5 holds no optimizer state,
    and the test-time augmentation is chosen and reported on the float32 network that ships, also after
    ``--precision bf16-mixed`` training."""
    copy = float32_copy(model)
    if copy is model:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return compile_emotion_model(copy)


def add_test_time_augmentation(model_path: str | Path, data_dir=None) -> Path:
    """Re-exports a shipped single network inside the test-time augmentation PublicTest picks.

    Replaces ``model_path`` (+ card + TFLite) only when a TTA scores higher on PublicTest than the
    network alone; PrivateTest is evaluated once, for the model that ships. The card keeps the
    training commands and adds this one.
    """
    path = Path(model_path)
    card = read_model_card(path)
    if card.get("test_time_augmentation", {}).get("chosen", "none") != "none":
        raise UserError(f"{path} already holds test-time augmentation "
                        f"({card['test_time_augmentation']['chosen']}); pass a single network's .h5")
    task = EmotionTask(EmotionConfig(model=str(path), export_dir=None))
    task.data_dir = data_dir
    single = task.build_model()
    faces, labels = task.split("test")
    in_training = task._in_training[SPLITS["test"]]
    card["metrics"]["private_test_accuracy_not_in_training"] = evaluate_faces(
        single, faces, labels, in_training)["accuracy_not_in_training"]
    card["metrics"]["private_test_in_training"] = int(in_training.sum())
    commands = card.pop("commands", [card.pop("command", None)])
    for stale in ("model", "test_time_augmentation", "flops_per_face"):
        card.pop(stale, None)
    shipped, card = task.with_test_time_augmentation(single, card)
    if shipped is single:
        print(f"kept {path}: no test-time augmentation beats the network alone on PublicTest "
              f"({card['test_time_augmentation']['public_test_accuracy']})")
        return path
    card["commands"] = [*commands, f"python -m tasks.emotion --test-time-augmentation {model_path}"]
    card["command"] = card["commands"][-1]
    return task.write_export(shipped, card, path.parent)


def single_network(shipped: keras.Model) -> keras.Model:
    """The single network of a shipped model, taking the 48x48 face (its centre crop when trained on crops).

    A test-time-augmented model holds the network as its one nested model; after ten-crop that
    network takes the crop, so the centre crop goes back in front of it.
    """
    nested = next((layer for layer in shipped.layers if isinstance(layer, keras.Model)), None)
    if nested is None:
        return shipped
    size = nested.input_shape[1]
    if size == shipped.input_shape[1]:
        return nested
    face = keras.Input(shipped.input_shape[1:], name="face")
    return keras.Model(face, nested(FaceCrop(size, name="face_crop")(face)), name="emotion_cnn_centre_crop")


def export_live_model(model_path: str | Path, data_dir=None, name: str = "emotion_live") -> Path:
    """Writes ``<name>.h5`` + card + TFLite beside ``model_path``: its single network (centre crop, no
    test-time augmentation), the one ``live`` runs in real time, with its own PrivateTest figures."""
    path = Path(model_path)
    card = read_model_card(path)
    task = EmotionTask(EmotionConfig(model=str(path), export_dir=None))
    task.data_dir = data_dir
    single = compile_emotion_model(single_network(task.build_model()))
    report = evaluate_faces(single, *task.split("test"), task._in_training[SPLITS["test"]])
    public = evaluate_faces(single, *task.split("val"))["accuracy"]
    commands = card.pop("commands", [card.pop("command", None)])
    for stale in ("model", "test_time_augmentation", "single_network", "command"):
        card.pop(stale, None)
    card["metrics"] = {**card["metrics"], "private_test_accuracy": report["accuracy"],
                       "private_test_macro_f1": report["macro_f1"], "private_test_loss": None,
                       "private_test_accuracy_not_in_training": report["accuracy_not_in_training"],
                       "public_test_accuracy": public, "per_class": report["per_class"],
                       "confusion_matrix": report["confusion_matrix"]}
    card.update(flops_per_face=flops_per_face(single), role=(
        f"live's default: the single network inside {path.name} (its centre crop, no test-time augmentation), "
        f"so a face costs a fraction of the FLOPs; {path.name} is the more accurate model"))
    card["commands"] = [*commands, f"python -m tasks.emotion --live-model {model_path}"]
    return task.write_export(single, card, path.parent, name)


def main(argv=None) -> int:
    """``python -m tasks.emotion --test-time-augmentation models/emotion.h5 [--data-dir DIR]``, or
    ``--live-model models/emotion.h5`` for ``live``'s single-network copy."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tasks.emotion", description=main.__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--test-time-augmentation", metavar="MODEL_H5", help=add_test_time_augmentation.__doc__)
    action.add_argument("--live-model", metavar="MODEL_H5", help=export_live_model.__doc__)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        if args.live_model:
            export_live_model(args.live_model, args.data_dir)
        else:
            add_test_time_augmentation(args.test_time_augmentation, args.data_dir)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
