"""Benchmarks of the deep-MLP study on the real MNIST; prints JSON.

    python bench/deep_mlp.py grad-cost   # epoch time, depth 40, with GradientHistogram vs without
    python bench/deep_mlp.py grid        # the default grid through the Trainer vs the same in bare Keras
    python bench/deep_mlp.py             # both
    python bench/deep_mlp.py loop        # the Trainer's loop alone vs model.fit, one model, one epoch
    python bench/deep_mlp.py cli --logdir logs   # wall time of `python cli.py fit deep-mlp` (run kept)
    python bench/deep_mlp.py init-ratio   # ReLU at initialization: [0, 1] vs standardized inputs, Glorot vs He
    python bench/deep_mlp.py render logs/deep-mlp/<run>   # the run's table, figures, report from its study.json

Goals: gradient logging at the default interval <= 1.05x the epoch time without it; the full
default grid through the Trainer <= 1.05x the bare-Keras script. Set TRAINLAB_DATA to the folder
holding mnist.npz.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import resource
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


def clocks() -> tuple[float, float]:
    """Wall time and this process's CPU time (all threads). On a shared machine the CPU time is
    the steadier measure: other processes stretch the wall clock, not the work done here."""
    return time.perf_counter(), time.process_time()


class EpochTimer(Callback):
    """Wall and CPU seconds of each training epoch (validation excluded)."""

    def __init__(self) -> None:
        self.seconds: list[tuple[float, float]] = []
        self._started = (0.0, 0.0)

    def on_train_epoch_start(self, trainer, task):
        self._started = clocks()

    def on_validation_epoch_start(self, trainer, task):
        self.seconds.append(tuple(now - then for now, then in zip(clocks(), self._started, strict=True)))


def grad_cost(depth: int = 40, activation: str = "lecun", intervals=(None, 100, 10), rounds: int = 5) -> dict:
    """Time of a depth-40 epoch (the second of two: the first one traces) per logging interval.

    Settings are interleaved round by round, so load from other processes hits each alike; the
    ratio is taken on the fastest round (least disturbed) of each, in CPU and in wall seconds.
    """
    import keras

    from callbacks.gradients import GradientHistogram
    from tasks.deep_mlp.task import DeepMLPTask
    from trainer import Trainer, TrainerConfig

    study = DeepMLPTask()
    samples: dict[str, list[tuple[float, float]]] = {_setting(i): [] for i in intervals}
    with tempfile.TemporaryDirectory() as logdir:
        for round_index in range(rounds):
            for interval in intervals:
                keras.backend.clear_session()
                timer = EpochTimer()
                member = study.member(depth, activation)
                member.log_gradients = False  # this bench passes the histogram itself, at each interval
                callbacks = [timer] + ([GradientHistogram(study.probe_batch(), interval)] if interval else [])
                config = TrainerConfig(max_epochs=2, logdir=logdir, run_name=f"{interval}-{round_index}",
                                       progress="none", checkpoint=False)
                Trainer(config, callbacks).fit(member)
                samples[_setting(interval)].append(timer.seconds[-1])
    summary = {"depth": depth, "activation": activation, "steps_per_epoch": 55000 // 32 + 1, "rounds": rounds}
    for clock, column in (("cpu", 1), ("wall", 0)):
        best = {k: min(v[column] for v in values) for k, values in samples.items()}
        summary[f"epoch_{clock}_seconds_best"] = {k: round(v, 3) for k, v in best.items()}
        summary[f"epoch_{clock}_seconds_median"] = {k: round(statistics.median(v[column] for v in values), 3)
                                                    for k, values in samples.items()}
        summary[f"ratio_{clock}"] = {k: round(v / best["none"], 3) for k, v in best.items() if k != "none"}
    return summary


def _setting(interval) -> str:
    return "none" if interval is None else f"every_{interval}"


def load_arrays():
    """MNIST as the bare script reads it: the same split, scaling and probe batch as the task."""
    import keras
    import numpy as np

    with np.load(Path(os.environ["TRAINLAB_DATA"]) / "mnist.npz") as mnist:
        x = mnist["x_train"].reshape(-1, 784).astype("float32") / 255.0
        y = keras.utils.to_categorical(mnist["y_train"], 10)
        x_test = mnist["x_test"].reshape(-1, 784).astype("float32") / 255.0
        y_test = keras.utils.to_categorical(mnist["y_test"], 10)
    return (x[:55000], y[:55000]), (x[55000:], y[55000:]), (x_test, y_test)


def bare_cell(arrays, depth: int, activation: str, epochs: int = 3) -> dict:
    """One model of the study without the Trainer: model.fit / evaluate and a GradientTape probe."""
    import keras
    import tensorflow as tf

    from tasks.deep_mlp.activations import ACTIVATIONS

    (x_train, y_train), validation, (x_test, y_test) = arrays
    probe_x, probe_y = tf.constant(x_train[:128]), tf.constant(y_train[:128])

    def max_grads(model):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(probe_y, model(probe_x, training=False)))
        grads = tape.gradient(loss, model.trainable_variables)
        pairs = zip(grads[::2], grads[1::2], strict=True)  # (kernel, bias) per layer
        return [float(max(tf.reduce_max(tf.abs(k)), tf.reduce_max(tf.abs(b)))) for k, b in pairs]

    keras.utils.set_random_seed(42)
    model = keras.Sequential([keras.Input((784,))]
                             + [keras.layers.Dense(32, activation=ACTIVATIONS[activation]) for _ in range(depth)]
                             + [keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    untrained = max_grads(model)
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=validation, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return {"test_accuracy": accuracy, "untrained_first_layer": untrained[0],
            "trained_first_layer": max_grads(model)[0]}


def grid(depths=(5, 20, 40), activations=("relu", "tanh", "sigmoid", "lecun")) -> dict:
    """Every model of the default grid both ways, in one process, alternating which goes first.

    The machine is shared, so the two sides run model by model under the same load. The Trainer
    side is `DeepMLPTask.run` taken apart: each model as the run trains it (its callbacks as the CLI
    sets them, child run, test, export), then the study's table, figures and report, timed too.
    """
    import keras

    from callbacks import LearningRateMonitor, TerminateOnNaN
    from tasks.deep_mlp.study import Study
    from tasks.deep_mlp.task import DeepMLPConfig, DeepMLPTask
    from trainer import Trainer, TrainerConfig

    arrays = load_arrays()
    task = DeepMLPTask(DeepMLPConfig(depths=depths, activations=activations))
    _ = task.splits  # both sides read their data before the clocks start
    seconds = {"trainer": [0.0, 0.0], "bare_keras": [0.0, 0.0]}  # wall, cpu
    accuracy = {"trainer": {}, "bare_keras": {}}
    with tempfile.TemporaryDirectory() as logdir:
        config = TrainerConfig(max_epochs=task.default_epochs, logdir=logdir, run_name="grid", progress="none")
        trainer = Trainer(config, [LearningRateMonitor(), TerminateOnNaN()])
        study = Study(task, trainer.resolve_run_dir(task))
        for index, (depth, activation) in enumerate(task.grid()):
            def through_trainer(depth=depth, activation=activation):
                study.add(task.train_member(trainer, depth, activation))
                return study.results[-1]

            sides = {"trainer": through_trainer, "bare_keras": functools.partial(bare_cell, arrays, depth, activation)}
            for side in (("trainer", "bare_keras") if index % 2 == 0 else ("bare_keras", "trainer")):
                keras.backend.clear_session()
                started = clocks()
                result = sides[side]()
                for column, (now, then) in enumerate(zip(clocks(), started, strict=True)):
                    seconds[side][column] += now - then
                accuracy[side][f"{depth}-{activation}"] = round(result["test_accuracy"], 4)
            print(json.dumps({"model": f"{depth}-{activation}", **seconds}), file=sys.stderr, flush=True)
        started = clocks()
        with contextlib.redirect_stdout(sys.stderr):  # the study's table would spoil the JSON on stdout
            study.write()
        for column, (now, then) in enumerate(zip(clocks(), started, strict=True)):
            seconds["trainer"][column] += now - then
    summary = {}
    for clock, column in (("cpu", 1), ("wall", 0)):
        ours, bare = seconds["trainer"][column], seconds["bare_keras"][column]
        summary[clock] = {"trainer_seconds": round(ours, 1), "bare_keras_seconds": round(bare, 1),
                          "ratio": round(ours / bare, 3)}
    return {**summary, "test_accuracy": accuracy}


def loop(depth: int = 20, activation: str = "tanh", rounds: int = 3) -> dict:
    """The Trainer's loop alone against ``model.fit``: one epoch of one model, no callbacks, no test,
    no export; CPU seconds of the fastest of ``rounds`` interleaved runs (tracing included)."""
    import keras

    from tasks.deep_mlp.task import DeepMLPTask
    from trainer import Trainer, TrainerConfig

    study = DeepMLPTask()
    x, y = study.splits.train
    best = {"trainer": math.inf, "bare_keras": math.inf}
    with tempfile.TemporaryDirectory() as logdir:
        for round_index in range(rounds):
            keras.backend.clear_session()
            config = TrainerConfig(max_epochs=1, logdir=logdir, run_name=str(round_index), progress="none",
                                   checkpoint=False)
            started = time.process_time()
            member = study.member(depth, activation)
            member.log_gradients = False  # the loop alone: no callbacks
            Trainer(config).fit(member)
            best["trainer"] = min(best["trainer"], time.process_time() - started)
            keras.backend.clear_session()
            keras.utils.set_random_seed(42)
            model = study.member(depth, activation).build_model()
            started = time.process_time()
            model.fit(x, y, batch_size=32, epochs=1, validation_data=study.splits.validation, verbose=0)
            best["bare_keras"] = min(best["bare_keras"], time.process_time() - started)
    return {"depth": depth, "activation": activation,
            "epoch_cpu_seconds_best": {k: round(v, 3) for k, v in best.items()},
            "ratio_cpu": round(best["trainer"] / best["bare_keras"], 3)}


def init_ratio(depths=(5, 20, 40), seeds=(42, 43, 44), activations=("relu", "tanh")) -> dict:
    """What shrinks ReLU's early gradients at initialization: the inputs or the weights?

    The study's probe (first 128 training images, max |d loss / d w| per layer) on untrained models,
    with the study's inputs ([0, 1]) and standardized ones (each pixel's training mean and sd), with
    Glorot-uniform weights (the study's) and He-uniform ones (made for ReLU). Reports the first/output
    ratio (median over seeds) and the factor per hidden layer between the two deepest depths.
    """
    import keras
    import numpy as np

    from callbacks.gradients import GradientProbe
    from tasks.deep_mlp.activations import ACTIVATIONS

    (x_train, y_train), _, _ = load_arrays()
    mean, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-7
    inputs = {"unit_interval": x_train[:128], "standardized": (x_train[:128] - mean) / sd}
    report = {}
    for activation in activations:
        for init in ("glorot_uniform", "he_uniform"):
            for name, x in inputs.items():
                ratios = {}
                for depth in depths:
                    draws = []
                    for seed in seeds:
                        keras.utils.set_random_seed(seed)
                        model = keras.Sequential(
                            [keras.Input((784,))]
                            + [keras.layers.Dense(32, ACTIVATIONS[activation], kernel_initializer=init)
                               for _ in range(depth)] + [keras.layers.Dense(10, activation="softmax")])
                        model.compile(loss="categorical_crossentropy")
                        gradients = list(GradientProbe(model, x, y_train[:128]).max_abs().values())
                        draws.append(gradients[0] / gradients[-1])
                    ratios[depth] = float(np.median(draws))
                low, high = depths[-2], depths[-1]
                report[f"{activation}/{init}/{name}"] = {
                    "ratio_first_over_output": {str(d): float(f"{r:.3g}") for d, r in ratios.items()},
                    f"factor_per_layer_{low}_to_{high}": round((ratios[high] / ratios[low]) ** (1 / (high - low)), 3)}
    return report


def render(run: str) -> dict:
    """Rewrites a finished run's table, figures and report from its study.json with the code at hand."""
    from tasks.deep_mlp.study import Study
    from tasks.deep_mlp.task import DeepMLPConfig, DeepMLPTask

    results = json.loads((Path(run) / "study.json").read_text())
    config = json.loads((Path(run) / "config.json").read_text())["task_config"]
    study = Study(DeepMLPTask(DeepMLPConfig(**config)), Path(run))
    for result in results:
        study.add(result)
    with contextlib.redirect_stdout(sys.stderr):  # the study's table would spoil the JSON on stdout
        study.write()
    return {"run": run, "models": len(results), "metrics": study.metrics()}


def cli_grid(logdir: str) -> dict:
    """Wall time of the user's command, `python cli.py fit deep-mlp`, imports included; the run stays in logdir."""
    started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "cli.py", "fit", "deep-mlp", "--progress", "none", "--logdir", logdir,
                           "--run-name", "bench"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cli.py fit deep-mlp failed:\n{done.stderr[-3000:]}")
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = used.ru_utime + used.ru_stime - children.ru_utime - children.ru_stime
    return {"wall_seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(cpu, 1),
            "run": str(Path(logdir) / "deep-mlp/bench")}


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    report = {"cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    if what in ("grad-cost", "all"):
        report["grad_cost"] = grad_cost()
        print(json.dumps(report["grad_cost"]), file=sys.stderr, flush=True)
    if what in ("grid", "all"):
        report["grid"] = grid()
    if what == "loop":
        report["loop"] = loop()
    if what == "render":
        report["render"] = render(argv[1])
    if what == "init-ratio":
        report["init_ratio"] = init_ratio()
    if what == "cli":
        report["cli_grid"] = cli_grid(argv[argv.index("--logdir") + 1] if "--logdir" in argv else "logs")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
