"""TensorBoard logging owned by the Trainer: one writer per split under the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf


class TensorBoardLogger:
    """Writes ``<run_dir>/train`` and ``<run_dir>/validation`` (and ``test``) event files.

    Tags follow Keras's TensorBoard callback: ``batch_<metric>`` per logged step and
    ``epoch_<metric>`` per epoch, so runs compare side by side with plain Keras runs.
    """

    SPLITS = ("train", "validation", "test")

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._writers: dict[str, tf.summary.SummaryWriter] = {}

    def writer(self, split: str) -> tf.summary.SummaryWriter:
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(str(self.run_dir / split))
        return self._writers[split]

    def log_scalars(self, metrics: dict, step: int, split: str = "train", prefix: str = "epoch_") -> None:
        with self.writer(split).as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(f"{prefix}{name}", float(value))

    def log_histogram(self, tag: str, values, step: int, split: str = "train") -> None:
        with self.writer(split).as_default(step=step):
            tf.summary.histogram(tag, values)

    def log_images(self, tag: str, images, step: int, split: str = "train", max_outputs: int = 3) -> None:
        """``images``: a [N, H, W, C] array of floats in [0, 1] or uint8."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        with self.writer(split).as_default(step=step):
            tf.summary.image(tag, images, max_outputs=max_outputs)

    def log_figure(self, tag: str, figure, step: int, split: str = "train") -> None:
        """Renders a matplotlib figure to PNG and logs it as an image."""
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        image = tf.image.decode_png(buffer.getvalue(), channels=4)
        self.log_images(tag, image.numpy()[None], step, split)

    def log_text(self, tag: str, text: str, step: int = 0, split: str = "train") -> None:
        with self.writer(split).as_default(step=step):
            tf.summary.text(tag, text)

    def log_config(self, config: dict) -> None:
        body = json.dumps(config, indent=2, sort_keys=True, default=str)
        # Four leading spaces make TensorBoard's markdown render it as a code block.
        self.log_text("config", "\n".join("    " + line for line in body.splitlines()))

    def log_hparams(self, hparams: dict, trial_id: str | None = None) -> None:
        from tensorboard.plugins.hparams import api as hp_api

        with self.writer("train").as_default():
            hp_api.hparams(hparams, trial_id=trial_id)

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class NullLogger:
    """Stands in on non-chief workers, so callbacks can log without asking who they run on."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
