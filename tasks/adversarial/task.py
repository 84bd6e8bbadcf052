"""The adversarial task: a CNN on MNIST or CIFAR-10, then simple-generator adversarial examples against it.

``python cli.py fit adversarial --dataset mnist`` trains (or reuses) ``models/mnist_cnn.h5`` and then
attacks it: for each chosen test image i and each class j, a generator f_ij is pulled toward image i
while the composite C(f_ij) is pushed toward class j, until C says j with the asked confidence.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import atomic_path, write_atomic
from tasks.adversarial.config import AdversarialConfig
from tasks.classifiers import SPECS, build_classifier, compile_classifier, load_images, spec_for
from trainer import Task
from trainer.export import load_model_file, save_model_atomic, write_model_card
from trainer.report import write_run_results
from trainer.shipped import find_model

# Epochs when no --max-epochs is given: what reaches the accuracy goal on 2 CPU cores.
DEFAULT_EPOCHS = {"mnist": 10, "cifar10": 30}
# Held out of the training split for validation (CIFAR-10 has only 10k training images here).
VALIDATION_SIZE = {"mnist": 5000, "cifar10": 1000}
# Default MNIST samples are drawn among test images the model classifies at least this surely.
SURE = 0.99


class AdversarialTask(Task):
    name = "adversarial"
    Config = AdversarialConfig

    def __init__(self, config: AdversarialConfig | None = None) -> None:
        super().__init__(config)
        self.spec = spec_for(self.config.dataset)
        self.batch_size = self.config.batch_size
        self.default_epochs = DEFAULT_EPOCHS[self.config.dataset]
        self._validate_config()
        self._splits = None
        self._checksums = {}
        self.attack_result = None
        self.attack_samples: list[int] = []
        self.reused = False

    def _validate_config(self) -> None:
        c = self.config  # its fields' ranges are the Config's own (AdversarialConfig's metadata)
        if c.samples is not None and not c.samples:
            raise UserError("--samples is empty; give test-image indices such as 3,2,1")

    @property
    def model_path(self) -> Path:
        if self.config.model:
            return Path(self.config.model)
        # A shipped classifier is found from any folder; a retrained one goes to ./models.
        local = Path("models") / f"{self.config.dataset}_cnn.h5"
        return local if self.config.retrain else find_model(local)

    @property
    def loads_trained_model(self) -> bool:
        # Its classifier file, models/<dataset>_cnn.h5 unless --model names another; setup names a missing one.
        return not self.config.retrain

    @property
    def reuses_model(self) -> bool:
        return self.model_path.exists() and not self.config.retrain

    # --- model and data ---------------------------------------------------------------------
    def build_model(self):
        if self.reuses_model:
            self.reused = True
            model = load_model_file(self.model_path)
            shape = tuple(model.input_shape[1:])
            if shape != self.spec.input_shape:
                other = next((s.dataset for s in SPECS.values() if s.input_shape == shape), None)
                hint = f"pass --dataset {other}" if other else "pass a model made by `fit adversarial`"
                raise UserError(f"model {self.model_path} takes images of shape {shape}, not the "
                                f"{self.spec.input_shape} of {self.config.dataset}; {hint}")
            return compile_classifier(model, self.config.learning_rate)
        return build_classifier(self.config.dataset, self.config.learning_rate)

    def setup(self, trainer, task, stage):
        if stage == "test" and not self.model_path.exists() and trainer.global_step == 0:
            raise UserError(f"model {self.model_path} does not exist; train it first with "
                            f"`python cli.py fit adversarial --dataset {self.config.dataset}`")

    @property
    def splits(self) -> dict:
        if self._splits is None:
            splits, self._checksums = load_images(self.config.dataset, self.data_dir)
            x, y = splits["train"]
            held = min(VALIDATION_SIZE[self.config.dataset], len(x) // 5)
            # Arrays are built once and cached: the Trainer converts them to tensors once per run.
            self._splits = {"train": (x[:-held], y[:-held]), "validation": (x[-held:], y[-held:]),
                            "test": splits["test"]}
        return self._splits

    def train_data(self):
        return self.splits["train"]

    def val_data(self):
        return self.splits["validation"]

    def test_data(self):
        return self.splits["test"]

    def data_checksums(self) -> dict:
        self.splits  # noqa: B018 - loading fills the checksums
        return dict(self._checksums)

    def on_train_epoch_start(self, trainer, task):
        # Cosine decay by epoch, set here so a resumed run continues the same schedule.
        epochs = trainer.config.effective.max_epochs
        rate = self.config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * trainer.current_epoch / epochs))
        self.model.optimizer.learning_rate.assign(rate)

    # --- the job ------------------------------------------------------------------------------
    def run(self, trainer) -> dict:
        reuse = self.reuses_model
        if not reuse:
            trainer.fit(self)
        trainer.test(self)
        if not reuse:
            self._export(trainer)
        self._attack(trainer)
        write_run_results(trainer, self)
        self._print_summary(trainer)
        return self.results(trainer)

    def _print_summary(self, trainer) -> None:
        summary = self.attack_result.summary()
        source = "reused" if self.reused else "trained and saved"
        print(f"classifier {self.model_path} ({source}): test accuracy {trainer.metrics['test_accuracy']:.4f}")
        print(f"attack: {summary['successes']}/{summary['pairs']} pairs (own class left out) reached confidence "
              f"{self.config.confidence} in {summary['seconds']:.1f} s; rounds median {summary['median_rounds']:g} "
              f"max {summary['max_rounds']:g}, L2 median {summary['median_l2']:.3f} max {summary['max_l2']:.3f}, "
              f"Linf median {summary['median_linf']:.3f} max {summary['max_linf']:.3f}")
        print(f"grid: {trainer.run_dir / 'attack_grid.png'}  table: {trainer.run_dir / 'attack_pairs.csv'}")

    def _export(self, trainer) -> None:
        # A wiring check must never overwrite the shipped model.
        path = trainer.run_dir / self.model_path.name if trainer.config.fast_dev_run else self.model_path
        save_model_atomic(self.model, path, include_optimizer=False)
        write_model_card(path, {
            "task": self.name,
            "dataset": self.config.dataset,
            "metrics": {k: round(v, 4) for k, v in trainer.metrics.items() if k.startswith(("test_", "val_"))},
            "epochs": trainer.current_epoch,
            "fit_seconds": round(trainer.fit_seconds, 1),
            "seed": trainer.config.seed,
            "data": self.data_checksums(),
            "train_images": int(len(self.splits["train"][0])),
            "parameters": int(self.model.count_params()),
            "optimizer": "not saved (weights only); fit --retrain trains from scratch",
            "input": "float32 images in [0, 1], channels last; standardisation happens inside the model",
            "classes": list(self.spec.classes),
            "run": str(trainer.run_dir),
        })

    def _attack(self, trainer) -> None:
        from tasks.adversarial.generator import GeneratorConfig, attack, make_pairs

        x_test, y_test = self.splits["test"]
        self.attack_samples = self.pick_samples(x_test, y_test, trainer.config.seed)
        pairs = make_pairs(self.attack_samples, len(self.spec.classes))
        config = GeneratorConfig(confidence=self.config.confidence,
                              max_rounds=2 if trainer.config.fast_dev_run else self.config.max_rounds,
                              generator_lr=self.config.generator_lr, composite_lr=self.config.composite_lr)
        self.attack_result = attack(self.model, x_test[pairs.samples], pairs.targets, config, pairs.samples)
        self._log_attack(trainer)

    def pick_samples(self, x: np.ndarray, y: np.ndarray, seed: int) -> list[int]:
        """The --samples indices, or by seed: test images of different classes the model is sure of."""
        if self.config.samples is not None:
            bad = [i for i in self.config.samples if not 0 <= i < len(x)]
            if bad:
                raise UserError(f"--samples {','.join(map(str, bad))} out of range; test indices go 0-{len(x) - 1}")
            return list(self.config.samples)
        probabilities = self.model.predict(x, batch_size=512, verbose=0)
        sure = (probabilities.argmax(axis=1) == y) & (probabilities.max(axis=1) >= SURE)
        rng = np.random.default_rng(seed)
        count = 5 if self.config.dataset == "mnist" else 1
        classes = rng.choice(len(self.spec.classes), size=count, replace=False)
        picked = []
        for label in classes:
            candidates = np.flatnonzero(sure & (y == label))
            if candidates.size == 0:
                candidates = np.flatnonzero(y == label)
            picked.append(int(rng.choice(candidates)))
        return picked

    # --- outputs ------------------------------------------------------------------------------
    def _log_attack(self, trainer) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from tasks.adversarial.generator import grid_figure, tile_grid

        result, logger = self.attack_result, trainer.logger
        self._log_confidence(logger)
        originals = self.splits["test"][0][self.attack_samples]
        for round_index, images in result.snapshots:
            grid = tile_grid(originals, images, len(self.spec.classes))
            logger.log_images("attack_grid_evolution", grid[None], round_index, "attack")
        figure = grid_figure(self.model, originals, self.attack_samples, result, self.spec.classes)
        with atomic_path(trainer.run_dir / "attack_grid.png") as tmp:
            figure.savefig(tmp, dpi=90, bbox_inches="tight")
        logger.log_figure("attack_grid", figure, result.rounds_run, "attack")
        plt.close(figure)
        logger.log_text("attack_table", self._pair_table(), 0, "attack")
        logger.flush()
        write_atomic(trainer.run_dir / "attack_pairs.csv", self._pair_csv())

    def _log_confidence(self, logger) -> None:
        """Per round: the mean and lowest target confidence, the success rate, and each pair's curve."""
        pairs, history = self.attack_result.pairs, self.attack_result.confidence_history
        tags = [f"confidence/sample{p.sample_index}_to_{self.spec.classes[p.target]}" for p in pairs]
        reached = np.maximum.accumulate(history >= self.config.confidence, axis=0)
        for step, row in enumerate(history):
            scalars = {"mean_target_confidence": float(row.mean()), "min_target_confidence": float(row.min()),
                       "success_rate": float(reached[step].mean())}
            # A pair's curve ends at its success, where it left the batch.
            scalars.update({tag: float(row[p]) for p, tag in enumerate(tags) if step <= pairs[p].rounds})
            logger.log_scalars(scalars, step, "attack", "attack_")

    def _pair_rows(self) -> list[dict]:
        names = self.spec.classes
        labels = self.splits["test"][1]
        return [{"sample": p.sample_index, "label": names[labels[p.sample_index]], "target": names[p.target],
                 "success": p.success, "confidence": round(p.confidence, 4), "predicted": names[p.predicted],
                 "rounds": p.rounds, "l2": round(p.l2, 4), "linf": round(p.linf, 4), "why": p.why}
                for p in self.attack_result.pairs]

    def _pair_table(self) -> str:
        rows = self._pair_rows()
        header = "| sample | label | target | success | confidence | predicted | rounds | L2 | Linf | note |"
        lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['sample']} | {r['label']} | {r['target']} | {'yes' if r['success'] else 'no'} | "
                  f"{r['confidence']:.3f} | {r['predicted']} | {r['rounds']} | {r['l2']:.3f} | {r['linf']:.3f} | "
                  f"{r['why']} |" for r in rows]
        return "\n".join(lines)

    def _pair_csv(self) -> str:
        buffer = io.StringIO()
        rows = self._pair_rows()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def results(self, trainer) -> dict:
        results = dict(trainer.metrics)
        if self.attack_result is not None:
            results["attack"] = {**self.attack_result.summary(), "samples": self.attack_samples,
                                 "pairs": self._pair_rows()}
        return results

    def report_sections(self, trainer) -> list[tuple[str, str]]:
        if self.attack_result is None:
            return []
        summary = self.attack_result.summary()
        c = self.config
        text = (f"{summary['successes']} of {summary['pairs']} pairs (the {summary['own_class_pairs']} pairs whose "
                f"target is the image's own class left out) reached their target with confidence >= "
                f"{c.confidence} (success rate {summary['success_rate']:.0%}); L2 median {summary['median_l2']:.3f} "
                f"(max {summary['max_l2']:.3f}), Linf median {summary['median_linf']:.3f} (max "
                f"{summary['max_linf']:.3f}), rounds median {summary['median_rounds']:g} (max "
                f"{summary['max_rounds']:g}), attack time {summary['seconds']:.1f} s. Generator Adam "
                f"{c.generator_lr:g}, composite Adam {c.composite_lr:g}, at most {c.max_rounds} rounds.\n\n"
                "![grid](attack_grid.png)\n")
        return [("Attack summary", text), ("Attack per pair", self._pair_table())]

