"""Side-by-side validation of the standard and the robust classifier; prints one JSON object.

For each data set and model: clean test accuracy; the strong evaluation, the worst case per image
over PGD-50 with cross-entropy and PGD-50 with the margin (CW) loss, 10 random restarts each (step
2.5 eps / 50; an image is broken as soon as any iterate is misclassified), with each attack's own
accuracy beside it; FGSM and the old single-start PGD (MNIST 40 x 0.01, CIFAR-10 10 x 2/255) for
context. The JSON names the attacks and the number of test images each figure used. Then the
simple-generator attack of the adversarial task with its own default settings (confidence 0.9,
at most 1000 rounds, Adam 1e-3 / 1e-2) on the same 45 (image, other class) pairs for both models:
success rate, success rate within the epsilon ball, rounds and L2 / L-infinity distances (median and
maximum) and their robust/standard ratios. A grid figure per data set shows the generator's
examples against both models.

    python bench/robust.py --dataset mnist
    python bench/robust.py --dataset cifar10

Goals (issue 15): MNIST clean >= 98.5%, strong-attack accuracy >= 88% at 0.3; CIFAR-10 (10k
subset) clean >= 55%, strong-attack accuracy >= 30% at 8/255. The generator goal is reported as
measured: its success rate within the epsilon ball and the distance ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GOALS = {"mnist": {"clean": 0.985, "strong": 0.88}, "cifar10": {"clean": 0.55, "strong": 0.30}}
# The single-start PGD the study first reported; kept for comparison with the strong evaluation.
WEAK_PGD = {"mnist": (40, 0.01), "cifar10": (10, 2 / 255)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "cifar10", "all"), default="all")
    parser.add_argument("--standard", default="models/{dataset}_cnn.h5", help="the adversarial task's model")
    parser.add_argument("--robust", default="models/{dataset}_robust.h5", help="the robust task's model")
    parser.add_argument("--clean-images", type=int, default=10000, help="test images for clean accuracy")
    # 20 PGD-50 runs per robust image: 1,000 MNIST images take a few minutes on 2 CPU cores.
    parser.add_argument("--pgd-images", type=int, default=1000, help="first N test images attacked (robust model)")
    # The standard model falls to 0% within the first images; a subset keeps its attack passes to minutes.
    parser.add_argument("--standard-pgd-images", type=int, default=1000, help="the same for the standard model")
    parser.add_argument("--steps", type=int, default=50, help="PGD steps of the strong evaluation")
    parser.add_argument("--restarts", type=int, default=10, help="random restarts per strong attack")
    parser.add_argument("--samples", type=int, default=5, help="test images attacked by the generator (x10 targets)")
    parser.add_argument("--max-rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--figures", default="docs/figures", help="folder for the grid figures")
    return parser.parse_args(argv)


def load(path: str):
    import keras

    from trainer.export import load_model_file

    model = load_model_file(path)
    if not getattr(model, "inputs", None) or isinstance(model, keras.Sequential):
        # The generator attack composes the classifier by its symbolic output, which a loaded Sequential lacks.
        inputs = keras.Input(model.input_shape[1:])
        model = keras.Model(inputs, model(inputs), name=model.name)
    model.trainable = False
    return model


def accuracies(model, x, y, dataset: str, args, pgd_images: int) -> dict:
    from dataclasses import replace

    from tasks.robust.attacks import AttackConfig, accuracy_under_attack, strong_attacks, worst_case_accuracy
    from tasks.robust.task import RECIPES

    epsilon = RECIPES[dataset].epsilon
    attacks = strong_attacks(epsilon, args.steps, args.restarts)
    weak = AttackConfig.pgd(epsilon, *WEAK_PGD[dataset])
    n = min(pgd_images, len(x))
    started = time.perf_counter()
    result = {
        "clean_accuracy": accuracy_under_attack(model, x[:args.clean_images], y[:args.clean_images], None),
        "clean_images": min(args.clean_images, len(x)),
        "strong_accuracy": worst_case_accuracy(model, x[:n], y[:n], attacks),
        "strong_attacks": [attack.describe() for attack in attacks], "strong_images": n,
        "worst_case_per_image": True,
        # Each attack alone with one start, to show what restarts and the worst case add.
        "per_attack_one_start": {attack.describe(): worst_case_accuracy(model, x[:n], y[:n], [single])
                                 for attack in attacks for single in [replace(attack, restarts=1)]},
        "fgsm_accuracy": accuracy_under_attack(model, x[:n], y[:n], AttackConfig.fgsm(epsilon)),
        "weak_pgd_accuracy": accuracy_under_attack(model, x[:n], y[:n], weak), "weak_pgd_attack": weak.describe(),
    }
    result["eval_seconds"] = round(time.perf_counter() - started, 1)
    return result


def pick_samples(models, x, y, count: int, seed: int) -> list[int]:
    """``count`` test images of different classes that every model classifies correctly, chosen by seed."""
    import numpy as np

    correct = np.ones(len(y), bool)
    for model in models:
        correct &= model.predict(x, batch_size=500, verbose=0).argmax(axis=1) == y
    rng = np.random.default_rng(seed)
    picked = []
    for label in rng.choice(10, size=count, replace=False):
        candidates = np.flatnonzero(correct & (y == label))
        picked.append(int(rng.choice(candidates)))
    return picked


def generator_attack(model, x, y, samples: list[int], args, epsilon: float):
    """The adversarial task's attack on every (sample, other class) pair; the summary counts only real targets."""
    import numpy as np

    from tasks.adversarial.generator import GeneratorConfig, attack, make_pairs

    pairs = make_pairs(samples, 10)
    result = attack(model, x[pairs.samples], pairs.targets, GeneratorConfig(max_rounds=args.max_rounds), pairs.samples)
    real = [p for p, sample in zip(result.pairs, pairs.samples, strict=True) if p.target != y[sample]]
    wins = [p for p in real if p.success]

    def stat(function, values):
        return float(function(values)) if values else None

    within = sum(p.linf <= epsilon + 1e-6 for p in wins)
    summary = {"pairs": len(real), "successes": len(wins), "success_rate": len(wins) / max(len(real), 1),
               # Successes that stay inside the L-infinity budget the robust model was trained for.
               "successes_within_epsilon": within, "success_rate_within_epsilon": within / max(len(real), 1),
               "seconds": round(result.seconds, 1)}
    for name in ("rounds", "l2", "linf"):
        values = [getattr(p, name) for p in wins]
        summary[f"median_{name}"], summary[f"max_{name}"] = stat(np.median, values), stat(np.max, values)
    return summary, result


