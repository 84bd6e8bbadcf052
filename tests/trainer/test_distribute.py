"""Distribution: a real two-worker MultiWorkerMirroredStrategy job on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _checkpoint_values(prefix: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if "VARIABLE_VALUE" in name}


@pytest.mark.slow
def test_two_workers_finish_with_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    command = [sys.executable, str(ROOT / "cli.py"), "fit", "toy", "--strategy", "multi-worker", "--max-epochs", "2",
               "--logdir", str(tmp_path), "--run-name", "mw", "--progress", "plain"]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        processes.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-2000:]
        assert "[toy] epoch 2/2" in stdout

    run = tmp_path / "toy/mw"
    chief = _checkpoint_values(run / "checkpoints/ckpt-2")
    other = _checkpoint_values(run / "workers/worker-1/checkpoints/ckpt-2")
    assert chief.keys() == other.keys() and len(chief) > 4
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    config = json.loads((run / "config.json").read_text())
    assert config["replicas"] == 2
    assert not (run / "workers/worker-1/config.json").exists()  # only the chief writes reports
    assert (run / "config.yaml").exists() and not (run / "workers/worker-1/config.yaml").exists()
