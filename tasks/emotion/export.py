"""Shipping the emotion model: ``.keras`` + ``.h5`` + JSON card + TFLite, the test-time augmentation
PublicTest picks, and the single-network copy ``live`` runs (``python -m tasks.emotion``).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from common.errors import UserError
from data.datasets import FER_CLASSES
from tasks.emotion.config import EmotionConfig
from tasks.emotion.evaluation import (
    evaluate_faces,
    flops_per_face,
    select_test_time_augmentation,
    tflite_accuracy,
)
from tasks.emotion.model import compile_emotion_model, inference_model
from trainer.export import export_tflite, float32_copy, read_model_card, save_model_atomic, write_model_card


def export(task, trainer) -> Path:
    """Writes ``.keras`` (run folder), then ``.h5`` + JSON card + ``.tflite`` to models/ or the run folder.

    The ``.h5`` is the network inside the test-time augmentation that PublicTest picks (none,
    flip, ten-crop), so live, ``test --model`` and the TFLite file all run what is reported.
    The ``.keras`` copy goes first: saving ``.h5`` in Keras 3.15 drops the optimizer from the
    model's compile config in memory.
    """
    save_model_atomic(task.model, trainer.run_dir / "emotion.keras")
    # The selection reads the PublicTest faces validation read (--limit-val-batches narrows both).
    limit = trainer.config.effective.limit_val_batches
    shipped, card = choose_test_time_augmentation(task, _inference_copy(task.model), model_card(task, trainer),
                                                  None if limit is None else limit * task.batch_size)
    return write_export(task, shipped, card, _export_target(task, trainer, card["metrics"]["public_test_accuracy"]))


def choose_test_time_augmentation(task, single, card: dict, faces: int | None = None) -> tuple[keras.Model, dict]:
    """The model to ship and its card: the single network, or it inside the TTA graph that scores
    higher on PublicTest, evaluated once on PrivateTest, with the single network's figures beside."""
    public_faces, public_labels = task.split("val")
    choice, shipped, public = select_test_time_augmentation(single, public_faces[:faces], public_labels[:faces])
    card = {**card, "test_time_augmentation": {"chosen": choice, "public_test_accuracy": public},
            "flops_per_face": flops_per_face(shipped)}
    if choice == "none":
        return shipped, card
    metrics = card["metrics"]
    card["single_network"] = {key: metrics.get(key) for key in (
        "private_test_accuracy", "private_test_macro_f1", "private_test_accuracy_not_in_training",
        "private_test_loss", "public_test_accuracy")}
    card["single_network"]["flops_per_face"] = flops_per_face(single)
    report = evaluate_faces(shipped, *task.split("test"), task.in_training("test"))
    card["metrics"] = {**metrics, "private_test_accuracy": report["accuracy"],
                       "private_test_macro_f1": report["macro_f1"], "private_test_loss": None,
                       "private_test_accuracy_not_in_training": report["accuracy_not_in_training"],
                       "public_test_accuracy": public[choice], "per_class": report["per_class"],
                       "confusion_matrix": report["confusion_matrix"]}
    return shipped, card


def write_export(task, model, card: dict, target: Path, name: str = "emotion") -> Path:
    # Uncompiled and of standard layers only: the file loads with keras.models.load_model alone.
    model_path = save_model_atomic(model, target / f"{name}.h5", include_optimizer=False)
    tflite = export_tflite(model, target / f"{name}.tflite")
    card["metrics"]["private_test_accuracy_tflite"] = tflite_accuracy(tflite, *task.split("test"))
    write_model_card(model_path, {**card, "tflite": f"{name}.tflite", "tflite_quantization": "dynamic-range int8"})
    task.exported = [str(model_path), str(model_path.with_suffix(".json")), str(target / f"{name}.tflite")]
    print(f"exported {', '.join(task.exported)}")
    return model_path


def _export_target(task, trainer, public_accuracy: float) -> Path:
    if task.config.export_dir is None or trainer.config.fast_dev_run:
        return trainer.run_dir
    target = Path(task.config.export_dir)
    shipped = target / "emotion.json"
    if shipped.exists():
        previous = json.loads(shipped.read_text()).get("metrics", {}).get("public_test_accuracy", 0.0)
        if previous >= public_accuracy:
            print(f"kept {target / 'emotion.h5'}: its PublicTest accuracy {previous:.4f} is not below "
                  f"this run's {public_accuracy:.4f}; this model is exported to {trainer.run_dir}")
            return trainer.run_dir
    return target


def crop_record(model) -> dict:
    """What the network does with the 48x48 face it takes: the card's account of its crop."""
    crop = next((layer.size for layer in model.layers if layer.__class__.__name__ == "FaceCrop"), None)
    if crop is None:
        return {}
    return {"crop_size": crop, "crop": "inside the model: a random crop per face in training, the centre "
            "crop at inference (Cropping2D layers; ten crops when test_time_augmentation is ten-crop); "
            "feed the 48x48 face"}


