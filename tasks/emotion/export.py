"""Shipping the emotion model: ``.h5`` + JSON card + TFLite, the test-time augmentation PublicTest
picks, and the single-network copy (``python -m tasks.emotion --live-model``).

Each step takes the model, its card and the faces it is judged on as arguments; the task
(``EmotionTask.export``) gathers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from common.errors import UserError
from tasks.emotion.evaluation import (
    evaluate_faces,
    flops_per_face,
    select_test_time_augmentation,
    tflite_accuracy,
)
from tasks.emotion.model import compile_emotion_model, inference_model
from trainer.export import export_tflite, float32_copy, read_model_card, save_model_atomic, write_model_card


@dataclass(frozen=True)
class JudgingFaces:
    """The preprocessed faces an export is chosen on (PublicTest) and reported on (PrivateTest)."""

    public: tuple[np.ndarray, np.ndarray]
    private: tuple[np.ndarray, np.ndarray]
    private_in_training: np.ndarray  # PrivateTest faces byte-identical to Training faces


def choose_test_time_augmentation(single, card: dict, faces: JudgingFaces,
                                  limit: int | None = None) -> tuple[keras.Model, dict]:
    """The model to ship and its card: the single network inside the standard-layer graph whose
    test-time augmentation (none, flip, ten-crop) scores highest on the first ``limit`` PublicTest faces,
    evaluated once on PrivateTest, with the single network's figures beside."""
    public_faces, public_labels = faces.public
    choice, shipped, public = select_test_time_augmentation(single, public_faces[:limit], public_labels[:limit])
    card = {**card, "test_time_augmentation": {"chosen": choice, "public_test_accuracy": public},
            "flops_per_face": flops_per_face(shipped)}
    if choice == "none":
        return shipped, card
    metrics = card["metrics"]
    card["single_network"] = {key: metrics.get(key) for key in (
        "private_test_accuracy", "private_test_macro_f1", "private_test_accuracy_not_in_training",
        "private_test_loss", "public_test_accuracy")}
    card["single_network"]["flops_per_face"] = flops_per_face(single)
    report = evaluate_faces(shipped, *faces.private, faces.private_in_training)
    card["metrics"] = {**metrics, **_report_metrics(report), "public_test_accuracy": public[choice]}
    return shipped, card


def _report_metrics(report: dict) -> dict:
    return {"private_test_accuracy": report["accuracy"], "private_test_macro_f1": report["macro_f1"],
            "private_test_loss": None, "private_test_accuracy_not_in_training": report["accuracy_not_in_training"],
            "per_class": report["per_class"], "confusion_matrix": report["confusion_matrix"]}


def write_export(model, card: dict, faces: JudgingFaces, target: Path, name: str = "emotion") -> list[Path]:
    """Writes ``<name>.h5``, its TFLite copy (accuracy measured on PrivateTest) and the card; returns the paths."""
    # Uncompiled and of standard layers only: the file loads with keras.models.load_model alone.
    model_path = save_model_atomic(model, Path(target) / f"{name}.h5", include_optimizer=False)
    tflite = export_tflite(model, Path(target) / f"{name}.tflite")
    card["metrics"]["private_test_accuracy_tflite"] = tflite_accuracy(tflite, *faces.private)
    card_path = write_model_card(model_path, {**card, "tflite": tflite.name,
                                              "tflite_quantization": "dynamic-range int8"})
    paths = [model_path, card_path, tflite]
    print(f"exported {', '.join(map(str, paths))}")
    return paths


def export_target(export_dir: str | None, run_dir: Path, public_accuracy: float) -> Path:
    """``export_dir`` when its shipped model (if any) scores lower on PublicTest, else the run folder."""
    if export_dir is None:
        return run_dir
    target = Path(export_dir)
    shipped = target / "emotion.json"
    if shipped.exists():
        previous = json.loads(shipped.read_text()).get("metrics", {}).get("public_test_accuracy", 0.0)
        if previous >= public_accuracy:
            print(f"kept {target / 'emotion.h5'}: its PublicTest accuracy {previous:.4f} is not below "
                  f"this run's {public_accuracy:.4f}; this model is exported to {run_dir}")
            return run_dir
    return target


