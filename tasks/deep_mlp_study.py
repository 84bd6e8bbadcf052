"""The deep-MLP study's outputs: score table, gradient and learning-curve figures, and observations.

Everything here is computed from the results of the run at hand; nothing is written in advance.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from trainer.files import atomic_path, make_dirs, write_atomic
from trainer.logger import TensorBoardLogger
from trainer.report import render_report

# Ten balanced classes: 0.1 is chance; below twice that a model has learned next to nothing.
CHANCE_ACCURACY = 0.1
AT_CHANCE_BELOW = 0.2
FIGURES = {
    "max_gradient_trained": "Layer depth vs max |gradient| after training",
    "max_gradient_untrained": "Layer depth vs max |gradient| at initialization",
    "learning_curves": "LeCun vs tanh learning curves",
}
COLUMNS = ("depth", "activation", "test_loss", "test_accuracy", "epochs", "seconds")


def announce(text: str) -> None:
    from rich.console import Console

    Console(highlight=False).print(text, markup=False)


class Study:
    """Collects one result dict per model (see ``MLPTask.result``) and writes the study's files."""

    def __init__(self, task, run_dir: Path) -> None:
        self.task = task
        self.run_dir = Path(run_dir)
        self.results: list[dict] = []

    def add(self, result: dict) -> None:
        self.results.append(result)

    def metrics(self) -> dict:
        return {f"test_accuracy/{r['depth']}-{r['activation']}": r["test_accuracy"] for r in self.results}

    # --- files ------------------------------------------------------------------------------
    def write(self) -> None:
        if not self.results:
            return
        make_dirs(self.run_dir)
        write_atomic(self.run_dir / "study.json", json.dumps(self.results, indent=2))
        write_atomic(self.run_dir / "scores.md", self.table_markdown())
        write_atomic(self.run_dir / "scores.csv", self.table_csv())
        self._write_figures()
        self._write_report()
        print_table(self.results)

    def table_markdown(self) -> str:
        lines = ["| depth | activation | test loss | test accuracy | epochs | time (s) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['depth']} | {r['activation']} | {r['test_loss']:.4f} | {r['test_accuracy']:.4f} | "
                  f"{r['epochs']} | {r['seconds']:.1f} |" for r in self.results]
        return "\n".join(lines) + "\n"

    def table_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.results:
            writer.writerow([r["depth"], r["activation"], f"{r['test_loss']:.6f}", f"{r['test_accuracy']:.6f}",
                             r["epochs"], f"{r['seconds']:.2f}"])
        return buffer.getvalue()

    def _write_figures(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        logger = TensorBoardLogger(self.run_dir)
        try:
            for name, figure in self.figures().items():
                with atomic_path(self.run_dir / f"{name}.png") as tmp:
                    figure.savefig(tmp, dpi=90, bbox_inches="tight")
                logger.log_figure(f"study/{name}", figure, step=0, split="study")
                plt.close(figure)
            logger.log_text("study/scores", self.table_markdown(), split="study")
        finally:
            logger.close()

    def figures(self) -> dict:
        return {"max_gradient_trained": gradient_figure(self.results, "trained_gradients",
                                                        FIGURES["max_gradient_trained"]),
                "max_gradient_untrained": gradient_figure(self.results, "untrained_gradients",
                                                          FIGURES["max_gradient_untrained"]),
                "learning_curves": learning_curves_figure(self.results)}

    def _write_report(self) -> None:
        # Each model's config.json already holds the command, trainer config and packages: the study's
        # is the first one's, with the study's own options and folder name.
        first = self.run_dir / f"{self.results[0]['depth']}-{self.results[0]['activation']}" / "config.json"
        config = json.loads(first.read_text())
        config.update(run=self.run_dir.name, task_config=self.task.config_dict(), data=self.task.data_checksums())
        write_atomic(self.run_dir / "config.json", json.dumps(config, indent=2, default=str))
        results = {"epochs": max(r["epochs"] for r in self.results),
                   "global_step": sum(r["steps"] for r in self.results),
                   "fit_seconds": sum(r["seconds"] for r in self.results),
                   "metrics": self.metrics(), "results": self.results}
        write_atomic(self.run_dir / "metrics.json", json.dumps(results, indent=2, default=str))
        write_atomic(self.run_dir / "report.md", render_report(config, results, self.sections()))

    def sections(self) -> list[tuple[str, str]]:
        c = self.task.config
        setup = (f"MNIST, {len(self.task.splits.train[0])} training / {len(self.task.splits.validation[0])} "
                 f"validation / {len(self.task.splits.test[0])} test images, pixels divided by 255 to [0, 1] and "
                 "**not standardized** (no mean subtraction). Each model: hidden Dense layers of "
                 f"{c.hidden_units} units, softmax output, SGD (learning rate {c.learning_rate}), categorical "
                 f"cross-entropy, batch size {c.batch_size}, Glorot-uniform weights, the same seed for every model. "
                 f"Gradients: max |d loss / d w| per layer (kernel and bias) on the same {c.probe_samples} "
                 "training images for every model. Each model's TensorBoard curves, gradient histograms, "
                 "checkpoints and `model.h5` are in its sub-folder `<depth>-<activation>/`.")
        figures = "\n\n".join(f"![{title}]({name}.png)" for name, title in FIGURES.items())
        return [("Setup", setup), ("Test scores", self.table_markdown()),
                ("Observations", "\n".join(f"- {line}" for line in observations(self.results))),
                ("Figures", figures)]


def print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="deep-mlp: test scores")
    for column, justify in zip(("depth", "activation", "test loss", "test accuracy", "epochs", "time (s)"),
                               ("right", "left", "right", "right", "right", "right"), strict=True):
        table.add_column(column, justify=justify)
    for r in results:
        table.add_row(str(r["depth"]), r["activation"], f"{r['test_loss']:.4f}", f"{r['test_accuracy']:.4f}",
                      str(r["epochs"]), f"{r['seconds']:.1f}")
    Console().print(table)


