"""Is a rerun the same run? Trains the same small deep-mlp study twice per setting; prints JSON.

    python bench/determinism.py                     # depth 5 and 40 tanh, 300 steps of 1 epoch, 5 runs
    python bench/determinism.py --epochs 3 --limit-train-batches 0 --depths 40   # whole epochs

Each run is a fresh process of `python cli.py fit deep-mlp` (seed 42); the bench compares every
model's test loss, test accuracy and per-epoch history between the two runs of a setting:
- `default`: no flag, twice;
- `deterministic`: `--deterministic`, twice;
- `deterministic_one_thread`: `--deterministic` with one intra-op thread, against the
  `deterministic` runs (a different thread count splits the sums differently).
Set TRAINLAB_DATA to the folder holding mnist.npz.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(logdir: Path, name: str, args, deterministic: bool, threads: int | None = None) -> dict:
    """One fresh process of the study; returns {model: numbers} read from its study.json."""
    command = [sys.executable, str(ROOT / "cli.py"), "fit", "deep-mlp", "--depths", args.depths,
               "--activations", args.activations, "--max-epochs", str(args.epochs), "--logdir", str(logdir),
               "--run-name", name, "--progress", "none", *(["--deterministic"] if deterministic else []),
               *(["--limit-train-batches", str(args.limit_train_batches)] if args.limit_train_batches else [])]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if threads is not None:
        env["TF_NUM_INTRAOP_THREADS"] = str(threads)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    results = json.loads((logdir / "deep-mlp" / name / "study.json").read_text())
    numbers = {f"{r['depth']}-{r['activation']}": {"test_loss": r["test_loss"], "test_accuracy": r["test_accuracy"],
                                                   "history": r["history"]} for r in results}
    return {"seconds": round(seconds, 1), "models": numbers}


def compare(first: dict, second: dict) -> dict:
    """Whether every number matches bit for bit, and the largest test-accuracy gap."""
    gaps = {model: abs(first["models"][model]["test_accuracy"] - second["models"][model]["test_accuracy"])
            for model in first["models"]}
    return {"identical": first["models"] == second["models"],
            "max_test_accuracy_difference": round(max(gaps.values()), 6),
            "test_accuracy": {model: [first["models"][model]["test_accuracy"], second["models"][model]["test_accuracy"]]
                              for model in first["models"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="5,40")
    parser.add_argument("--activations", default="tanh")
    parser.add_argument("--epochs", type=int, default=1)
    # 300 of an epoch's 1,719 steps: enough for rounding differences to show, 5 runs in about a minute of CPU.
    parser.add_argument("--limit-train-batches", type=int, default=300, help="0: whole epochs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        logdir = Path(folder)
        runs = {"default": [train(logdir, f"default-{i}", args, False) for i in (1, 2)],
                "deterministic": [train(logdir, f"deterministic-{i}", args, True) for i in (1, 2)],
                "deterministic_one_thread": [train(logdir, "one-thread", args, True, threads=1)]}
    summary = {"study": f"deep-mlp --depths {args.depths} --activations {args.activations} "
                        f"--max-epochs {args.epochs} --limit-train-batches {args.limit_train_batches or 'all'} "
                        "--seed 42",
               "rerun_same_without_flag": compare(*runs["default"]),
               "rerun_same_with_deterministic": compare(*runs["deterministic"]),
               "one_intra_op_thread_vs_default_threads": compare(runs["deterministic"][0],
                                                                 runs["deterministic_one_thread"][0]),
               "deterministic_vs_default": compare(runs["default"][0], runs["deterministic"][0]),
               "seconds": {k: [r["seconds"] for r in v] for k, v in runs.items()},
               "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
