"""Fixtures for `live`: a tiny untrained emotion model with its card, and small videos made on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
PREPROCESSING = {"size": 48, "grayscale": True, "scale": 1 / 255}


def write_tiny_model(path: Path, input_shape=(48, 48, 1), classes=CLASSES, tflite: bool = False) -> Path:
    """An untrained 7-class CNN saved as .h5 with a card like `fit emotion` writes (and a .tflite on request)."""
    import keras

    model = keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(classes), activation="softmax"),
    ])
    model.save(path)
    card = {"classes": list(classes), "input_shape": [48, 48, 1], "preprocessing": PREPROCESSING}
    if tflite:
        import tensorflow as tf

        tflite_path = path.with_suffix(".tflite")
        tflite_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        card["tflite"] = tflite_path.name
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return write_tiny_model(tmp_path / "tiny.h5")


def write_video(path: Path, frames: int = 12, size=(120, 160)) -> Path:
    """An mp4 whose frame i has grey level 10 * i (mod 250), so a reader can tell frames apart."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (size[1], size[0]))
    for i in range(frames):
        writer.write(np.full((*size, 3), 10 * i % 250, np.uint8))
    writer.release()
    return path


@pytest.fixture
def small_video(tmp_path) -> Path:
    return write_video(tmp_path / "grey.mp4")
