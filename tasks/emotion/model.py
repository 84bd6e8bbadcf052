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


def make_augmentation(rotation_degrees: float = 0.0, framing_zoom: float = 0.0, framing_shift: float = 0.0,
                      seed: int | None = None) -> keras.Sequential:
    """Random flips, then (each on half the faces) the framing a face detector gives: a zoom of up to
    +-``framing_zoom`` of the face side and a shift of up to +-``framing_shift``; and, when
    ``rotation_degrees`` > 0, one mild rotation. Takes [0, 1] faces; training only.

    The random crop is the network's own first layer (``FaceCrop``); the augmentation stays out of
    the exported model, so the ``.h5`` and TFLite files hold only the classifier.
    """
    layers = [keras.layers.RandomFlip("horizontal", seed=seed)]
    if framing_zoom:
        layers.append(RandomApply(keras.layers.RandomZoom((-framing_zoom, framing_zoom), fill_mode="reflect",
                                                          seed=seed), seed=seed))
    if framing_shift:
        layers.append(RandomApply(keras.layers.RandomTranslation(framing_shift, framing_shift, fill_mode="reflect",
                                                                 seed=seed), seed=seed))
    if rotation_degrees:
        layers.append(keras.layers.RandomRotation(rotation_degrees / 360.0, fill_mode="reflect", seed=seed))
    return keras.Sequential(layers, name="augmentation")


