"""Benchmark of the simple-generator attack on the shipped classifiers; prints JSON.

    python bench/adversarial.py                    # 50 MNIST pairs and 10 CIFAR-10 pairs, batched and one by one
    python bench/adversarial.py --dataset mnist --mode batched
    python bench/adversarial.py --mode batched --figures docs/figures   # also the Exercise 2 grids

The pairs are those `python cli.py fit adversarial` attacks by default (seed 42): MNIST 5 test
images of different digits x 10 target classes, CIFAR-10 one test image x 10 classes. Batched trains
every pair at once as one Keras model; one-by-one builds and trains a generator and composite per
pair. Both use the default rates (generator Adam 1e-3, composite Adam 1e-2) and confidence 0.9.
Rounds and distances are over the real pairs only (target != the image's class: MNIST 45, CIFAR-10
9), median and maximum. With --figures, the batched run's grid (samples x 10 targets, each cell
titled with the class and confidence the classifier gives it) is saved as adversarial_<dataset>_grid.png.
Goal (issue 4): the 50 MNIST pairs in at most 60 s on 2 cores. Set TRAINLAB_DATA to the data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def bench(dataset: str, modes: list[str], seed: int, figures: str | None = None) -> dict:
    import numpy as np

    from tasks.adversarial.generator import GeneratorConfig, attack, make_pairs
    from tasks.adversarial.task import AdversarialConfig, AdversarialTask
    from trainer.export import load_model_file

    task = AdversarialTask(AdversarialConfig(dataset=dataset))
    task.model = load_model_file(ROOT / "models" / f"{dataset}_cnn.h5")
    x, y = task.splits["test"]
    samples = task.pick_samples(x, y, seed)
    pairs = make_pairs(samples, len(task.spec.classes))
    images = x[pairs.samples]
    # One tiny attack first, so one-off TensorFlow start-up costs are counted in neither mode.
    attack(task.model, images[:1], pairs.targets[:1], GeneratorConfig(max_rounds=1))
    out = {"dataset": dataset, "pairs": len(pairs.targets), "samples": samples}
    results = {}
    for mode in modes:
        config = GeneratorConfig(batched=mode == "batched")
        result = attack(task.model, images, pairs.targets, config, pairs.samples)
        results[mode] = result
        summary = result.summary()
        out[mode] = {"seconds": round(result.seconds, 1), "real_pairs": summary["pairs"],
                     "successes": summary["successes"],
                     **{f"{stat}_{name}": round(summary[f"{stat}_{name}"], 3)
                        for name in ("rounds", "l2", "linf") for stat in ("median", "max")}}
    if figures and "batched" in results:
        out["grid_figure"] = save_grid(task, images[::len(task.spec.classes)], samples, results["batched"],
                                       Path(figures) / f"adversarial_{dataset}_grid.png")
    if len(results) == 2:
        batched, single = results["batched"], results["single"]
        out["speedup"] = round(single.seconds / batched.seconds, 2)
        out["same_rounds"] = sum(a.rounds == b.rounds for a, b in zip(batched.pairs, single.pairs, strict=True))
        out["max_image_difference"] = float(np.abs(batched.images - single.images).max())
        # Round-off of a batch-of-P convolution differs from a batch of 1; over hundreds of Adam steps
        # (which rescale tiny gradients to full steps) it can move a slow pair's stopping round.
        rounds = min(len(batched.confidence_history), len(single.confidence_history))
        apart = np.abs(batched.confidence_history[:rounds] - single.confidence_history[:rounds]) > 1e-3
        first = [int(np.argmax(apart[:, p])) for p in range(apart.shape[1]) if apart[:, p].any()]
        out["pairs_whose_confidence_ever_differs_by_1e-3"] = len(first)
        out["first_round_they_differ"] = min(first) if first else None
    return out


def save_grid(task, originals, samples, result, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.files import atomic_path
    from tasks.adversarial.generator import grid_figure

    figure = grid_figure(task.model, originals, samples, result, task.spec.classes)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(figure)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("mnist", "cifar10", "both"), default="both")
    parser.add_argument("--mode", choices=("batched", "single", "both"), default="both")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--figures", default=None, help="folder for the grid figures (e.g. docs/figures)")
    args = parser.parse_args()
    datasets = ["mnist", "cifar10"] if args.dataset == "both" else [args.dataset]
    modes = ["batched", "single"] if args.mode == "both" else [args.mode]
    report = {"cpu_count": os.cpu_count(), "load_before": os.getloadavg()[0],
              "runs": [bench(d, modes, args.seed, args.figures) for d in datasets], "load_after": os.getloadavg()[0]}
    mnist = next((r for r in report["runs"] if r["dataset"] == "mnist" and "batched" in r), None)
    if mnist:
        report["goal_50_mnist_pairs_60s"] = mnist["batched"]["seconds"] <= 60
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
