"""Distributed search: one KerasTuner chief and one worker on 127.0.0.1, through the real CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.tasks.emotion.test_emotion import write_fer_npz


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_chief_and_worker_share_one_search(tmp_path):
    data = write_fer_npz(tmp_path / "data", per_split=(32, 14, 14))
    command = [sys.executable, str(ROOT / "cli.py"), "fit", "emotion", "--tune", "--tuner", "random",
               "--max-trials", "1", "--tune-epochs", "1", "--max-epochs", "1", "--batch-size", "16",
               "--data-dir", str(data), "--logdir", str(tmp_path / "logs"), "--run-name", "shared",
               "--progress", "none"]
    port = str(free_port())

    def start(tuner_id: str) -> subprocess.Popen:
        env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": port, "TF_CPP_MIN_LOG_LEVEL": "3"}
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    chief = start("chief")
    worker = start("tuner0")
    worker_out, _ = worker.communicate(timeout=400)
    chief_out, _ = chief.communicate(timeout=400)
    assert worker.returncode == 0, worker_out
    assert chief.returncode == 0, chief_out

    run = tmp_path / "logs" / "emotion" / "shared"
    trials = [json.loads(p.read_text()) for p in (run / "search").glob("trial_*/trial.json")]
    assert len(trials) == 1 and trials[0]["status"] == "COMPLETED"
    # The worker ran the trial and stopped; the chief retrained the best configuration and exported it.
    assert "Search trials by PublicTest" in chief_out and "Search trials" not in worker_out
    card = json.loads((tmp_path / "models" / "emotion.json").read_text())
    assert card["training"]["tuned"] is True and card["architecture"] == {
        k: v for k, v in trials[0]["hyperparameters"]["values"].items() if not k.startswith("tuner/")}
