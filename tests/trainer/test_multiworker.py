"""Every task's ``run`` under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

The test pass is collective, so a worker that skipped it would leave the other waiting forever;
both workers must finish, agree on the test metrics, and keep their checkpoints apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tasks.adversarial.test_adversarial import synthetic_mnist
from tests.tasks.emotion.test_emotion import write_fer_npz
from tests.trainer.test_distribute import _checkpoint_values, _free_ports

pytestmark = pytest.mark.slow
RUNNER = Path(__file__).with_name("multiworker_tasks.py")


@pytest.fixture(scope="module")
def workers(tmp_path_factory) -> tuple[dict, dict, Path]:
    root = tmp_path_factory.mktemp("multiworker")
    data = synthetic_mnist(root / "data", train=5100, test=40)  # robust holds out 5,000 for validation
    write_fer_npz(data, per_split=(32, 14, 14))
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        command = [sys.executable, str(RUNNER), str(root / f"worker-{index}.json"), str(data), str(root / "logs")]
        # Each worker in its own working folder, as on two machines: what a task exports to models/
        # (and reuses from there on the next run) stays that worker's, and out of the project.
        folder = root / f"machine-{index}"
        folder.mkdir()
        processes.append(subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    for process in processes:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output[-3000:]
    chief, other = (json.loads((root / f"worker-{i}.json").read_text()) for i in range(2))
    return chief, other, root / "logs"


@pytest.mark.parametrize("task", ["toy", "adversarial", "robust", "emotion"])
def test_every_task_finishes_on_both_workers_with_the_same_test_metrics(workers, task):
    chief, other, _ = workers
    assert chief[task]["chief"] and not other[task]["chief"]
    tests = {k: v for k, v in chief[task]["metrics"].items() if k.startswith("test_")}
    assert {"test_loss", "test_accuracy"} <= tests.keys()
    for key, value in tests.items():
        assert other[task]["metrics"][key] == pytest.approx(value, rel=1e-5), key


def test_predict_joins_both_workers_rows_in_order(workers):
    chief, other, _ = workers
    predictions = np.array(chief["toy"]["predict"])
    assert predictions.shape == (128, 4)
    np.testing.assert_allclose(predictions, np.array(chief["toy"]["forward"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(other["toy"]["predict"]), predictions, rtol=1e-5, atol=1e-6)


def test_each_worker_keeps_its_own_folders_for_a_study(workers):
    """deep-mlp trains each model with a spawned Trainer; the study's table lives on the chief."""
    chief, other, logs = workers
    run = logs / "deep-mlp" / "mw"
    assert {"test_accuracy/1-relu", "test_accuracy/2-relu"} <= chief["deep-mlp"]["metrics"].keys()
    assert Path(chief["deep-mlp"]["run_dir"]) == run
    assert Path(other["deep-mlp"]["run_dir"]) == run / "workers" / "worker-1"
    for member in ("1-relu", "2-relu"):
        mine = _checkpoint_values(run / member / "checkpoints" / "ckpt-1")
        theirs = _checkpoint_values(run / member / "workers" / "worker-1" / "checkpoints" / "ckpt-1")
        assert mine.keys() == theirs.keys()
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
    assert (run / "study.json").exists() and (run / "1-relu" / "model.h5").exists()
    assert not (run / "1-relu" / "workers" / "worker-1" / "model.h5").exists()  # only the chief exports