def model_card(task, trainer) -> dict:
    metrics = trainer.metrics
    evaluation = task.evaluation or {}
    best = task._best
    public = best["val_accuracy"] if best else metrics.get("val_accuracy", 0.0)
    hp = task.hyperparameters
    return {
        "task": task.name,
        "classes": list(FER_CLASSES),
        "input_shape": list(task.preprocessing.input_shape),
        "preprocessing": {**task.preprocessing.to_dict(), **crop_record(task.model)},
        "metrics": {
            "private_test_accuracy": metrics.get("test_accuracy"),
            "private_test_macro_f1": metrics.get("test_macro_f1"),
            "private_test_loss": metrics.get("test_loss"),
            # Faces byte-identical to a Training face are left out of this one (FER2013 duplicates).
            "private_test_accuracy_not_in_training": metrics.get("test_accuracy_not_in_training"),
            "private_test_in_training": int(task.in_training("test").sum()),
            "public_test_accuracy": public,
            "per_class": evaluation.get("per_class"),
            "confusion_matrix": evaluation.get("confusion_matrix"),
        },
        "data": task.data_checksums(),
        "seed": trainer.config.seed,
        "architecture": {k: v for k, v in hp.values.items() if not k.startswith("tuner/")},
        "search": task.search_summary,
        "parameters": int(task.model.count_params()),
        "training": {"epochs": trainer.current_epoch, "best_epoch": (best or {}).get("epoch"),
                     "fit_seconds": round(trainer.fit_seconds, 1), "batch_size": task.batch_size,
                     "class_weight_power": task.config.class_weight_power, "tuned": task.config.tune,
                     "precision": trainer.config.precision, "optimizer": "SGD nesterov momentum 0.9",
                     "learning_rate": hp.get("learning_rate"),
                     "weight_decay": hp.get("weight_decay"),
                     "label_smoothing": hp.get("label_smoothing"),
                     "warmup_epochs": task.config.warmup_epochs, "schedule": "warm-up, then one cosine",
                     "final_lr_fraction": task.config.final_lr_fraction,
                     "rotation_degrees": task.config.rotation_degrees, "max_epochs": trainer.config.max_epochs,
                     "run": trainer.run_dir.name},
    }


def _inference_copy(model) -> keras.Model:
    """The trained network in float32 with a fresh, unbuilt optimizer: the .h5 holds no optimizer state,
    and the test-time augmentation is chosen and reported on the float32 network that ships, also after
    ``--precision bf16-mixed`` training."""
    copy = float32_copy(model)
    if copy is model:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return compile_emotion_model(copy)


def _exported_task(path: Path, data_dir):
    """An emotion task evaluating the exported model at ``path``."""
    from tasks.emotion.task import EmotionTask  # task.py imports this module

    task = EmotionTask(EmotionConfig(model=str(path), export_dir=None))
    task.data_dir = data_dir
    return task


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
    task = _exported_task(path, data_dir)
    single = task.build_model()
    faces, labels = task.split("test")
    in_training = task.in_training("test")
    card["metrics"]["private_test_accuracy_not_in_training"] = evaluate_faces(
        single, faces, labels, in_training)["accuracy_not_in_training"]
    card["metrics"]["private_test_in_training"] = int(in_training.sum())
    commands = card.pop("commands", [card.pop("command", None)])
    for stale in ("model", "test_time_augmentation", "flops_per_face"):
        card.pop(stale, None)
    shipped, card = choose_test_time_augmentation(task, single, card)
    if card["test_time_augmentation"]["chosen"] == "none":
        print(f"kept {path}: no test-time augmentation beats the network alone on PublicTest "
              f"({card['test_time_augmentation']['public_test_accuracy']})")
        return path
    card["commands"] = [*commands, f"python -m tasks.emotion --test-time-augmentation {model_path}"]
    card["command"] = card["commands"][-1]
    return write_export(task, shipped, card, path.parent)


def single_network(shipped: keras.Model) -> keras.Model:
    """The single network of a shipped model, taking the 48x48 face (its centre crop when trained on crops)."""
    return inference_model(shipped, "none")


def export_live_model(model_path: str | Path, data_dir=None, name: str = "emotion_live") -> Path:
    """Writes ``<name>.h5`` + card + TFLite beside ``model_path``: its single network (centre crop, no
    test-time augmentation), the one ``live`` runs in real time, with its own PrivateTest figures."""
    path = Path(model_path)
    card = read_model_card(path)
    task = _exported_task(path, data_dir)
    single = compile_emotion_model(single_network(task.build_model()))
    report = evaluate_faces(single, *task.split("test"), task.in_training("test"))
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
    return write_export(task, single, card, path.parent, name)
