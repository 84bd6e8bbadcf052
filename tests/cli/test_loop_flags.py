"""The Lightning-style loop flags from the command line: one-line errors, best/last checkpoints, lr-find."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import cli


@pytest.mark.parametrize(("args", "message"), [
    (("--precision", "fp8"), "error: --precision 'fp8' is unknown; use one of 32, bf16-mixed, 16-mixed"),
    (("--gradient-clip-val", "0"), "error: --gradient-clip-val must be above 0, got 0.0; omit it to not clip"),
    (("--accumulate-grad-batches", "0"),
     "error: --accumulate-grad-batches must be at least 1, got 0; e.g. --accumulate-grad-batches 1"),
    (("--max-time", "2:00"), "error: --max-time '2:00' is not DD:HH:MM:SS; e.g. 00:02:00:00 for two hours"),
    (("--save-top-k", "1", "--monitor", "val_f1", "--max-epochs", "1"),
     "error: ModelCheckpoint monitors 'val_f1', which task toy never logs; it logs: train_accuracy, train_loss, "
     "val_accuracy, val_loss"),
])
def test_bad_loop_flags_are_one_line_errors(args, message, tmp_path):
    result = cli("fit", "toy", *args, "--logdir", tmp_path, "--progress", "none", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr


def test_fit_keeps_the_best_and_test_loads_it_then_lr_find_draws_its_curve(tmp_path):
    fit = cli("fit", "toy", "--max-epochs", "3", "--save-top-k", "1", "--monitor", "val_accuracy",
              "--logdir", tmp_path, "--run-name", "b", "--progress", "none")
    assert fit.returncode == 0, fit.stderr
    best = json.loads((tmp_path / "toy/b/checkpoints/top/index.json").read_text())["kept"][0]
    tested = cli("test", "toy", "--checkpoint", tmp_path / "toy/b", "--which", "best", "--logdir", tmp_path,
                 "--progress", "none")
    assert tested.returncode == 0, tested.stderr
    assert f"test_accuracy: {best['value']:.4f}" in tested.stdout

    found = cli("lr-find", "toy", "--num-steps", "30", "--min-lr", "1e-4", "--max-lr", "1", "--logdir", tmp_path,
                "--run-name", "lr")
    assert found.returncode == 0, found.stderr
    assert "suggested learning rate: " in found.stdout and (tmp_path / "toy/lr/lr_find.png").exists()
