"""One worker of a two-worker job: runs every task's ``run`` as ``cli.py fit`` would, a few batches each.

Started twice by ``test_multiworker.py`` with TF_CONFIG naming both workers on 127.0.0.1:
``python multiworker_tasks.py OUT.json DATA_DIR LOGDIR``. Writes each task's metrics and folders.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tasks import build_task  # noqa: E402
from trainer import Trainer, TrainerConfig  # noqa: E402

# The smallest options that still run each task's whole job: train, validate, test, export.
TASK_OPTIONS = {
    "toy": {},
    "deep-mlp": {"depths": (1, 2), "activations": ("relu",), "probe_samples": 16, "grad_every": 1},
    # --retrain: train here rather than reuse the shipped classifier.
    "adversarial": {"dataset": "mnist", "retrain": True, "samples": (3, 4), "max_rounds": 2, "batch_size": 32},
    "robust": {"dataset": "mnist", "batch_size": 32},
    "emotion": {"batch_size": 16},
}


def run(name: str, data_dir: str, logdir: str) -> dict:
    task = build_task(name, TASK_OPTIONS[name], data_dir)
    config = TrainerConfig(max_epochs=1, limit_train_batches=2, limit_val_batches=2, strategy="multi-worker",
                           logdir=logdir, run_name="mw", progress="none", log_every_n_steps=1)
    trainer = Trainer(config)
    metrics = task.run(trainer)
    result = {"metrics": metrics, "run_dir": str(trainer.run_dir), "chief": trainer.is_chief}
    if name == "toy":
        x = task.predict_data()[0]
        result["predict"] = trainer.predict(task).tolist()
        result["forward"] = np.asarray(task.model(x, training=False)).tolist()
    return result


def main(out: str, data_dir: str, logdir: str) -> None:
    results = {name: run(name, data_dir, logdir) for name in TASK_OPTIONS}
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:4])
