"""Runs the same jobs on one device and on two logical CPU devices; writes what each gave to an npz.

TensorFlow fixes its devices when it first uses them, so this runs in a fresh process:
``python -m tests.trainer.two_devices OUT.npz``. ``test_mirrored.py`` compares the two.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tasks.robust.task import RobustConfig  # noqa: E402
from tasks.toy.task import ToyConfig, ToyTask  # noqa: E402
from tests.tasks.robust.test_robust import SyntheticRobustTask  # noqa: E402
from trainer import Trainer, TrainerConfig  # noqa: E402

# 480 training samples make 10 whole batches of 48; 97 evaluation samples end in a batch of one,
# so one replica's share of it is empty.
EVAL_SAMPLES = 97


class UnevenToy(ToyTask):
    def __init__(self) -> None:
        super().__init__(ToyConfig(samples=480, batch_size=48))
        rng = np.random.default_rng(1)
        x = rng.normal(size=(EVAL_SAMPLES, self.config.features)).astype("float32")
        self._val = (x, rng.integers(0, self.config.classes, EVAL_SAMPLES))


def config(strategy: str, logdir: str, **overrides) -> TrainerConfig:
    values = {"logdir": logdir, "progress": "none", "max_epochs": 2, "strategy": strategy, "checkpoint": False,
              "log_every_n_steps": 1, **overrides}
    return TrainerConfig(**values)


def run_toy(strategy: str, logdir: str) -> dict:
    keras.backend.clear_session()
    task = UnevenToy()
    trainer = Trainer(config(strategy, logdir))
    results = {"fit": trainer.fit(task), "replicas": trainer.strategy.num_replicas_in_sync,
               "validate": trainer.validate(task), "test": trainer.test(task),
               "predict": trainer.predict(task).tolist()}
    if strategy == "default":
        # Keras's own evaluate on every sample at once: what both runs must report.
        results["evaluate"] = task.model.evaluate(*task.val_data(), batch_size=EVAL_SAMPLES, verbose=0,
                                                  return_dict=True)
    return results


def run_robust(strategy: str, logdir: str) -> dict:
    # A negligible epsilon makes the adversarial batch the clean one, so both runs see the same numbers.
    keras.backend.clear_session()
    task = SyntheticRobustTask(RobustConfig(batch_size=32, epsilon=1e-6))
    trainer = Trainer(config(strategy, logdir, max_epochs=1))
    trainer.fit(task)
    return {"train_loss": trainer.metrics["train_loss"]}


def main(out: str) -> None:
    results = {}
    for strategy in ("default", "mirrored"):
        results[strategy] = {"toy": run_toy(strategy, os.path.dirname(out)),
                             "robust": run_robust(strategy, os.path.dirname(out))}
    with open(out, "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main(sys.argv[1])
