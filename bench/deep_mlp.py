"""Benchmarks of the deep-MLP study on the real MNIST; prints JSON.

    python bench/deep_mlp.py grad-cost   # epoch time, depth 40, with GradientHistogram vs without
    python bench/deep_mlp.py grid        # wall time of `cli.py fit deep-mlp` vs the same grid in bare Keras
    python bench/deep_mlp.py             # both
    python bench/deep_mlp.py grid --keep logs   # keep the Trainer's run as logs/deep-mlp/bench

Goals: gradient logging at the default interval <= 1.05x the epoch time without it; the full
default grid through the Trainer <= 1.05x the bare-Keras script. Set TRAINLAB_DATA to the folder
holding mnist.npz.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from trainer import Callback  # noqa: E402  (after the path is set; imports no TensorFlow)


class EpochTimer(Callback):
    """Wall time of each training epoch (validation excluded)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_train_epoch_start(self, trainer, task):
        self._started = time.perf_counter()

    def on_validation_epoch_start(self, trainer, task):
        self.seconds.append(time.perf_counter() - self._started)


def grad_cost(depth: int = 40, activation: str = "lecun", intervals=(None, 100, 10), rounds: int = 3) -> dict:
    """Median time of a depth-40 epoch (the second of two: the first one traces) per interval."""
    import keras

    from tasks.deep_mlp import DeepMLPTask
    from trainer import Trainer, TrainerConfig
    from trainer.gradients import GradientHistogram

    study = DeepMLPTask()
    times: dict[str, list[float]] = {str(i): [] for i in intervals}
    with tempfile.TemporaryDirectory() as logdir:
        for round_index in range(rounds):  # interleaved, so load from other processes hits every setting alike
            for interval in intervals:
                keras.backend.clear_session()
                timer = EpochTimer()
                callbacks = [timer] + ([GradientHistogram(study.probe_batch(), interval)] if interval else [])
                config = TrainerConfig(max_epochs=2, logdir=logdir, run_name=f"{interval}-{round_index}",
                                       progress="none", checkpoint=False)
                Trainer(config, callbacks).fit(study.member(depth, activation))
                times[str(interval)].append(timer.seconds[-1])
    base = statistics.median(times["None"])
    return {"depth": depth, "activation": activation, "steps_per_epoch": 55000 // 32 + 1,
            "epoch_seconds": {("none" if k == "None" else f"every_{k}"): round(statistics.median(v), 3)
                              for k, v in times.items()},
            "ratio": {f"every_{k}": round(statistics.median(v) / base, 3) for k, v in times.items() if k != "None"},
            "rounds": rounds, "samples": times}


def bare_grid(depths=(5, 20, 40), activations=("relu", "tanh", "sigmoid", "lecun"), epochs: int = 3) -> dict:
    """The same study without the Trainer: plain model.fit / evaluate and a GradientTape probe."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tasks.activations import ACTIVATIONS

    with np.load(Path(os.environ["TRAINLAB_DATA"]) / "mnist.npz") as mnist:
        x = mnist["x_train"].reshape(-1, 784).astype("float32") / 255.0
        y = keras.utils.to_categorical(mnist["y_train"], 10)
        x_test = mnist["x_test"].reshape(-1, 784).astype("float32") / 255.0
        y_test = keras.utils.to_categorical(mnist["y_test"], 10)
    x_train, y_train, x_val, y_val = x[:55000], y[:55000], x[55000:], y[55000:]
    probe_x, probe_y = tf.constant(x_train[:128]), tf.constant(y_train[:128])

    def max_grads(model):
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(probe_y, model(probe_x, training=False))
        grads = tape.gradient(tf.reduce_mean(loss), model.trainable_variables)
        return [float(max(tf.reduce_max(tf.abs(k)), tf.reduce_max(tf.abs(b)))) for k, b in zip(grads[::2], grads[1::2])]

    results = []
    for depth in depths:
        for activation in activations:
            keras.utils.set_random_seed(42)
            model = keras.Sequential([keras.Input((784,))]
                                     + [keras.layers.Dense(32, activation=ACTIVATIONS[activation]) for _ in range(depth)]
                                     + [keras.layers.Dense(10, activation="softmax")])
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
            untrained = max_grads(model)
            started = time.perf_counter()
            model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=(x_val, y_val), verbose=0)
            seconds = time.perf_counter() - started
            loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
            results.append({"depth": depth, "activation": activation, "test_accuracy": accuracy, "seconds": seconds,
                            "untrained_first_layer": untrained[0], "trained_first_layer": max_grads(model)[0]})
    return {"models": results}


def _timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def grid(keep: str | None = None) -> dict:
    """Both grids as fresh processes, imports included, as a user would run them.

    ``keep``: a logdir where the Trainer's run stays (as ``deep-mlp/bench``); else a temporary one.
    """
    with tempfile.TemporaryDirectory() as scratch:
        logdir = keep or scratch
        trainer_seconds, _ = _timed([sys.executable, "cli.py", "fit", "deep-mlp", "--progress", "none",
                                     "--logdir", logdir, "--run-name", "bench"])
        scores = json.loads((Path(logdir) / "deep-mlp/bench/study.json").read_text())
    bare_seconds, out = _timed([sys.executable, "bench/deep_mlp.py", "bare-grid"])
    bare = json.loads(out.strip().splitlines()[-1])
    return {"trainer_seconds": round(trainer_seconds, 1), "bare_keras_seconds": round(bare_seconds, 1),
            "ratio": round(trainer_seconds / bare_seconds, 3),
            "test_accuracy": {f"{r['depth']}-{r['activation']}": round(r["test_accuracy"], 4) for r in scores},
            "bare_test_accuracy": {f"{r['depth']}-{r['activation']}": round(r["test_accuracy"], 4)
                                   for r in bare["models"]}}


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    keep = argv[argv.index("--keep") + 1] if "--keep" in argv else None
    if what == "bare-grid":
        print(json.dumps(bare_grid()))
        return
    report = {"cpu_count": os.cpu_count()}
    if what in ("grad-cost", "all"):
        report["grad_cost"] = grad_cost()
    if what in ("grid", "all"):
        report["grid"] = grid(keep)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
