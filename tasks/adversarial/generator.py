"""The simple-generator attack: adversarial images made by alternating two small Keras trainings.

A simple generator ``f(w) = x`` has one input neuron that is always 1 and no bias, so its kernel *is*
the image; a clip constraint on that kernel keeps every pixel in [0, 1] at no cost. For a sample
image x_i and a target class j the attack repeats

1. one step of f toward x_i (Adam, mean squared error), then
2. one step of the composite C(f) toward the one-hot of j (Adam, cross-entropy), C frozen,

until C(f) gives j at least the asked confidence, or the round limit is hit.

All pairs of a run are trained at once as one batched model: pair p owns row p of the kernel, and
Adam's moments are per weight, so each pair keeps its own weights and optimizer state. The losses
are summed over pairs (not averaged), so each row receives exactly the gradient it would get alone,
and the batched run equals the one-pair-at-a-time loop (tested).

Public entry point: ``attack(classifier, images, targets, config) -> AttackResult``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np


@dataclass(frozen=True)
class GeneratorConfig:
    # The study's stopping rule: C(f) must say the target with at least this probability.
    confidence: float = 0.9
    max_rounds: int = 2000
    # Weak pull toward x_i against a strong push to j: equal rates stall near 0.8 confidence.
    generator_lr: float = 1e-3
    composite_lr: float = 1e-2
    # False trains one pair after another (the study's plain loop); True trains all pairs at once.
    batched: bool = True
    # Rounds between the images kept for the "evolution" view; each keep is one host read.
    snapshot_every: int = 10


@dataclass(frozen=True)
class Pairs:
    """Which sample and which target class each attacked pair has."""

    samples: np.ndarray  # index into the attacked images, one per pair
    targets: np.ndarray
    sample_indices: tuple[int, ...]  # the data set indices of the samples, for tables


def make_pairs(sample_indices, classes: int) -> Pairs:
    """Every sample against every class: pair ``k`` is sample ``k // classes``, target ``k % classes``."""
    sample_indices = tuple(int(i) for i in sample_indices)
    samples = np.repeat(np.arange(len(sample_indices)), classes)
    return Pairs(np.array(sample_indices)[samples], np.tile(np.arange(classes), len(sample_indices)), sample_indices)


@dataclass
class PairResult:
    sample_index: int
    original_class: int  # what C says on the untouched sample
    target: int
    success: bool
    confidence: float  # C's probability of the target on the final image
    predicted: int
    predicted_confidence: float
    rounds: int
    l2: float
    linf: float
    why: str = ""


@dataclass
class AttackResult:
    pairs: list[PairResult]
    images: np.ndarray  # the adversarial image of each pair: at its first success, else at the last round
    confidence_history: np.ndarray  # [round, pair] target confidence, round 0 = the original image
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)
    seconds: float = 0.0
    rounds_run: int = 0
    # The round at which each pair first reached the confidence; -1 where it never did.
    done_round: np.ndarray | None = None

    def summary(self) -> dict:
        """Success and distances over the real pairs: a pair whose target is the class C already gives the
        sample succeeds at round 0 with distance 0, and counting it would pull every median down."""
        real = [p for p in self.pairs if p.target != p.original_class]
        success = [p for p in real if p.success]
        summary = {"pairs": len(real), "own_class_pairs": len(self.pairs) - len(real), "successes": len(success),
                   "success_rate": len(success) / max(len(real), 1), "seconds": round(self.seconds, 2)}
        for name in ("rounds", "l2", "linf"):
            values = [getattr(p, name) for p in success]
            summary[f"median_{name}"] = float(np.median(values)) if values else float("nan")
            summary[f"max_{name}"] = float(np.max(values)) if values else float("nan")
        return summary


class PixelRange(keras.constraints.Constraint):
    """Clips the kernel (the image) to [0, 1] after every update, so pixels are always valid."""

    def __call__(self, w):
        return keras.ops.clip(w, 0.0, 1.0)


