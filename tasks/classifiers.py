"""The MNIST and CIFAR-10 CNN classifiers shared by the adversarial and robust tasks.

Every classifier takes images as floats in [0, 1] (channels last) and standardises them inside the
model, so an attack works in pixel space and needs no knowledge of the normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from common.errors import UserError
from data.datasets import CIFAR10_CLASSES, load_cifar10, load_mnist

MNIST_CLASSES = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class ClassifierSpec:
    """What a data set's classifier needs to know: input shape, class names, pixel statistics."""

    dataset: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    # Training-set pixel mean and std in [0, 1] (MNIST: the well-known 0.1307 / 0.3081).
    mean: tuple[float, ...]
    std: tuple[float, ...]


SPECS = {
    "mnist": ClassifierSpec("mnist", (28, 28, 1), MNIST_CLASSES, (0.1307,), (0.3081,)),
    "cifar10": ClassifierSpec("cifar10", (32, 32, 3), CIFAR10_CLASSES,
                              (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def spec_for(dataset: str) -> ClassifierSpec:
    if dataset not in SPECS:
        raise UserError(f"dataset {dataset!r} is unknown; use one of {', '.join(SPECS)}")
    return SPECS[dataset]


def load_images(dataset: str, data_dir=None):
    """The data set as float32 images in [0, 1] with a channel axis: ``(splits, checksums)``."""
    loaded = load_mnist(data_dir) if spec_for(dataset).dataset == "mnist" else load_cifar10(data_dir)
    splits = {name: (to_unit_images(x, dataset), y) for name, (x, y) in loaded.splits.items()}
    return splits, loaded.checksums


def to_unit_images(x: np.ndarray, dataset: str) -> np.ndarray:
    """uint8 images to float32 in [0, 1], shaped as the classifier's input."""
    return (x.astype("float32") / 255.0).reshape((-1, *spec_for(dataset).input_shape))


def _standardize(spec: ClassifierSpec) -> keras.layers.Layer:
    mean, std = np.array(spec.mean), np.array(spec.std)
    # Rescaling keeps the model saveable as .h5 with plain numbers in its config.
    return keras.layers.Rescaling(scale=(1.0 / std).tolist(), offset=(-mean / std).tolist(), name="standardize")


def _conv_block(x, filters: int, name: str):
    for k in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{k}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return keras.layers.MaxPooling2D(name=f"{name}_pool")(x)


def mnist_cnn() -> keras.Model:
    """Two VGG blocks (32, 64 filters) and a 128-unit head: about 0.5 M weights, 99.4% on MNIST."""
    spec = SPECS["mnist"]
    inputs = keras.Input(spec.input_shape, name="image")
    x = _standardize(spec)(inputs)
    x = _conv_block(x, 32, "block1")
    x = _conv_block(x, 64, "block2")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.3, name="dropout1")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.4, name="dropout2")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def cifar10_cnn() -> keras.Model:
    """Three VGG blocks (32, 64, 128) with flips and shifts as augmentation: about 0.3 M weights.

    The augmentation layers act only in training, so the saved model classifies clean images as is.
    """
    spec = SPECS["cifar10"]
    inputs = keras.Input(spec.input_shape, name="image")
    x = keras.layers.RandomFlip("horizontal", name="flip")(inputs)
    x = keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", name="shift")(x)
    x = _standardize(spec)(x)
    for filters, dropout, name in ((32, 0.1, "block1"), (64, 0.2, "block2"), (128, 0.3, "block3")):
        x = _conv_block(x, filters, name)
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cifar10_cnn")


BUILDERS = {"mnist": mnist_cnn, "cifar10": cifar10_cnn}


def build_classifier(dataset: str, learning_rate: float = 1e-3) -> keras.Model:
    """The data set's CNN, compiled with Adam and sparse categorical cross-entropy."""
    model = BUILDERS[spec_for(dataset).dataset]()
    return compile_classifier(model, learning_rate)


def compile_classifier(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
