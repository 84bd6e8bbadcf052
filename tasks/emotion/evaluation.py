"""Evaluation of the emotion model: per-class scores, confusion figure, TFLite accuracy and latency,
FLOPs, Training duplicates, and the choice of test-time augmentation on PublicTest."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from trainer.export import TFLiteModel


def class_report(confusion: np.ndarray, classes) -> dict:
    """Accuracy, macro F1 and per-class precision / recall / F1 / support from a confusion matrix."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for name, p, r, f, n in zip(classes, precision, recall, f1, actual, strict=True)
    }
    total = confusion.sum()
    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "confusion_matrix": confusion.astype(int).tolist(),
    }


def report_markdown(report: dict) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, scores in report["per_class"].items():
        lines.append(f"| {name} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
                     f"{scores['f1']:.3f} | {scores['support']} |")
    lines += ["", f"Accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f}."]
    return "\n".join(lines)


def confusion_figure(confusion, classes, title: str = "PrivateTest confusion matrix"):
    """A matplotlib figure of the row-normalised confusion matrix, counts written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    figure, axes = plt.subplots(figsize=(6.4, 5.4))
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            axes.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=8,
                      color="white" if normalised[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure


class TFLiteClassifier(TFLiteModel):
    """A TFLite emotion model run on one preprocessed face at a time (what ``live`` needs per frame)."""

    def __call__(self, face: np.ndarray) -> np.ndarray:
        """``face``: a (1, H, W, C) float32 batch from ``preprocess_faces``; returns class probabilities."""
        return super().__call__(face)[0]


def tflite_accuracy(path: str | Path, faces: np.ndarray, labels: np.ndarray, threads: int = 2) -> float:
    """Top-1 accuracy of a TFLite export, one face per call as ``live`` runs it."""
    classify = TFLiteClassifier(path, threads)
    predicted = np.array([classify(faces[i:i + 1]).argmax() for i in range(len(faces))])
    return float(np.mean(predicted == labels)) if len(labels) else 0.0


def median_latency_ms(predict, face: np.ndarray, warmup: int = 20, runs: int = 200) -> float:
    for _ in range(warmup):
        predict(face)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        predict(face)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000.0)


def flops_per_face(model) -> int:
    """Multiply-adds x 2 of one face through ``model``: convolutions and dense layers, nested models
    counted once per view they process (machine-independent, unlike milliseconds)."""
    import keras

    from tasks.emotion.model import views_of

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += views_of(model) * flops_per_face(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            total += 2 * height * width * channels * kernel_h * kernel_w * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense) and layer.trainable:  # not the fixed mirror: data movement
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def in_training_mask(faces: np.ndarray, training_faces: np.ndarray) -> np.ndarray:
    """True for each face whose 48x48 bytes equal a Training face (FER2013 has such duplicates)."""
    import hashlib

    def digest(face):
        return hashlib.sha256(np.ascontiguousarray(face).tobytes()).digest()

    seen = {digest(face) for face in training_faces}
    return np.array([digest(face) in seen for face in faces], dtype=bool)


# Test-time augmentation choices, fewest views first (a tie keeps the cheaper one).
TTA_CHOICES = ("none", "flip", "ten-crop")


def predict_probabilities(model, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.concatenate([np.asarray(model(faces[i:i + batch_size], training=False))
                           for i in range(0, len(faces), batch_size)])


def evaluate_faces(model, faces: np.ndarray, labels: np.ndarray, in_training: np.ndarray | None = None) -> dict:
    """Accuracy, macro F1, per-class scores and confusion matrix of ``model`` on ``faces``, plus the
    accuracy on the faces not in Training when ``in_training`` marks the duplicates."""
    from data.datasets import FER_CLASSES

    predicted = predict_probabilities(model, faces).argmax(axis=1)
    confusion = np.zeros((len(FER_CLASSES), len(FER_CLASSES)), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    report = class_report(confusion, FER_CLASSES)
    if in_training is not None:
        clean = ~np.asarray(in_training, bool)
        report["accuracy_not_in_training"] = float(np.mean(predicted[clean] == labels[clean])) if clean.any() else 0.0
    return report


def select_test_time_augmentation(model, faces: np.ndarray, labels: np.ndarray):
    """Picks the test-time augmentation with the best accuracy on ``faces`` (PublicTest: never PrivateTest).

    Returns ``(name, model to ship, accuracy of each choice)``; each candidate is ``model`` inside a
    graph of standard Keras layers (``inference_model``), the one that ships.
    """
    from tasks.emotion.model import inference_model

    candidates = {name: inference_model(model, name) for name in TTA_CHOICES}
    accuracies = {name: evaluate_faces(candidate, faces, labels)["accuracy"] for name, candidate in candidates.items()}
    chosen = max(accuracies, key=lambda name: accuracies[name])  # the first of equals: fewest views
    return chosen, candidates[chosen], accuracies
