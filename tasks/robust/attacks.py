"""L-infinity attacks on image classifiers: FGSM, FGSM with a random start, PGD with random restarts.

Written with ``tf.GradientTape`` so they trace into a ``tf.function`` (a training step or an
evaluation loop) and run on any Keras 3 model with the TensorFlow backend; the attack libraries do
not support Keras 3 well. Inputs are images scaled to ``[0, 1]``; every adversarial example stays
inside both the epsilon ball around its image and that range.

The loss is the cross-entropy of the model's output or the margin (Carlini-Wagner) loss, the best
other logit minus the true one. For a softmax output both come from the logits the softmax saw
(Keras keeps them on the output tensor), so a confidently right model still gives a useful gradient.

``robust_mask`` is the strong evaluation: per image, the worst case over several attacks and their
random restarts, where an image counts as broken as soon as any iterate inside the ball is
misclassified.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from common.errors import UserError

METHODS = ("fgsm", "fgsm-rs", "pgd")
LOSSES = ("ce", "margin")


@dataclass(frozen=True)
class AttackConfig:
    """One L-infinity attack. ``fast`` and ``pgd`` give the settings the literature uses."""

    method: str = "pgd"
    epsilon: float = 0.3
    steps: int = 40
    step_size: float = 0.01
    random_start: bool = True
    clip_min: float = 0.0
    clip_max: float = 1.0
    # ce: cross-entropy, what training ascends; margin: the CW loss, which finds what ce's saturation hides.
    loss: str = "ce"
    # Independent random starts; an image survives only if it survives every one (evaluation only).
    restarts: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"attack {self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if self.loss not in LOSSES:
            raise UserError(f"attack loss {self.loss!r} is unknown; use one of {', '.join(LOSSES)}")
        if self.restarts < 1:
            raise UserError(f"an attack needs restarts >= 1, got {self.restarts}")
        if not 0 < self.epsilon <= self.clip_max - self.clip_min:
            raise UserError(f"--epsilon {self.epsilon} must be in (0, {self.clip_max - self.clip_min}]; "
                            "e.g. 0.3 for MNIST or 0.0314 (8/255) for CIFAR-10")
        if self.steps < 1 or self.step_size <= 0:
            raise UserError(f"an attack needs steps >= 1 and step_size > 0, got {self.steps} and {self.step_size}")

    @classmethod
    def fgsm(cls, epsilon: float) -> AttackConfig:
        """Plain FGSM (Goodfellow et al. 2015): one signed-gradient step of size epsilon."""
        return cls("fgsm", epsilon, steps=1, step_size=epsilon, random_start=False)

    @classmethod
    def fast(cls, epsilon: float) -> AttackConfig:
        """FGSM from a uniform random start with step 1.25 epsilon ("fast" training, Wong et al. 2020)."""
        return cls("fgsm-rs", epsilon, steps=1, step_size=1.25 * epsilon, random_start=True)

    @classmethod
    def pgd(cls, epsilon: float, steps: int, step_size: float | None = None, loss: str = "ce",
            restarts: int = 1) -> AttackConfig:
        """PGD from a random start (Madry et al. 2018); the default step covers the ball 2.5 times."""
        size = step_size if step_size is not None else 2.5 * epsilon / steps
        return cls("pgd", epsilon, steps=steps, step_size=size, random_start=True, loss=loss, restarts=restarts)

    def describe(self) -> str:
        start = ", random start" if self.random_start else ""
        loss = ", margin loss" if self.loss == "margin" else ""
        restarts = f" x {self.restarts} restarts" if self.restarts > 1 else ""
        if self.method == "pgd":
            return f"PGD-{self.steps}{restarts} (eps {self.epsilon:.4g}, step {self.step_size:.4g}{start}{loss})"
        return f"{self.method.upper()} (eps {self.epsilon:.4g}, step {self.step_size:.4g}{start}{loss})"


def strong_attacks(epsilon: float, steps: int = 50, restarts: int = 10) -> tuple[AttackConfig, ...]:
    """The strong evaluation: PGD with cross-entropy and PGD with the margin loss, each with restarts.

    Wong et al. (2020) evaluate with PGD-50 and 10 restarts; the margin loss (Carlini and Wagner
    2017) breaks images whose cross-entropy gradient vanishes. The step covers the ball 2.5 times.
    """
    return (AttackConfig.pgd(epsilon, steps, restarts=restarts),
            AttackConfig.pgd(epsilon, steps, loss="margin", restarts=restarts))


def _logits(outputs):
    """The logits behind a softmax output (Keras keeps them on the tensor), else the log-probabilities."""
    logits = getattr(outputs, "_keras_logits", None)
    return logits if logits is not None else tf.math.log(tf.maximum(outputs, 1e-30))


def attack_loss(outputs, y, loss: str = "ce"):
    """Per-example loss the attack ascends: cross-entropy, or the best other logit minus the true one."""
    if loss == "ce":
        return keras.ops.sparse_categorical_crossentropy(y, outputs)
    logits = _logits(outputs)
    true = tf.one_hot(y, tf.shape(logits)[-1]) > 0
    other = tf.reduce_max(tf.where(true, tf.float32.min, logits), axis=-1)
    return other - tf.reduce_sum(tf.where(true, logits, 0.0), axis=-1)


def loss_gradient(model, x, y, loss: str = "ce"):
    """The gradient of the per-example attack loss with respect to the inputs ``x``."""
    return _gradient_and_predictions(model, x, y, loss)[0]


def _gradient_and_predictions(model, x, y, loss: str):
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = model(x, training=False)
        value = attack_loss(outputs, y, loss)
    return tape.gradient(value, x), tf.argmax(outputs, axis=-1, output_type=y.dtype)


def perturb(model, x, y, config: AttackConfig, epsilon=None, seed=None):
    """Adversarial versions of the batch ``x`` (float, in [clip_min, clip_max]) against labels ``y``.

    ``epsilon`` overrides the configured budget (a tensor is fine: training may ramp it up), and
    the step size scales with it. One random start (``restarts`` is for ``robust_mask``), drawn from
    ``seed`` (a ``keras.random.SeedGenerator``, whose state a checkpoint keeps) when one is given.
    """
    return _attack(model, x, y, config, epsilon, seed)[0]


def _attack(model, x, y, config: AttackConfig, epsilon=None, seed=None):
    """The adversarial batch and, per image, whether every iterate was still classified right."""
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y)
    eps = tf.cast(config.epsilon if epsilon is None else epsilon, tf.float32)
    step = eps * (config.step_size / config.epsilon)
    delta = tf.zeros_like(x)
    if config.random_start:
        delta = random_uniform(tf.shape(x), -1.0, 1.0, seed) * eps
        delta = _project(x, delta, eps, config)
    survived = tf.ones(tf.shape(y), tf.bool)
    for _ in tf.range(config.steps):
        gradient, predicted = _gradient_and_predictions(model, x + delta, y, config.loss)
        survived = survived & tf.equal(predicted, y)
        delta = _project(x, delta + step * tf.sign(gradient), eps, config)
    return tf.stop_gradient(x + delta), survived


def trades_perturb(model, x, clean, epsilon, steps: int, step_size, seed=None, clip=(0.0, 1.0)):
    """TRADES's inner maximisation (Zhang et al. 2019): from ``x`` plus a tiny Gaussian, signed-gradient steps
    that raise KL(``clean`` || model(x')), the clean batch's probabilities against the perturbed batch's,
    projected into the ``epsilon`` ball and the pixel range. Labels play no part: the adversary pushes the
    prediction away from the clean one."""
    x = tf.convert_to_tensor(x, tf.float32)
    eps = tf.cast(epsilon, tf.float32)
    noise = keras.random.normal(tf.shape(x), seed=seed) if seed is not None else tf.random.normal(tf.shape(x))
    adversarial = tf.clip_by_value(x + 0.001 * noise, *clip)
    for _ in tf.range(steps):
        with tf.GradientTape() as tape:
            tape.watch(adversarial)
            divergence = tf.reduce_sum(keras.losses.kl_divergence(clean, model(adversarial, training=False)))
        step = tf.sign(tape.gradient(divergence, adversarial)) * tf.cast(step_size, tf.float32)
        adversarial = tf.clip_by_value(tf.clip_by_value(adversarial + step, x - eps, x + eps), *clip)
    return tf.stop_gradient(adversarial)


def robust_mask(model, x, y, attacks) -> tf.Tensor:
    """Per image: classified right, and by every iterate of every restart of every attack.

    Each restart attacks only the images still standing (gathered into a smaller batch), so the
    cost falls with the model's robust accuracy. Traces inside a ``tf.function``.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.int64)

    def restart(robust, attack):
        index = tf.where(robust)
        xs, ys = tf.gather_nd(x, index), tf.gather_nd(y, index)
        adversarial, survived = _attack(model, xs, ys, attack)
        final = tf.equal(tf.argmax(model(adversarial, training=False), axis=-1), ys)
        return tf.tensor_scatter_nd_update(robust, index, survived & final)

    def attacked():
        robust = tf.equal(tf.argmax(model(x, training=False), axis=-1), y)
        for attack in attacks:
            for _ in range(attack.restarts):
                # An empty batch is skipped, not attacked: TensorFlow's CPU convolutions reject it.
                robust = tf.cond(tf.reduce_any(robust), lambda r=robust, a=attack: restart(r, a), lambda r=robust: r)
        return robust

    return tf.cond(tf.size(y) > 0, attacked, lambda: tf.zeros(tf.shape(y), tf.bool))


def _project(x, delta, eps, config: AttackConfig):
    """Clips ``delta`` into the epsilon ball and keeps ``x + delta`` in the valid pixel range."""
    delta = tf.clip_by_value(delta, -eps, eps)
    return tf.clip_by_value(x + delta, config.clip_min, config.clip_max) - x


def accuracy_under_attack(model, x: np.ndarray, y: np.ndarray, config: AttackConfig | None,
                          batch_size: int = 500, seed=None) -> float:
    """Top-1 accuracy on ``(x, y)`` after the attack (``config`` None: clean accuracy); random starts
    drawn from ``seed`` (a ``keras.random.SeedGenerator``) when given."""
    correct = 0
    step = _attack_and_score(model, config, seed)
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[start:start + batch_size], tf.float32)
        yb = tf.convert_to_tensor(y[start:start + batch_size], tf.int64)
        correct += int(step(xb, yb))
    return correct / max(len(x), 1)


def _attack_and_score(model, config: AttackConfig | None, seed=None):
    @tf.function(reduce_retracing=True)
    def step(x, y):
        adversarial = x if config is None else perturb(model, x, y, config, seed=seed)
        predicted = tf.argmax(model(adversarial, training=False), axis=-1)
        return tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.int64))

    return step