def crop_record(model) -> dict:
    """What the network does with the 48x48 face it takes: the card's account of its crop."""
    crop = next((layer.size for layer in model.layers if layer.__class__.__name__ == "FaceCrop"), None)
    if crop is None:
        return {}
    return {"crop_size": crop, "crop": "inside the model: a random crop per face in training, the centre "
            "crop at inference (Cropping2D layers; ten crops when test_time_augmentation is ten-crop); "
            "feed the 48x48 face"}


def inference_copy(model) -> keras.Model:
    """The trained network in float32 with a fresh, unbuilt optimizer: the .h5 holds no optimizer state,
    and the test-time augmentation is chosen and reported on the float32 network that ships, also after
    ``--precision bf16-mixed`` training."""
    copy = float32_copy(model)
    if copy is model:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return compile_emotion_model(copy)


def add_test_time_augmentation(model_path: str | Path, single, faces: JudgingFaces) -> Path:
    """Re-exports a shipped single network (``single``, loaded from ``model_path``) inside the
    test-time augmentation PublicTest picks.

    Replaces ``model_path`` (+ card + TFLite) only when a TTA scores higher on PublicTest than the
    network alone; PrivateTest is evaluated once, for the model that ships. The card keeps the
    training commands and adds this one.
    """
    path = Path(model_path)
    card = read_model_card(path)
    if card.get("test_time_augmentation", {}).get("chosen", "none") != "none":
        raise UserError(f"{path} already holds test-time augmentation "
                        f"({card['test_time_augmentation']['chosen']}); pass a single network's .h5")
    card["metrics"]["private_test_accuracy_not_in_training"] = evaluate_faces(
        single, *faces.private, faces.private_in_training)["accuracy_not_in_training"]
    card["metrics"]["private_test_in_training"] = int(faces.private_in_training.sum())
    commands = card.pop("commands", [card.pop("command", None)])
    for stale in ("model", "test_time_augmentation", "flops_per_face"):
        card.pop(stale, None)
    shipped, card = choose_test_time_augmentation(single, card, faces)
    if card["test_time_augmentation"]["chosen"] == "none":
        print(f"kept {path}: no test-time augmentation beats the network alone on PublicTest "
              f"({card['test_time_augmentation']['public_test_accuracy']})")
        return path
    card["commands"] = [*commands, f"python -m tasks.emotion --test-time-augmentation {model_path}"]
    card["command"] = card["commands"][-1]
    return write_export(shipped, card, faces, path.parent)[0]


def single_network(shipped: keras.Model) -> keras.Model:
    """The single network of a shipped model, taking the 48x48 face (its centre crop when trained on crops)."""
    return inference_model(shipped, "none")


def export_live_model(model_path: str | Path, shipped, faces: JudgingFaces, name: str = "emotion_live") -> Path:
    """Writes ``<name>.h5`` + card + TFLite beside ``model_path``: the single network of ``shipped``
    (centre crop, no test-time augmentation), with its own PrivateTest figures."""
    path = Path(model_path)
    card = read_model_card(path)
    single = compile_emotion_model(single_network(shipped))
    report = evaluate_faces(single, *faces.private, faces.private_in_training)
    public = evaluate_faces(single, *faces.public)["accuracy"]
    commands = card.pop("commands", [card.pop("command", None)])
    for stale in ("model", "test_time_augmentation", "single_network", "command", "role"):
        card.pop(stale, None)
    card["metrics"] = {**card["metrics"], **_report_metrics(report), "public_test_accuracy": public}
    card.update(flops_per_face=flops_per_face(single),
                role=f"the single network inside {path.name} (its centre crop, no test-time augmentation)")
    card["commands"] = [*commands, f"python -m tasks.emotion --live-model {model_path}"]
    return write_export(single, card, faces, path.parent, name)[0]
