"""L-infinity attacks on image classifiers: FGSM, FGSM with a random start, and PGD with a random start.

Written with ``tf.GradientTape`` so they trace into a ``tf.function`` (a training step or an
evaluation loop) and run on any Keras 3 model with the TensorFlow backend; the attack libraries do
not support Keras 3 well. Inputs are images scaled to ``[0, 1]``; every adversarial example stays
inside both the epsilon ball around its image and that range.

The loss is the cross-entropy of the model's output. For a softmax output Keras computes it from
the logits the softmax saw, so a confidently right model still gives a useful gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from trainer.errors import UserError

METHODS = ("fgsm", "fgsm-rs", "pgd")


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

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"attack {self.method!r} is unknown; use one of {', '.join(METHODS)}")
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
    def pgd(cls, epsilon: float, steps: int, step_size: float | None = None) -> AttackConfig:
        """PGD from a random start (Madry et al. 2018); the default step covers the ball 2.5 times."""
        size = step_size if step_size is not None else 2.5 * epsilon / steps
        return cls("pgd", epsilon, steps=steps, step_size=size, random_start=True)

    def describe(self) -> str:
        start = ", random start" if self.random_start else ""
        if self.method == "pgd":
            return f"PGD-{self.steps} (eps {self.epsilon:.4g}, step {self.step_size:.4g}{start})"
        return f"{self.method.upper()} (eps {self.epsilon:.4g}, step {self.step_size:.4g}{start})"


def loss_gradient(model, x, y):
    """The gradient of the per-example cross-entropy with respect to the inputs ``x``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.ops.sparse_categorical_crossentropy(y, model(x, training=False))
    return tape.gradient(loss, x)


def perturb(model, x, y, config: AttackConfig, epsilon=None):
    """Adversarial versions of the batch ``x`` (float, in [clip_min, clip_max]) against labels ``y``.

    ``epsilon`` overrides the configured budget (a tensor is fine: training may ramp it up), and
    the step size scales with it.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    eps = tf.cast(config.epsilon if epsilon is None else epsilon, tf.float32)
    step = eps * (config.step_size / config.epsilon)
    delta = tf.zeros_like(x)
    if config.random_start:
        delta = tf.random.uniform(tf.shape(x), -1.0, 1.0) * eps
        delta = _project(x, delta, eps, config)
    for _ in tf.range(config.steps):
        gradient = loss_gradient(model, x + delta, y)
        delta = _project(x, delta + step * tf.sign(gradient), eps, config)
    return tf.stop_gradient(x + delta)


def _project(x, delta, eps, config: AttackConfig):
    """Clips ``delta`` into the epsilon ball and keeps ``x + delta`` in the valid pixel range."""
    delta = tf.clip_by_value(delta, -eps, eps)
    return tf.clip_by_value(x + delta, config.clip_min, config.clip_max) - x


def accuracy_under_attack(model, x: np.ndarray, y: np.ndarray, config: AttackConfig | None,
                          batch_size: int = 500) -> float:
    """Top-1 accuracy on ``(x, y)`` after the attack (``config`` None: clean accuracy)."""
    correct = 0
    step = _attack_and_score(model, config)
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[start:start + batch_size], tf.float32)
        yb = tf.convert_to_tensor(y[start:start + batch_size], tf.int64)
        correct += int(step(xb, yb))
    return correct / max(len(x), 1)


def _attack_and_score(model, config: AttackConfig | None):
    @tf.function(reduce_retracing=True)
    def step(x, y):
        adversarial = x if config is None else perturb(model, x, y, config)
        predicted = tf.argmax(model(adversarial, training=False), axis=-1)
        return tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.int64))

    return step


def attack_batch(model, x: np.ndarray, y: np.ndarray, config: AttackConfig) -> np.ndarray:
    """The adversarial examples for one small batch, as a NumPy array (for figures)."""
    return perturb(model, tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.int64), config).numpy()


def distances(clean: np.ndarray, adversarial: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example L2 and L-infinity distances between two image batches."""
    difference = (adversarial.astype(np.float64) - clean.astype(np.float64)).reshape(len(clean), -1)
    return {"l2": np.sqrt((difference ** 2).sum(axis=1)), "linf": np.abs(difference).max(axis=1)}
