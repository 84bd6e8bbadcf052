"""The emotion CNN as a KerasTuner ``HyperModel``, its augmentation, and a macro-F1 metric.

``EmotionHyperModel().build(keras_tuner.HyperParameters())`` builds the default network (each
hyperparameter's default), so a run without ``--tune`` and a tuned run share one definition.
"""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

NUM_CLASSES = 7


@keras.saving.register_keras_serializable(package="trainlab")
class MacroF1(keras.metrics.Metric):
    """Macro-averaged F1 over integer labels, kept as a running confusion matrix.

    The matrix (rows: true class, columns: predicted) is public as ``confusion``, so the test pass
    yields per-class precision, recall and the confusion-matrix figure without a second pass.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, name: str = "macro_f1", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_variable((num_classes, num_classes), initializer="zeros", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.reshape(tf.cast(y_true, tf.int32), [-1])
        y_pred = tf.argmax(tf.reshape(y_pred, [-1, self.num_classes]), axis=-1, output_type=tf.int32)
        weights = None if sample_weight is None else tf.reshape(tf.cast(sample_weight, self.dtype), [-1])
        self.confusion.assign_add(tf.math.confusion_matrix(
            y_true, y_pred, num_classes=self.num_classes, weights=weights, dtype=self.dtype))

    def result(self):
        true_positive = tf.linalg.diag_part(self.confusion)
        precision = tf.math.divide_no_nan(true_positive, tf.reduce_sum(self.confusion, axis=0))
        recall = tf.math.divide_no_nan(true_positive, tf.reduce_sum(self.confusion, axis=1))
        return tf.reduce_mean(tf.math.divide_no_nan(2 * precision * recall, precision + recall))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def make_augmentation(seed: int | None = None) -> keras.Sequential:
    """Random flips, shifts, rotations, zooms and contrast changes on [0, 1] faces (training only).

    Kept out of the exported model, so the ``.h5`` and TFLite files hold only the classifier.
    """
    layers = keras.layers
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
        layers.RandomRotation(0.04, fill_mode="nearest", seed=seed),  # about +-15 degrees
        layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
        layers.RandomContrast(0.2, value_range=(0.0, 1.0), seed=seed),
    ], name="augmentation")


def compile_emotion_model(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    # AdamW's decoupled weight decay regularises the dense head without an L2 term in the loss.
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=1e-4),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", MacroF1()])
    return model


class EmotionHyperModel(keras_tuner.HyperModel):
    """A VGG-style CNN: a one-conv stem, then blocks of convolutions that double the width.

    Searched: blocks, base filters, convolutions per block, kernel size, batch norm, dropout,
    dense width and learning rate. The defaults are the network shipped in ``models/``.
    """

    def __init__(self, input_shape=(48, 48, 1), num_classes: int = NUM_CLASSES) -> None:
        super().__init__(name="emotion_cnn")
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        blocks = hp.Int("blocks", 3, 4, default=4)
        filters = hp.Choice("filters", [16, 24, 32, 48], default=32)
        convs = hp.Int("convs_per_block", 1, 2, default=2)
        kernel = hp.Choice("kernel_size", [3, 5], default=3)
        batch_norm = hp.Boolean("batch_norm", default=True)
        dropout = hp.Float("dropout", 0.2, 0.5, step=0.1, default=0.4)
        dense = hp.Choice("dense", [0, 128, 256], default=256)
        learning_rate = hp.Float("learning_rate", 3e-4, 3e-3, sampling="log", default=1e-3)

        x = inputs = keras.Input(self.input_shape, name="face")
        for block in range(blocks):
            for _ in range(1 if block == 0 else convs):
                x = _conv(x, filters * 2 ** block, kernel, batch_norm)
            x = keras.layers.MaxPooling2D(name=f"pool{block + 1}")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        if dense:
            x = keras.layers.Dense(dense, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax", name="emotion")(x)
        model = keras.Model(inputs, outputs, name="emotion_cnn")
        return compile_emotion_model(model, learning_rate)


def _conv(x, filters: int, kernel: int, batch_norm: bool):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=not batch_norm)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def class_weights(labels: np.ndarray, power: float = 0.5, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Per-class loss weights ``count ** -power``, scaled so the average sample weighs 1.

    ``power`` 1 is full inverse frequency (disgust weighs 16x happy, which costs overall
    accuracy); 0.5 lifts the rare classes (disgust 4x) while keeping most of it.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    return (weights / (weights[labels].mean() if labels.size else 1.0)).astype(np.float32)
