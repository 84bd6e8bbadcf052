"""Per-epoch time of Trainer.fit against a bare model.fit: same model, data, batch size and epochs.

Runs alternate (bare, trainer, bare, trainer, ...) so drifting machine load hits both alike; the
first epoch of every run (tracing) is left out. Prints JSON. Goal: ratio <= 1.03.

    python bench/trainer_overhead.py [--rounds 3] [--epochs 3] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from data.datasets import DataError, load_mnist  # noqa: E402
from trainer import Callback, Task, Trainer, TrainerConfig  # noqa: E402


def mnist_arrays():
    try:
        data = load_mnist()
        (x, y), (xt, yt) = data["train"], data["test"]
        source = "mnist"
    except DataError:
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 255, (60000, 28, 28), np.uint8), rng.integers(0, 10, 60000)
        xt, yt = x[:10000], y[:10000]
        source = "synthetic"
    scale = lambda a: (a.reshape(len(a), -1) / 255.0).astype("float32")  # noqa: E731
    return (scale(x), y), (scale(xt), yt), source


def build_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class TrainerEpochTimes(Callback):
    def __init__(self):
        self.times, self._start = [], 0.0

    def on_train_epoch_start(self, trainer, task):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, task):
        self.times.append(time.perf_counter() - self._start)


class KerasEpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times, self._start = [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


class MnistTask(Task):
    name = "overhead"

    def __init__(self, train, test, batch_size):
        super().__init__()
        self._train, self._test, self.batch_size = train, test, batch_size

    def build_model(self):
        return build_model(0)

    def train_data(self):
        return self._train

    def val_data(self):
        return self._test


def bare(train, test, epochs, batch_size) -> list[float]:
    timer = KerasEpochTimes()
    build_model(0).fit(*train, validation_data=test, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    return timer.times[1:]


def through_trainer(train, test, epochs, batch_size, logdir) -> list[float]:
    timer = TrainerEpochTimes()
    config = TrainerConfig(max_epochs=epochs, logdir=logdir, progress="none")
    Trainer(config, callbacks=[timer]).fit(MnistTask(train, test, batch_size))
    return timer.times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    train, test, source = mnist_arrays()
    bare_times, trainer_times = [], []
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(args.rounds):
            keras.backend.clear_session()
            bare_times += bare(train, test, args.epochs, args.batch_size)
            keras.backend.clear_session()
            trainer_times += through_trainer(train, test, args.epochs, args.batch_size, logdir)
    bare_median, trainer_median = statistics.median(bare_times), statistics.median(trainer_times)
    print(json.dumps({
        "bench": "trainer_overhead", "data": source, "batch_size": args.batch_size, "rounds": args.rounds,
        "epochs_timed_per_run": args.epochs - 1, "cpu_count": os.cpu_count(),
        "bare_fit_epoch_s": round(bare_median, 3), "trainer_fit_epoch_s": round(trainer_median, 3),
        "ratio": round(trainer_median / bare_median, 3), "goal_ratio": 1.03,
        "overhead_s_per_epoch": round(trainer_median - bare_median, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
