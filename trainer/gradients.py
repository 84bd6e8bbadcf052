"""Loss gradients on a fixed probe batch, per layer: the one way gradients reach callbacks and reports.

``GradientHistogram`` lives here, beside the probe it uses, so that a task can supply it from
``extra_callbacks()`` without importing ``callbacks/``; ``callbacks`` exports it too.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.callback import Callback


class GradientProbe:
    """Recomputes the gradients of ``model``'s compiled loss on one fixed batch ``(x, y)``.

    Keras's training step never exposes its gradients, so observers recompute them on a probe
    batch instead of changing the step: training runs untouched, and each call costs one forward
    and backward pass of the probe batch. The forward pass runs in inference mode, so dropout is
    off and batch-norm statistics are left alone: probing never changes the model.

    Gradients are grouped by the model's top-level layers (kernel and bias together); layers
    without trainable weights are skipped.
    """

    def __init__(self, model, x, y) -> None:
        self.model = model
        self.x = tf.convert_to_tensor(x)
        self.y = tf.convert_to_tensor(y)
        self.layers = [(layer.name, list(layer.trainable_weights)) for layer in model.layers
                       if layer.trainable_weights]

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self.layers]

    def gradients(self) -> dict[str, tf.Tensor]:
        """Each layer's gradients flattened into one vector; runs eagerly or traced inside a ``tf.function``."""
        variables = [v for _, layer_variables in self.layers for v in layer_variables]
        with tf.GradientTape() as tape:
            y_pred = self.model(self.x, training=False)
            loss = self.model.compute_loss(x=self.x, y=self.y, y_pred=y_pred, training=False)
        grads = iter(tape.gradient(loss, variables))
        return {name: tf.concat([tf.reshape(next(grads), [-1]) for _ in layer_variables], axis=0)
                for name, layer_variables in self.layers}

    def max_abs(self) -> dict[str, float]:
        """The largest absolute gradient of each layer, computed eagerly: meant for a few calls per run
        (a report's before and after), where tracing a graph would cost more than it saves."""
        values = np.asarray(tf.stack([tf.reduce_max(tf.abs(g)) for g in self.gradients().values()]), dtype=np.float64)
        return dict(zip(self.layer_names, values.tolist(), strict=True))


class GradientHistogram(Callback):
    """Every ``every_n_steps`` training steps, recomputes the loss gradients on a fixed probe batch.

    Works for any compiled Keras model: gradients come from ``GradientProbe`` (one forward and
    backward pass of the probe batch, inference mode), and the histogram and scalar summaries are
    written inside the same ``tf.function``, so a logged step costs one graph call and no host
    copy of the gradients. Tags, in the run's ``train`` folder: ``gradients/<layer>`` (histogram)
    and ``max_abs_gradient/<layer>`` (scalar). Step 0, before any update, is logged too.
    """

    def __init__(self, probe_batch: tuple, every_n_steps: int = 100, split: str = "train") -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}")
        self.probe_batch = probe_batch
        self.every_n_steps = every_n_steps
        self.split = split
        self.logged_steps: list[int] = []
        self._log = None

    def setup(self, trainer, task, stage):
        if stage != "fit":
            return
        writer = trainer.logger.writer(self.split)
        if writer is None:  # a non-chief worker logs nothing
            return
        probe = GradientProbe(task.model, *self.probe_batch)

        @tf.function
        def log(step):
            with writer.as_default(step=step):
                for name, grads in probe.gradients().items():
                    tf.summary.histogram(f"gradients/{name}", grads)
                    tf.summary.scalar(f"max_abs_gradient/{name}", tf.reduce_max(tf.abs(grads)))

        self._log = log

    def on_fit_start(self, trainer, task):
        if trainer.global_step == 0:
            self._write(trainer.global_step)

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        if trainer.global_step % self.every_n_steps == 0:
            self._write(trainer.global_step)

    def teardown(self, trainer, task, stage):
        # The compiled function holds the model and the writer; a spawned copy must not share them.
        self._log = None

    def _write(self, step: int) -> None:
        if self._log is not None:
            self._log(tf.constant(step, dtype=tf.int64))
            self.logged_steps.append(step)
