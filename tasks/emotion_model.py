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
        y_true = hard_labels(y_true, self.num_classes)
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


@keras.saving.register_keras_serializable(package="trainlab")
class SoftTargetCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels or on soft targets (rows summing to 1), with label smoothing.

    Integer labels are what evaluation passes; mixup passes soft targets. ``label_smoothing`` 0 is
    exactly ``sparse_categorical_crossentropy``, the loss the shipped network was trained with.
    """

    def __init__(self, label_smoothing: float = 0.0, num_classes: int = NUM_CLASSES,
                 name: str = "soft_target_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.num_classes = num_classes

    def call(self, y_true, y_pred):
        targets = as_soft_targets(y_true, self.num_classes)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return keras.losses.categorical_crossentropy(targets, y_pred)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "num_classes": self.num_classes}


def as_soft_targets(y_true, num_classes: int = NUM_CLASSES):
    """Integer labels (any shape with one label a sample) to one-hot rows; soft target rows pass through."""
    if _is_soft(y_true, num_classes):
        return tf.cast(y_true, tf.float32)
    return tf.one_hot(tf.reshape(tf.cast(y_true, tf.int32), [-1]), num_classes)


def hard_labels(y_true, num_classes: int = NUM_CLASSES):
    """Integer labels from integer labels or soft targets (the larger share of a mixup pair)."""
    if _is_soft(y_true, num_classes):
        return tf.argmax(y_true, axis=-1, output_type=tf.int32)
    return tf.reshape(tf.cast(y_true, tf.int32), [-1])


def _is_soft(y_true, num_classes: int) -> bool:
    shape = tuple(y_true.shape)
    return len(shape) == 2 and shape[-1] == num_classes


@keras.saving.register_keras_serializable(package="trainlab")
class LabelAccuracy(keras.metrics.Metric):
    """Top-1 accuracy against integer labels or the larger share of a soft target."""

    def __init__(self, name: str = "accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        hit = tf.cast(tf.equal(hard_labels(y_true), tf.argmax(y_pred, axis=-1, output_type=tf.int32)), self.dtype)
        weights = tf.ones_like(hit) if sample_weight is None else tf.reshape(tf.cast(sample_weight, self.dtype), [-1])
        self.correct.assign_add(tf.reduce_sum(hit * weights))
        self.total.assign_add(tf.reduce_sum(weights))

    def result(self):
        return tf.math.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def compile_emotion_model(model: keras.Model, learning_rate: float = 1e-3, label_smoothing: float = 0.0) -> keras.Model:
    # AdamW's decoupled weight decay regularises the dense head without an L2 term in the loss.
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=1e-4),
                  loss=SoftTargetCrossentropy(label_smoothing),
                  metrics=[LabelAccuracy(), MacroF1()])
    return model


def mixup(x, y, weights, seed: keras.random.SeedGenerator, alpha: float = 0.2, num_classes: int = NUM_CLASSES):
    """Mixes each face with another of the batch (Zhang et al., 2018): (faces, soft targets, weights).

    The class weights mix into the target, so the weighted cross-entropy of the mixture equals the
    mixture of the two weighted cross-entropies exactly. Draws come from ``seed``, whose state a
    checkpoint keeps, so a resumed run mixes as an uninterrupted one would.
    """
    first = keras.random.gamma(tf.shape(y)[:1], alpha, seed=seed)
    share = first / (first + keras.random.gamma(tf.shape(y)[:1], alpha, seed=seed))
    partner = keras.random.shuffle(tf.range(tf.shape(y)[0]), seed=seed)
    x_share = tf.reshape(share, [-1, 1, 1, 1])
    mixed = x_share * x + (1.0 - x_share) * tf.gather(x, partner)
    a, b = share * weights, (1.0 - share) * tf.gather(weights, partner)
    total = a + b
    targets = (a[:, None] * tf.one_hot(y, num_classes)
               + b[:, None] * tf.one_hot(tf.gather(y, partner), num_classes)) / total[:, None]
    return mixed, targets, total


class EmotionHyperModel(keras_tuner.HyperModel):
    """VGG-style or residual CNNs: a one-conv stem, then blocks that double the width and halve the size.

    Searched: the block kind (plain VGG stack or residual unit with a projection shortcut), blocks,
    base filters (up to 64, the width of the VGG nets that pass 70% on FER2013), convolutions per
    block, kernel size, batch norm, dropout, dense width, and the training choices learning rate,
    label smoothing and mixup. The defaults are the network shipped in ``models/`` (64.45%).
    """

    def __init__(self, input_shape=(48, 48, 1), num_classes: int = NUM_CLASSES) -> None:
        super().__init__(name="emotion_cnn")
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        kind = hp.Choice("block", ["vgg", "residual"], default="vgg")
        blocks = hp.Int("blocks", 3, 4, default=4)
        filters = hp.Choice("filters", [16, 24, 32, 48, 64], default=32)
        convs = hp.Int("convs_per_block", 1, 3, default=2)
        kernel = hp.Choice("kernel_size", [3, 5], default=3)
        batch_norm = hp.Boolean("batch_norm", default=True)
        dropout = hp.Float("dropout", 0.2, 0.5, step=0.1, default=0.4)
        dense = hp.Choice("dense", [0, 128, 256], default=256)
        learning_rate = hp.Float("learning_rate", 3e-4, 3e-3, sampling="log", default=1e-3)
        label_smoothing = hp.Choice("label_smoothing", [0.0, 0.1], default=0.0)
        hp.Boolean("mixup", default=False)  # read by the task's training step

        x = inputs = keras.Input(self.input_shape, name="face")
        for block in range(blocks):
            width = filters * 2 ** block
            if block == 0:
                x = _conv(x, width, kernel, batch_norm)
            elif kind == "residual":
                x = _residual(x, width, kernel, batch_norm, convs)
            else:
                for _ in range(convs):
                    x = _conv(x, width, kernel, batch_norm)
            x = keras.layers.MaxPooling2D(name=f"pool{block + 1}")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        if dense:
            x = keras.layers.Dense(dense, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax", name="emotion")(x)
        model = keras.Model(inputs, outputs, name="emotion_cnn")
        return compile_emotion_model(model, learning_rate, label_smoothing)


# Keras's default 0.99 lets the moving statistics trail the weights for hundreds of steps: after a
# 470-step search trial the default network scored 0.23 on PublicTest with them and 0.35 with batch
# statistics, so every trial sat at the majority-class rate. 0.9 (PyTorch's default) keeps up.
BATCH_NORM_MOMENTUM = 0.9


def _conv(x, filters: int, kernel: int, batch_norm: bool, activation: bool = True):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=not batch_norm)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
    return keras.layers.Activation("relu")(x) if activation else x


def _residual(x, filters: int, kernel: int, batch_norm: bool, convs: int):
    """``convs`` convolutions added to a 1x1 projection of the input (He et al., 2016), then ReLU."""
    shortcut = _conv(x, filters, 1, batch_norm, activation=False)
    for i in range(convs):
        x = _conv(x, filters, kernel, batch_norm, activation=i < convs - 1)
    return keras.layers.Activation("relu")(keras.layers.Add()([x, shortcut]))


def search_space_fingerprint(hypermodel: keras_tuner.HyperModel) -> dict:
    """The names, kinds and ranges of the searched hyperparameters, as plain JSON-able data."""
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    keras.backend.clear_session()
    return {item.name: {"class": type(item).__name__, **item.get_config()} for item in hp.space}


def with_test_time_augmentation(model: keras.Model, shifts: int = 0) -> keras.Model:
    """One graph that averages ``model``'s probabilities over the face, its mirror image and, when
    ``shifts`` > 0, the four copies moved ``shifts`` pixels up, down, left and right (border mirrored).

    The views go through the network as one batch, so the exported ``.h5`` and TFLite files stay
    one model; each face costs ``views`` times the single network's FLOPs.
    """
    face = keras.Input(model.input_shape[1:], name="face")
    views = [face, _Mirror(name="tta_mirror")(face)]
    for dy, dx in ((shifts, 0), (-shifts, 0), (0, shifts), (0, -shifts)) if shifts else ():
        views.append(_Shift(dy, dx, name=f"tta_shift_{dy}_{dx}".replace("-", "m"))(face))
    stacked = keras.layers.Concatenate(axis=0, name="tta_views")(views)
    probabilities = model(stacked)
    outputs = _ViewMean(len(views), name="emotion")(probabilities)
    return keras.Model(face, outputs, name=f"{model.name}_tta{len(views)}")


@keras.saving.register_keras_serializable(package="trainlab")
class _Mirror(keras.layers.Layer):
    """The face mirrored left to right (the deterministic half of training's RandomFlip)."""

    def call(self, faces):
        return tf.reverse(faces, axis=[2])


@keras.saving.register_keras_serializable(package="trainlab")
class _Shift(keras.layers.Layer):
    """The face moved by (dy, dx) pixels, the uncovered border filled with its mirror image."""

    def __init__(self, dy: int, dx: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dy, self.dx = int(dy), int(dx)

    def call(self, faces):
        pad = max(abs(self.dy), abs(self.dx))
        padded = tf.pad(faces, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
        height, width = tf.shape(faces)[1], tf.shape(faces)[2]
        return padded[:, pad - self.dy:pad - self.dy + height, pad - self.dx:pad - self.dx + width, :]

    def get_config(self):
        return {**super().get_config(), "dy": self.dy, "dx": self.dx}


@keras.saving.register_keras_serializable(package="trainlab")
class _ViewMean(keras.layers.Layer):
    """The mean over ``views`` stacked copies of each face's probabilities (views x batch rows in)."""

    def __init__(self, views: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.views = int(views)

    def call(self, probabilities):
        return tf.reduce_mean(tf.reshape(probabilities, [self.views, -1, probabilities.shape[-1]]), axis=0)

    def get_config(self):
        return {**super().get_config(), "views": self.views}


def class_weights(labels: np.ndarray, power: float = 0.5, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Per-class loss weights ``count ** -power``, scaled so the average sample weighs 1.

    ``power`` 1 is full inverse frequency (disgust weighs 16x happy, which costs overall
    accuracy); 0.5 lifts the rare classes (disgust 4x) while keeping most of it.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    return (weights / (weights[labels].mean() if labels.size else 1.0)).astype(np.float32)
