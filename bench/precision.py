"""Per-epoch training time under --precision 32, bf16-mixed and 16-mixed, through the Trainer.

The MNIST MLP of bench/trainer_overhead.py (784-256-128-10, batch 128) and a small CNN on the same
images; runs alternate between precisions so drifting machine load hits all alike, and the first
epoch of each run (tracing) is left out. Prints JSON with the slowdown of each mixed precision
against float32 and the CPU's flags that matter (a CPU without AVX512-BF16/AMX has no native bf16).

    python bench/precision.py [--rounds 2] [--epochs 3] [--limit-batches 100] [--no-onednn | --onednn-max-isa AVX2]

``--no-onednn`` runs TensorFlow's own (Eigen) kernels, which compute bf16 without the CPU's bf16
instructions, as on a CPU that has none. ``--onednn-max-isa AVX2`` keeps oneDNN off AVX-512
(TensorFlow still sends bf16 to oneDNN, which then has no kernel for it).
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


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-batches", type=int, default=100)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--onednn-max-isa", default=None, help="e.g. AVX2: no AVX-512 and no native bf16 kernels")
    parser.add_argument("--no-onednn", action="store_true", help="TensorFlow's Eigen kernels instead of oneDNN")
    return parser.parse_args()


ARGS = arguments()
if ARGS.onednn_max_isa:
    os.environ["ONEDNN_MAX_CPU_ISA"] = ARGS.onednn_max_isa  # read once, when TensorFlow loads oneDNN
if ARGS.no_onednn:
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import keras  # noqa: E402

from bench.trainer_overhead import TrainerEpochTimes, mnist_arrays  # noqa: E402
from trainer import Task, Trainer, TrainerConfig  # noqa: E402

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


class MnistTask(Task):
    name = "precision"

    def __init__(self, train, test, model: str):
        super().__init__()
        self._train, self._test, self.model_name, self.batch_size = train, test, model, 128

    def build_model(self):
        if self.model_name == "mlp":
            layers = [keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                      keras.layers.Dense(128, activation="relu")]
        else:
            layers = [keras.Input((784,)), keras.layers.Reshape((28, 28, 1)),
                      keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
                      keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.GlobalAveragePooling2D()]
        model = keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def train_data(self):
        return self._train


def epoch_times(train, test, model, precision, epochs, limit, logdir) -> list[float]:
    timer = TrainerEpochTimes()
    config = TrainerConfig(max_epochs=epochs, logdir=logdir, progress="none", precision=precision,
                           limit_train_batches=limit, checkpoint=False)
    Trainer(config, callbacks=[timer]).fit(MnistTask(train, test, model))
    return timer.times[1:]


def cpu_flags() -> dict:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return {"cpu": model, **{f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "f16c")}}


def main() -> None:
    args = ARGS
    train, test, source = mnist_arrays()
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as logdir:
        for model in args.models.split(","):
            times = {p: [] for p in PRECISIONS}
            for _ in range(args.rounds):
                for precision in PRECISIONS:
                    keras.backend.clear_session()
                    times[precision] += epoch_times(train, test, model, precision, args.epochs,
                                                    args.limit_batches, logdir)
            medians = {p: statistics.median(t) for p, t in times.items()}
            results[model] = {
                **{f"epoch_s_{p}": round(m, 3) for p, m in medians.items()},
                **{f"slowdown_{p}": round(medians[p] / medians["32"], 2) for p in PRECISIONS[1:]},
            }
    print(json.dumps({
        "bench": "precision", "data": source, "batch_size": 128, "batches_per_epoch": args.limit_batches,
        "rounds": args.rounds, "onednn": "off" if args.no_onednn else args.onednn_max_isa or "default",
        "epochs_timed_per_run": args.epochs - 1, "models": results,
        **cpu_flags(), "cpu_count": os.cpu_count(), "wall_s": round(time.perf_counter() - started, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