class PairImages(keras.layers.Layer):
    """The simple generators of P pairs: pair p's image is its kernel row times its input, always 1.

    For P = 1 this is exactly ``Dense(H*W*C, use_bias=False)`` on the one input neuron.
    """

    def __init__(self, initial: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial = np.asarray(initial, dtype="float32")
        self.image_shape = tuple(self.initial.shape[1:])

    def build(self, input_shape) -> None:
        pairs, size = self.initial.shape[0], int(np.prod(self.image_shape))
        self.kernel = self.add_weight(shape=(pairs, size), initializer="zeros", constraint=PixelRange(),
                                      name="kernel")
        # f starts as x_i: the study's first "train f toward x_i" run to convergence, without its steps.
        self.kernel.assign(self.initial.reshape(pairs, size))

    def call(self, ones):
        return keras.ops.reshape(ones * self.kernel, (-1, *self.image_shape))

    def images(self) -> np.ndarray:
        return self.kernel.numpy().reshape((-1, *self.image_shape))


class InferenceOnly(keras.layers.Layer):
    """Runs a model in inference mode whatever the outer call says.

    A functional model passes its own ``training`` flag to every layer, overriding a ``training=False``
    given when the graph was built, so ``composite.train_on_batch`` would switch on the classifier's
    dropout and augmentation. This layer ignores the flag it is given.
    """

    def __init__(self, model: keras.Model, **kwargs) -> None:
        super().__init__(**kwargs)
        # An uncompiled view sharing the layers: the composite must not inherit the classifier's
        # compiled metrics, which are unbuilt for a model that was only loaded.
        self.model = keras.Model(model.inputs, model.outputs) if getattr(model, "inputs", None) else model

    def call(self, inputs, training=None):
        return self.model(inputs, training=False)


def attack(classifier: keras.Model, images: np.ndarray, targets: np.ndarray,
           config: GeneratorConfig = GeneratorConfig(), sample_ids=None) -> AttackResult:
    """Attacks ``classifier`` (probabilities out, frozen throughout) on pair p: ``images[p]`` -> ``targets[p]``.

    ``images`` are floats in [0, 1] shaped as the classifier's input. The classifier's weights are
    left bit-identical and its ``trainable`` flag is restored afterwards. ``sample_ids`` names each
    pair's sample in the result's rows (default: the pair's position).
    """
    images = np.asarray(images, dtype="float32")
    targets = np.asarray(targets, dtype="int64")
    started = time.perf_counter()
    was_trainable = classifier.trainable
    # Frozen before any composite is compiled: Keras 3 captures the trainable set at the first trace.
    classifier.trainable = False
    try:
        if config.batched:
            result = _attack_together(classifier, images, targets, config)
        else:
            result = _attack_one_by_one(classifier, images, targets, config)
    finally:
        classifier.trainable = was_trainable
    result.seconds = time.perf_counter() - started
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    result.pairs = _describe(classifier, images, targets, ids, result, config)
    return result


def _attack_one_by_one(classifier, images, targets, config) -> AttackResult:
    parts = [_attack_together(classifier, images[p:p + 1], targets[p:p + 1], config) for p in range(len(images))]
    rounds = max(part.confidence_history.shape[0] for part in parts)
    history = np.empty((rounds, len(images)), dtype="float32")
    for p, part in enumerate(parts):
        own = part.confidence_history[:, 0]
        # Held at its last value once the pair stops, as the batched run records it.
        history[:, p] = np.concatenate([own, np.full(rounds - len(own), own[-1])])
    done_rounds = np.array([part.done_round[0] for part in parts])
    return AttackResult([], np.concatenate([part.images for part in parts]), history, [],
                        rounds_run=rounds - 1, done_round=done_rounds)


@dataclass
class _Batch:
    """The generators and composite of the pairs still running (``active`` indexes all pairs)."""

    active: np.ndarray
    layer: PairImages
    generator: keras.Model
    composite: keras.Model

    @classmethod
    def build(cls, classifier, active, start_images, config) -> _Batch:
        ones = keras.Input((1,), name="one")
        layer = PairImages(start_images, name="simple_generator")
        generator = keras.Model(ones, layer(ones), name="f")
        generator.compile(optimizer=keras.optimizers.Adam(config.generator_lr),
                          loss=keras.losses.MeanSquaredError(reduction="sum"))
        # Inference mode: no augmentation or dropout, and BatchNorm uses its moving statistics.
        composite = keras.Model(ones, InferenceOnly(classifier, name="C")(generator.output), name="C_of_f")
        composite.compile(optimizer=keras.optimizers.Adam(config.composite_lr),
                          loss=keras.losses.CategoricalCrossentropy(reduction="sum"))
        return cls(np.asarray(active), layer, generator, composite)

    def round(self, originals, one_hot, targets) -> np.ndarray:
        """One alternating round for the active pairs; returns C's confidence in each pair's target."""
        ones = np.ones((len(self.active), 1), dtype="float32")
        self.generator.train_on_batch(ones, originals[self.active])
        self.composite.train_on_batch(ones, one_hot[self.active])
        return _target_confidence(self.composite, ones, targets[self.active])

    def keep(self, classifier, keep: np.ndarray, config) -> _Batch:
        """A smaller batch of the rows in ``keep``, with their weights and both optimizers' state.

        Adam's moments are per weight, so slicing their rows is exact; only the step counter is shared.
        """
        smaller = _Batch.build(classifier, self.active[keep], self.layer.images()[keep], config)
        for old, new in ((self.generator, smaller.generator), (self.composite, smaller.composite)):
            new.optimizer.build(new.trainable_variables)
            for source, target in zip(old.optimizer.variables, new.optimizer.variables, strict=True):
                value = source.numpy()
                target.assign(value if value.shape == tuple(target.shape) else value[keep])
        return smaller


def _attack_together(classifier, images, targets, config) -> AttackResult:
    """All pairs at once; a pair stops at its first success, and the batch shrinks as pairs stop."""
    count = len(images)
    one_hot = np.eye(int(classifier.output.shape[-1]), dtype="float32")[targets]
    batch = _Batch.build(classifier, np.arange(count), images, config)
    confidence = _target_confidence(batch.composite, np.ones((count, 1), "float32"), targets)
    current, history, snapshots = images.copy(), [confidence.copy()], [(0, images.copy())]
    done_round = np.where(confidence >= config.confidence, 0, -1)
    round_index = 0
    while round_index < config.max_rounds and (done_round < 0).any():
        round_index += 1
        batch_confidence = batch.round(images, one_hot, targets)
        running = done_round[batch.active] < 0
        rows = batch.active[running]
        confidence[rows] = batch_confidence[running]
        history.append(confidence.copy())
        newly = rows[batch_confidence[running] >= config.confidence]
        snapshot = round_index % config.snapshot_every == 0
        if newly.size or snapshot or round_index == config.max_rounds:
            current[rows] = batch.layer.images()[running]
            done_round[newly] = round_index
        if snapshot:
            snapshots.append((round_index, current.copy()))
        still = done_round[batch.active] < 0
        # Rebuilding costs a retrace (about a second), so the batch shrinks only by 4x or more.
        if 0 < still.sum() <= len(batch.active) // 4:
            batch = batch.keep(classifier, still, config)
    snapshots.append((round_index, current.copy()))
    return AttackResult([], current, np.stack(history), snapshots, rounds_run=round_index, done_round=done_round)


def _target_confidence(composite, ones, targets) -> np.ndarray:
    probabilities = np.asarray(composite.predict_on_batch(ones))
    return probabilities[np.arange(len(targets)), targets]


def _describe(classifier, images, targets, sample_ids, result, config) -> list[PairResult]:
    """One row per pair, measured on the final images themselves (not on the training graph)."""
    probabilities = np.asarray(classifier.predict_on_batch(result.images))
    originals = np.asarray(classifier.predict_on_batch(images)).argmax(axis=1)
    rows = []
    for p, target in enumerate(targets):
        delta = (result.images[p] - images[p]).ravel()
        reached = int(result.done_round[p])
        success = reached >= 0
        rows.append(PairResult(
            sample_index=int(sample_ids[p]), original_class=int(originals[p]), target=int(target), success=success,
            confidence=float(probabilities[p, target]), predicted=int(probabilities[p].argmax()),
            predicted_confidence=float(probabilities[p].max()),
            rounds=reached if success else config.max_rounds,
            l2=float(np.linalg.norm(delta)), linf=float(np.abs(delta).max()),
            why="" if success else f"confidence {probabilities[p, target]:.3f} after "
                                   f"{config.max_rounds} rounds; raise --max-rounds or --composite-lr",
        ))
    return rows


# --- figures -------------------------------------------------------------------------------------
def tile_grid(originals: np.ndarray, images: np.ndarray, classes: int) -> np.ndarray:
    """One [rows*H, (1+classes)*W, C] image: each sample's original, then its image per target class."""
    rows = []
    for s, original in enumerate(originals):
        cells = [original, *images[s * classes:(s + 1) * classes]]
        rows.append(np.concatenate(cells, axis=1))
    grid = np.concatenate(rows, axis=0)
    return np.clip(grid, 0.0, 1.0)


def grid_figure(classifier, originals: np.ndarray, sample_indices, result: AttackResult, class_names):
    """Rows: samples; columns: the original, then the image made for each target class.

    Every cell is titled with the class C predicts for it and C's confidence in that class.
    """
    import matplotlib.pyplot as plt

    classes = len(class_names)
    original_probs = np.asarray(classifier.predict_on_batch(originals))
    figure, axes = plt.subplots(len(originals), classes + 1, figsize=(1.35 * (classes + 1), 1.55 * len(originals)),
                                squeeze=False)
    for s, original in enumerate(originals):
        cells = [(original, original_probs[s], f"#{sample_indices[s]}")]
        for j in range(classes):
            pair = result.pairs[s * classes + j]
            cells.append((result.images[s * classes + j], None, pair))
        for column, (image, probs, label) in enumerate(cells):
            axis = axes[s, column]
            axis.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                predicted, confidence = int(probs.argmax()), float(probs.max())
                axis.set_ylabel(label, fontsize=8)
                title = f"{class_names[predicted]} {confidence:.2f}"
            else:
                title = f"{class_names[label.predicted]} {label.predicted_confidence:.2f}"
            failed = column > 0 and not label.success
            axis.set_title(title, fontsize=7, color="red" if failed else "black")
    for j, name in enumerate(("original", *(f"-> {n}" for n in class_names))):
        axes[-1, j].set_xlabel(name, fontsize=7)
    figure.tight_layout()
    return figure