class RandomApply(keras.layers.Layer):
    """``layer`` applied to each face with probability ``rate``; the other faces pass unchanged."""

    def __init__(self, layer: keras.layers.Layer, rate: float = 0.5, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.layer, self.rate = layer, float(rate)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        self.layer.build(input_shape)

    def call(self, faces, training=False):
        if not training:
            return faces
        changed = self.layer(faces, training=True)
        chosen = keras.random.uniform((tf.shape(faces)[0], 1, 1, 1), seed=self.seed_generator) < self.rate
        return tf.where(chosen, tf.cast(changed, faces.dtype), faces)


@keras.saving.register_keras_serializable(package="trainlab")
class FaceCrop(keras.layers.Layer):
    """A ``size`` x ``size`` crop of each face: at a random offset per face in training, the centre at inference.

    Unlike ``keras.layers.RandomCrop`` (one offset for the whole batch, and a resize at inference),
    every face gets its own offset, and inference sees the exact centre pixels, never a resized face.
    The offsets come from a seed generator whose state the model's checkpoint keeps.
    """

    def __init__(self, size: int, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, faces, training=False):
        height, width = faces.shape[1], faces.shape[2]
        if self.size == height == width:
            return faces
        if not training:
            top, left = (height - self.size) // 2, (width - self.size) // 2
            return faces[:, top:top + self.size, left:left + self.size, :]
        batch = tf.shape(faces)[0]
        offsets = keras.random.randint((batch, 2), 0, height - self.size + 1, seed=self.seed_generator)
        rows = offsets[:, :1] + tf.range(self.size)[None, :]
        columns = offsets[:, 1:] + tf.range(self.size)[None, :]
        faces = tf.gather(faces, rows, axis=1, batch_dims=1)
        return tf.gather(faces, columns, axis=2, batch_dims=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


@keras.saving.register_keras_serializable(package="trainlab")
class SoftTargetCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels or on soft targets (rows summing to 1), with label smoothing.

    Integer labels are what training and evaluation pass; soft targets (a user's mixup) pass
    through. ``label_smoothing`` 0 is
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
    """Integer labels from integer labels or soft targets (the larger share of a mixed pair)."""
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


def compile_emotion_model(model: keras.Model, learning_rate: float = 0.05, label_smoothing: float = 0.0,
                          weight_decay: float = 5e-3) -> keras.Model:
    # SGD with Nesterov momentum and decoupled decay, as the public FER2013 recipes; Keras multiplies
    # the decay by the learning rate, so 5e-3 at 0.05 shrinks each weight by 2.5e-4 a step.
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=weight_decay or None)
    model.compile(optimizer=optimizer,
                  loss=SoftTargetCrossentropy(label_smoothing),
                  metrics=[LabelAccuracy(), MacroF1()])
    return model


class EmotionHyperModel(keras_tuner.HyperModel):
    """VGG-style CNNs: a random crop of the face, then blocks of convolutions (batch norm, ReLU) that
    double the width and halve the size, global average pooling, dropout and the softmax.

    Searched: width, depth, convolutions per block, dropout, and the training choices learning
    rate, weight decay, label smoothing and crop size. The default point is ``defaults`` (an
    ``EmotionConfig``: its recipe flags) with 4 blocks of 2 convolutions from 32 filters, dropout
    0.4: 1.18M parameters.
    """

    def __init__(self, input_shape=(48, 48, 1), num_classes: int = NUM_CLASSES, defaults=None) -> None:
        super().__init__(name="emotion_cnn")
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.defaults = defaults

    def _default(self, name: str, fallback):
        return getattr(self.defaults, name, fallback) if self.defaults is not None else fallback

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        filters = hp.Choice("filters", [16, 24, 32, 48], default=32)
        blocks = hp.Int("blocks", 3, 4, default=4)
        convs = hp.Int("convs_per_block", 1, 3, default=2)
        dropout = hp.Float("dropout", 0.2, 0.5, step=0.1, default=0.4)
        learning_rate = hp.Float("learning_rate", 0.01, 0.1, sampling="log",
                                 default=self._default("learning_rate", 0.05))
        weight_decay = hp.Float("weight_decay", 1e-3, 1e-2, sampling="log", default=self._default("weight_decay", 5e-3))
        smoothing = self._default("label_smoothing", 0.1)
        label_smoothing = hp.Choice("label_smoothing", sorted({0.0, 0.1, 0.2, smoothing}), default=smoothing)
        crop = self._default("crop_size", 44)
        crop = hp.Choice("crop_size", sorted({40, 44, 48, crop}), default=crop)

        x = inputs = keras.Input(self.input_shape, name="face")
        x = FaceCrop(crop, name="face_crop")(x)
        for block in range(blocks):
            for _ in range(convs):
                x = _conv(x, filters * 2 ** block)
            x = keras.layers.MaxPooling2D(name=f"pool{block + 1}")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(dropout)(x)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax", name="emotion")(x)
        model = keras.Model(inputs, outputs, name="emotion_cnn")
        return compile_emotion_model(model, learning_rate, label_smoothing, weight_decay)


# Keras's default 0.99 lets the moving statistics trail the weights for hundreds of steps: after a
# 470-step search trial the default network scored 0.23 on PublicTest with them and 0.35 with batch
# statistics, so every trial sat at the majority-class rate. 0.9 (PyTorch's default) keeps up.
BATCH_NORM_MOMENTUM = 0.9


def _conv(x, filters: int, kernel: int = 3):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
    return keras.layers.Activation("relu")(x)


def search_space_fingerprint(hypermodel: keras_tuner.HyperModel) -> dict:
    """The names, kinds and ranges of the searched hyperparameters, as plain JSON-able data."""
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    keras.backend.clear_session()
    return {item.name: {"class": type(item).__name__, **item.get_config()} for item in hp.space}


def inference_model(model: keras.Model, views: str = "none") -> keras.Model:
    """The trained network as a graph of standard Keras layers only, taking the 48x48 face: the file
    it is saved to loads with ``keras.models.load_model`` alone, without this project's code.

    The training-time ``FaceCrop`` gives way to ``Cropping2D`` (its inference is the exact centre
    crop). ``views``: ``"none"`` (the centre crop), ``"flip"`` (it and its mirror image) or
    ``"ten-crop"`` (the four corner crops and the centre crop of the face and of its mirror image);
    the network's probabilities are averaged over the views, so each face costs ``views`` times the
    single network's FLOPs.
    """
    network = _uncropped(model)
    face = keras.Input(model.input_shape[1:], name="face")
    size, side = network.input_shape[1], face.shape[1]
    faces = [face] if views == "none" else [face, _mirror(face)]
    crops = []
    for index, image in enumerate(faces):
        for offset in _crop_offsets(side, size, views == "ten-crop"):
            crops.append(_crop(image, side, size, offset, f"view{len(crops)}_{'mirror' if index else 'face'}"))
    outputs = [network(crop) for crop in crops]
    output = outputs[0] if len(outputs) == 1 else keras.layers.Average(name="view_mean", dtype="float32")(outputs)
    return keras.Model(face, output, name="emotion" if views == "none" else f"emotion_{views.replace('-', '_')}")


def _uncropped(model: keras.Model) -> keras.Model:
    """The network after its crop layer (its input: the crop), or the network itself when it has none;
    a model made by ``inference_model`` gives back the network it nests."""
    nested = next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)
    if nested is not None:
        return nested
    crop = next((layer for layer in model.layers if isinstance(layer, FaceCrop)), None)
    if crop is None:
        return model
    return keras.Model(crop.output, model.output, name=model.name)


def _crop_offsets(side: int, size: int, ten_crop: bool) -> list[tuple[int, int]]:
    centre = ((side - size) // 2, (side - size) // 2)
    if not ten_crop:
        return [centre]
    far = side - size
    return [(0, 0), (0, far), (far, 0), (far, far), centre]


def _crop(image, side: int, size: int, offset: tuple[int, int], name: str):
    top, left = offset
    return keras.layers.Cropping2D(((top, side - size - top), (left, side - size - left)), name=name,
                                   dtype="float32")(image)


def _mirror(face):
    """The face mirrored left to right with standard layers: a fixed anti-diagonal Dense over the width
    (exact in float32: each output pixel is one input pixel times 1)."""
    height, width, channels = face.shape[1:]
    mirror = keras.layers.Dense(width, use_bias=False, trainable=False, name="mirror", dtype="float32")
    widths_last = keras.layers.Permute((1, 3, 2), name="widths_last", dtype="float32")(face)
    mirrored = mirror(widths_last)
    mirror.set_weights([np.fliplr(np.eye(width, dtype=np.float32))])
    return keras.layers.Permute((1, 3, 2), name="mirrored", dtype="float32")(mirrored)


def views_of(model: keras.Model) -> int:
    """How many views of a face ``model`` averages (1 for a single network)."""
    mean = next((layer for layer in model.layers if isinstance(layer, keras.layers.Average)), None)
    return 1 if mean is None else len(mean.input)


def class_weights(labels: np.ndarray, power: float = 0.5, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Per-class loss weights ``count ** -power``, scaled so the average sample weighs 1.

    ``power`` 1 is full inverse frequency (disgust weighs 16x happy, which costs overall
    accuracy); 0.5 lifts the rare classes (disgust 4x) while keeping most of it.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    return (weights / (weights[labels].mean() if labels.size else 1.0)).astype(np.float32)
