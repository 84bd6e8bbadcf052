"""A tiny built-in task on random data: a two-layer classifier that trains in seconds."""

from __future__ import annotations

import keras
import numpy as np

from tasks.toy.config import ToyConfig
from trainer import Task


class ToyTask(Task):
    """Labels are a fixed linear function of the inputs, so the model can actually learn them."""

    name = "toy"
    Config = ToyConfig

    def __init__(self, config: ToyConfig | None = None) -> None:
        super().__init__(config)
        self.batch_size = self.config.batch_size
        rng = np.random.default_rng(0)
        c = self.config
        x = rng.normal(size=(c.samples + c.samples // 4, c.features)).astype("float32")
        y = np.argmax(x @ rng.normal(size=(c.features, c.classes)), axis=1)
        self._train = (x[: c.samples], y[: c.samples])
        self._val = (x[c.samples:], y[c.samples:])

    def build_model(self) -> keras.Model:
        c = self.config
        model = keras.Sequential([
            keras.Input((c.features,)),
            keras.layers.Dense(c.hidden, activation="relu", name="hidden"),
            keras.layers.Dense(c.classes, activation="softmax", name="output"),
        ], name="toy")
        model.compile(optimizer=keras.optimizers.Adam(c.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def train_data(self):
        return self._train

    def val_data(self):
        return self._val

    def test_data(self):
        return self._val