def worst_case_accuracy(model, x: np.ndarray, y: np.ndarray, attacks, batch_size: int = 500) -> float:
    """Accuracy when every image meets its worst attack (``robust_mask`` over ``attacks``)."""
    @tf.function(reduce_retracing=True)
    def count(xb, yb):
        return tf.reduce_sum(tf.cast(robust_mask(model, xb, yb, attacks), tf.int64))

    correct = 0
    for start in range(0, len(x), batch_size):
        correct += int(count(tf.convert_to_tensor(x[start:start + batch_size], tf.float32),
                             tf.convert_to_tensor(y[start:start + batch_size], tf.int64)))
    return correct / max(len(x), 1)


def attack_batch(model, x: np.ndarray, y: np.ndarray, config: AttackConfig) -> np.ndarray:
    """The adversarial examples for one small batch, as a NumPy array (for figures)."""
    return perturb(model, tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.int64), config).numpy()


def distances(clean: np.ndarray, adversarial: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example L2 and L-infinity distances between two image batches."""
    difference = (adversarial.astype(np.float64) - clean.astype(np.float64)).reshape(len(clean), -1)
    return {"l2": np.sqrt((difference ** 2).sum(axis=1)), "linf": np.abs(difference).max(axis=1)}


def random_uniform(shape, low, high, seed=None, dtype=tf.float32):
    """``tf.random.uniform``, or a draw from ``seed`` (a ``keras.random.SeedGenerator``) when given."""
    if seed is None:
        return tf.random.uniform(shape, low, high, dtype=dtype)
    import keras

    if dtype.is_integer:
        return tf.cast(tf.floor(keras.random.uniform(shape, float(low), float(high), seed=seed)), dtype)
    return keras.random.uniform(shape, low, high, dtype=dtype.name, seed=seed)