def grid(dataset: str, standard, robust, x, samples, results, path: Path) -> None:
    """The generator's examples against both models for the same samples, one panel above the other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from common.files import atomic_path
    from tasks.adversarial.generator import grid_figure
    from tasks.classifiers import spec_for

    names = spec_for(dataset).classes
    panels = []
    for label, model in (("standard", standard), ("robust", robust)):
        figure = grid_figure(model, x[samples], samples, results[label], names)
        figure.suptitle(f"{dataset}: simple-generator examples against the {label} model "
                        "(red title: 0.9 confidence not reached)", fontsize=9)
        figure.tight_layout()
        figure.canvas.draw()
        panels.append(np.asarray(figure.canvas.buffer_rgba())[..., :3])
        plt.close(figure)
    width = max(p.shape[1] for p in panels)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    with atomic_path(path) as tmp:
        plt.imsave(tmp, np.concatenate(padded, axis=0))


def bench_dataset(dataset: str, args) -> dict:
    import keras
    import tensorflow as tf

    # Each accuracy pass traces its own attack function; TensorFlow's retracing notice is noise here.
    tf.get_logger().setLevel("ERROR")

    from tasks.classifiers import load_images
    from tasks.robust.task import RECIPES
    from trainer.export import read_model_card

    keras.utils.set_random_seed(args.seed)
    splits, checksums = load_images(dataset, args.data_dir)
    x, y = splits["test"]
    y = y.astype("int64")
    paths = {"standard": args.standard.format(dataset=dataset), "robust": args.robust.format(dataset=dataset)}
    models = {label: load(path) for label, path in paths.items()}
    report = {"data_checksums": checksums, "models": paths}
    for label, model in models.items():
        images = args.pgd_images if label == "robust" else args.standard_pgd_images
        report[label] = accuracies(model, x, y, dataset, args, images)
        card = read_model_card(paths[label])
        report[label]["card_training_seconds"] = card.get("training_seconds") or card.get("fit_seconds")
        report[label]["card_metrics"] = card.get("metrics")
    samples = pick_samples(models.values(), x, y, args.samples, args.seed)
    report["generator_samples"] = samples
    results = {}
    for label, model in models.items():
        epsilon = RECIPES[dataset].epsilon
        report[label]["generator"], results[label] = generator_attack(model, x, y, samples, args, epsilon)
    figure = Path(args.figures) / f"robustness_{dataset}_grid.png"
    grid(dataset, models["standard"], models["robust"], x, samples, results, figure)
    report["grid_figure"] = str(figure)
    report["goals"] = goals(dataset, report)
    return report


def goals(dataset: str, report: dict) -> dict:
    robust, standard = report["robust"], report["standard"]
    g_std, g_rob = standard["generator"], robust["generator"]

    def ratio(name):
        return g_rob[name] / g_std[name] if g_std[name] and g_rob[name] else None

    return {
        "clean": {"goal": GOALS[dataset]["clean"], "value": robust["clean_accuracy"],
                  "met": robust["clean_accuracy"] >= GOALS[dataset]["clean"]},
        "strong": {"goal": GOALS[dataset]["strong"], "value": robust["strong_accuracy"],
                   "images": robust["strong_images"], "met": robust["strong_accuracy"] >= GOALS[dataset]["strong"]},
        # Stated as measured: the generator has no budget, so its plain success rate stays near 100%;
        # what robustness changes is whether it succeeds inside the epsilon ball and how far it must go.
        "generator": {"standard_success_rate": g_std["success_rate"], "robust_success_rate": g_rob["success_rate"],
                      "standard_success_rate_within_epsilon": g_std["success_rate_within_epsilon"],
                      "robust_success_rate_within_epsilon": g_rob["success_rate_within_epsilon"],
                      "median_l2_ratio": ratio("median_l2"), "median_linf_ratio": ratio("median_linf")},
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    datasets = ("mnist", "cifar10") if args.dataset == "all" else (args.dataset,)
    print(json.dumps({dataset: bench_dataset(dataset, args) for dataset in datasets}, indent=2, default=str))


if __name__ == "__main__":
    main()