# --- figures ---------------------------------------------------------------------------------
def _depths(results: list[dict]) -> list[int]:
    return sorted({r["depth"] for r in results})


def gradient_figure(results: list[dict], key: str, title: str):
    """One subplot per depth; x: layer (1 = first hidden, depth + 1 = output), y: max |gradient| (log)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    depths = _depths(results)
    figure, axes = plt.subplots(1, len(depths), figsize=(4.5 * len(depths), 3.6), squeeze=False)
    for ax, depth in zip(axes[0], depths, strict=True):
        for r in (r for r in results if r["depth"] == depth):
            values = [v if v > 0 else math.nan for v in r[key]]  # a zero gradient has no place on a log axis
            zeros = sum(v == 0 for v in r[key])
            label = r["activation"] + (f" ({zeros} layers at 0)" if zeros else "")
            ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
        ax.set_yscale("log")
        ax.set_title(f"{depth} hidden layers")
        ax.set_xlabel("layer (1 = first hidden, last = output)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("max |gradient|")
    for ax in axes[0]:
        ax.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def curve_activations(results: list[dict]) -> list[str]:
    """LeCun vs tanh, as the study asks; every activation run when neither of them was."""
    present = list(dict.fromkeys(r["activation"] for r in results))
    chosen = [a for a in ("tanh", "lecun") if a in present]
    return chosen or present


def learning_curves_figure(results: list[dict]):
    """Rows: loss, accuracy; one column per depth; solid = validation, dashed = training."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    depths, activations = _depths(results), curve_activations(results)
    figure, axes = plt.subplots(2, len(depths), figsize=(4.5 * len(depths), 6.4), squeeze=False)
    for column, depth in enumerate(depths):
        for index, activation in enumerate(activations):
            match = [r for r in results if r["depth"] == depth and r["activation"] == activation]
            if not match or not match[0]["history"]:
                continue
            history, color = match[0]["history"], f"C{index}"
            epochs = [h["epoch"] for h in history]
            for row, metric in enumerate(("loss", "accuracy")):
                ax = axes[row][column]
                ax.plot(epochs, [h[f"train_{metric}"] for h in history], "--", color=color,
                        label=f"{activation} train")
                ax.plot(epochs, [h[f"val_{metric}"] for h in history], "-o", color=color,
                        label=f"{activation} validation")
        axes[0][column].set_title(f"{depth} hidden layers")
        axes[1][column].set_xlabel("epoch")
        for row in (0, 1):
            axes[row][column].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("loss")
    axes[1][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize="small")
    figure.suptitle(f"{' vs '.join(activations)}: training (dashed) and validation (solid)")
    figure.tight_layout()
    return figure


# --- observations ----------------------------------------------------------------------------
def observations(results: list[dict]) -> list[str]:
    """Statements the numbers of this run support, each with the numbers that support it."""
    if not results:
        return ["No model finished, so there is nothing to observe."]
    return [chance_observation(results), *gradient_observations(results), *lecun_vs_tanh(results)]


def _name(r: dict) -> str:
    return f"{r['activation']} at depth {r['depth']}"


def chance_observation(results: list[dict]) -> str:
    stuck = [r for r in results if r["test_accuracy"] < AT_CHANCE_BELOW]
    if not stuck:
        worst = min(results, key=lambda r: r["test_accuracy"])
        return (f"No model stays at chance (test accuracy below {AT_CHANCE_BELOW}; chance is {CHANCE_ACCURACY}): "
                f"the lowest is {_name(worst)} with {worst['test_accuracy']:.4f}.")
    listed = ", ".join(f"{_name(r)} ({r['test_accuracy']:.4f})" for r in stuck)
    return (f"{len(stuck)} of {len(results)} models stay at chance (test accuracy below {AT_CHANCE_BELOW}; chance "
            f"is {CHANCE_ACCURACY}): {listed}.")


def attenuation(gradients: list[float]) -> float:
    """Max |gradient| of the first hidden layer over that of the output layer (small: vanished)."""
    first, last = gradients[0], gradients[-1]
    return first / last if last > 0 else math.nan


def gradient_observations(results: list[dict]) -> list[str]:
    lines = []
    for key, when in (("untrained_gradients", "at initialization"), ("trained_gradients", "after training")):
        parts = []
        for activation in dict.fromkeys(r["activation"] for r in results):
            rows = sorted((r for r in results if r["activation"] == activation), key=lambda r: r["depth"])
            ratios = ", ".join(f"{attenuation(r[key]):.2e} at depth {r['depth']}" for r in rows)
            parts.append(f"{activation}: {ratios}")
        deepest = max(_depths(results))
        at_deepest = [r for r in results if r["depth"] == deepest]
        worst = min(at_deepest, key=lambda r: _finite(attenuation(r[key])))
        best = max(at_deepest, key=lambda r: _finite(attenuation(r[key])))
        lines.append(f"Max |gradient| of the first hidden layer relative to the output layer, {when}: "
                     f"{'; '.join(parts)}. At depth {deepest} the ratio is smallest for {worst['activation']} "
                     f"({attenuation(worst[key]):.2e}) and largest for {best['activation']} "
                     f"({attenuation(best[key]):.2e}).")
    return lines


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def lecun_vs_tanh(results: list[dict]) -> list[str]:
    by_key = {(r["depth"], r["activation"]): r for r in results}
    depths = [d for d in _depths(results) if (d, "lecun") in by_key and (d, "tanh") in by_key]
    if not depths:
        return ["LeCun vs tanh: not compared (the run did not train both at any depth)."]
    parts, faster = [], 0
    for depth in depths:
        lecun, tanh = by_key[depth, "lecun"], by_key[depth, "tanh"]
        first_l, first_t = lecun["history"][0]["val_accuracy"], tanh["history"][0]["val_accuracy"]
        faster += first_l > first_t
        parts.append(f"depth {depth}: validation accuracy after epoch 1 {first_l:.4f} (LeCun) vs {first_t:.4f} "
                     f"(tanh), test accuracy {lecun['test_accuracy']:.4f} vs {tanh['test_accuracy']:.4f}")
    verdict = ("LeCun trains faster than tanh" if faster == len(depths) else
               "tanh trains faster than LeCun" if faster == 0 else "neither trains faster at every depth")
    return [f"LeCun vs tanh: {verdict} (higher validation accuracy after the first epoch at {faster} of "
            f"{len(depths)} depths): {'; '.join(parts)}."]
