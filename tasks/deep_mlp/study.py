"""The deep-MLP study's outputs: score table, gradient and learning-curve figures, and observations.

Everything here is computed from the results of the run at hand; nothing is written in advance.
A run of several seeds (``--seeds N``) holds one result per (seed, depth, activation); the table,
figures and observations summarise each model over its seeds: mean and sample sd of the scores,
the median of the gradient figures.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

from common.files import atomic_path, make_dirs, write_atomic
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
COLUMNS = ("depth", "activation", "seeds", "test_loss", "test_loss_sd", "test_accuracy", "test_accuracy_sd",
           "test_accuracy_per_seed", "gradient_ratio_init", "gradient_ratio_trained", "epochs", "seconds")
HEADERS = ("depth", "activation", "seeds", "test loss", "test accuracy", "per seed",
           "first/output grad. at init", "after training", "epochs", "time (s)")


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
        """Mean test accuracy per model (and its sd over seeds when there are several)."""
        metrics = {}
        for row in summarize(self.results):
            label = f"{row['depth']}-{row['activation']}"
            metrics[f"test_accuracy/{label}"] = row["test_accuracy"][0]
            if len(row["seeds"]) > 1:
                metrics[f"test_accuracy_sd/{label}"] = row["test_accuracy"][1]
        return metrics

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
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(table_cells(row)) + " |" for row in summarize(self.results)]
        return "\n".join(lines) + "\n"

    def table_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in summarize(self.results):
            writer.writerow([row["depth"], row["activation"], " ".join(map(str, row["seeds"])),
                             f"{row['test_loss'][0]:.6f}", _csv_number(row["test_loss"][1]),
                             f"{row['test_accuracy'][0]:.6f}", _csv_number(row["test_accuracy"][1]),
                             " ".join(f"{a:.6f}" for a in row["test_accuracy_per_seed"]),
                             f"{row['gradient_ratio_init']:.4g}", f"{row['gradient_ratio_trained']:.4g}",
                             row["epochs"], f"{row['seconds']:.2f}"])
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
        first = self.run_dir / self.results[0].get("folder", _label(self.results[0])) / "config.json"
        config = json.loads(first.read_text())
        config.update(run=self.run_dir.name, task_config=self.task.config_dict(), data=self.task.data_checksums())
        seeds = sorted({r.get("seed") for r in self.results if r.get("seed") is not None})
        if seeds:  # the first model's config names its own seed; the study's names them all
            config.update(seed=seeds[0], seeds=seeds)
            config["trainer"].update(seed=seeds[0], seeds=len(seeds))
        write_atomic(self.run_dir / "config.json", json.dumps(config, indent=2, default=str))
        results = {"epochs": max(r["epochs"] for r in self.results),
                   "global_step": sum(r["steps"] for r in self.results),
                   "fit_seconds": sum(r["seconds"] for r in self.results),
                   "metrics": self.metrics(), "results": self.results}
        write_atomic(self.run_dir / "metrics.json", json.dumps(results, indent=2, default=str))
        write_atomic(self.run_dir / "report.md", render_report(config, results, self.sections()))

    def sections(self) -> list[tuple[str, str]]:
        c = self.task.config
        seeds = sorted({r.get("seed") for r in self.results}, key=str)
        folder = "<depth>-<activation>/" if len(seeds) == 1 else "seed-<N>/<depth>-<activation>/"
        setup = (f"MNIST, {len(self.task.splits.train[0])} training / {len(self.task.splits.validation[0])} "
                 f"validation / {len(self.task.splits.test[0])} test images, pixels divided by 255 to [0, 1] and "
                 "**not standardized** (no mean subtraction). Each model: hidden Dense layers of "
                 f"{c.hidden_units} units, softmax output, SGD (learning rate {c.learning_rate}), categorical "
                 f"cross-entropy, batch size {c.batch_size}, Glorot-uniform weights, the same seed for every model "
                 f"(seeds {', '.join(map(str, seeds))}: mean and sample sd over them; gradient figures are the "
                 "median over seeds). "
                 f"Gradients: max |d loss / d w| per layer (kernel and bias) on the same {c.probe_samples} "
                 "training images for every model. Each model's TensorBoard curves, gradient histograms, "
                 f"checkpoints and `model.h5` are in its sub-folder `{folder}`.")
        figures = "\n\n".join(f"![{title}]({name}.png)" for name, title in FIGURES.items())
        return [("Setup", setup), ("Test scores", self.table_markdown()),
                ("Observations", "\n".join(f"- {line}" for line in observations(self.results))),
                ("Figures", figures)]


def print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    # The terminal gets the scores; per-seed values and gradient ratios are in scores.md and the report.
    shown = [HEADERS.index(c) for c in ("depth", "activation", "seeds", "test loss", "test accuracy", "epochs",
                                        "time (s)")]
    table = Table(title="deep-mlp: test scores")
    for index in shown:
        table.add_column(HEADERS[index], justify="left" if HEADERS[index] in ("activation", "seeds") else "right")
    for row in summarize(results):
        cells = table_cells(row)
        table.add_row(*(cells[index] for index in shown))
    Console().print(table)


# --- summary over seeds ----------------------------------------------------------------------
def _label(r: dict) -> str:
    return f"{r['depth']}-{r['activation']}"


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation; sd is nan for a single value (one draw has no spread)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def summarize(results: list[dict]) -> list[dict]:
    """One row per (depth, activation) in the order first trained, over the seeds it was trained with."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["depth"], r["activation"]), []).append(r)
    rows = []
    for (depth, activation), runs in groups.items():
        rows.append({
            "depth": depth, "activation": activation, "seeds": [r.get("seed") for r in runs],
            "test_loss": mean_sd([r["test_loss"] for r in runs]),
            "test_accuracy": mean_sd([r["test_accuracy"] for r in runs]),
            "test_accuracy_per_seed": [r["test_accuracy"] for r in runs],
            "first_val_accuracy": mean_sd([r["history"][0]["val_accuracy"] for r in runs if r["history"]]
                                          or [math.nan]),
            # Ratios span orders of magnitude and can be 0 (dead layers): the median is a real draw's value.
            "gradient_ratio_init": statistics.median(attenuation(r["untrained_gradients"]) for r in runs),
            "gradient_ratio_trained": statistics.median(attenuation(r["trained_gradients"]) for r in runs),
            "epochs": max(r["epochs"] for r in runs), "seconds": statistics.fmean(r["seconds"] for r in runs),
        })
    return rows


def plus_minus(value: tuple[float, float], digits: int = 4) -> str:
    mean, sd = value
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def table_cells(row: dict) -> list[str]:
    return [str(row["depth"]), row["activation"], ",".join(map(str, row["seeds"])), plus_minus(row["test_loss"]),
            plus_minus(row["test_accuracy"]), " ".join(f"{a:.4f}" for a in row["test_accuracy_per_seed"]),
            f"{row['gradient_ratio_init']:.2e}", f"{row['gradient_ratio_trained']:.2e}", str(row["epochs"]),
            f"{row['seconds']:.1f}"]


def _csv_number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def median_per_layer(runs: list[dict], key: str) -> list[float]:
    return [statistics.median(values) for values in zip(*(r[key] for r in runs), strict=True)]


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
        for activation in dict.fromkeys(r["activation"] for r in results if r["depth"] == depth):
            gradients = median_per_layer(_runs(results, depth, activation), key)
            values = [v if v > 0 else math.nan for v in gradients]  # a zero gradient has no place on a log axis
            zeros = sum(v == 0 for v in gradients)
            label = activation + (f" ({zeros} layers at 0)" if zeros else "")
            ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
        ax.set_yscale("log")
        ax.set_title(f"{depth} hidden layers")
        ax.set_xlabel("layer (1 = first hidden, last = output)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("max |gradient|")
    for ax in axes[0]:
        ax.legend(fontsize="small")
    seeds = len({r.get("seed") for r in results})
    figure.suptitle(title if seeds == 1 else f"{title} (median over {seeds} seeds)")
    figure.tight_layout()
    return figure


def _runs(results: list[dict], depth: int, activation: str) -> list[dict]:
    return [r for r in results if r["depth"] == depth and r["activation"] == activation]


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
            histories = [r["history"] for r in _runs(results, depth, activation) if r["history"]]
            if not histories:
                continue
            length, color = min(map(len, histories)), f"C{index}"
            epochs = [h["epoch"] for h in histories[0][:length]]
            for row, metric in enumerate(("loss", "accuracy")):
                ax = axes[row][column]
                for split, style, name in (("train", "--", "train"), ("val", "-o", "validation")):
                    per_epoch = [mean_sd([h[e][f"{split}_{metric}"] for h in histories]) for e in range(length)]
                    means = [m for m, _ in per_epoch]
                    ax.plot(epochs, means, style, color=color, label=f"{activation} {name}")
                    if len(histories) > 1 and split == "val":
                        sds = [sd for _, sd in per_epoch]
                        ax.fill_between(epochs, [m - d for m, d in zip(means, sds, strict=True)],
                                        [m + d for m, d in zip(means, sds, strict=True)], color=color, alpha=0.15)
        axes[0][column].set_title(f"{depth} hidden layers")
        axes[1][column].set_xlabel("epoch")
        for row in (0, 1):
            axes[row][column].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("loss")
    axes[1][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize="small")
    seeds = len({r.get("seed") for r in results})
    spread = "" if seeds == 1 else f"; mean over {seeds} seeds, band: validation ± sd"
    figure.suptitle(f"{' vs '.join(activations)}: training (dashed) and validation (solid){spread}")
    figure.tight_layout()
    return figure


# --- observations ----------------------------------------------------------------------------
def observations(results: list[dict]) -> list[str]:
    """Statements the numbers of this run support, each with the numbers that support it."""
    if not results:
        return ["No model finished, so there is nothing to observe."]
    return [chance_observation(results), *gradient_observations(results), growth_observation(results),
            *lecun_vs_tanh(results), spread_observation(results)]


def _name(row: dict) -> str:
    return f"{row['activation']} at depth {row['depth']}"


def _over(row: dict) -> str:
    return "" if len(row["seeds"]) == 1 else f" over {len(row['seeds'])} seeds"


def chance_observation(results: list[dict]) -> str:
    rows = summarize(results)
    stuck = [r for r in rows if r["test_accuracy"][0] < AT_CHANCE_BELOW]
    if not stuck:
        worst = min(rows, key=lambda r: r["test_accuracy"][0])
        return (f"No model stays at chance (mean test accuracy below {AT_CHANCE_BELOW}; chance is "
                f"{CHANCE_ACCURACY}): the lowest is {_name(worst)} with {plus_minus(worst['test_accuracy'])}"
                f"{_over(worst)}.")
    listed = ", ".join(f"{_name(r)} ({plus_minus(r['test_accuracy'])})" for r in stuck)
    return (f"{len(stuck)} of {len(rows)} models stay at chance (mean test accuracy below {AT_CHANCE_BELOW}; "
            f"chance is {CHANCE_ACCURACY}): {listed}.")


def attenuation(gradients: list[float]) -> float:
    """Max |gradient| of the first hidden layer over that of the output layer (small: vanished)."""
    first, last = gradients[0], gradients[-1]
    return first / last if last > 0 else math.nan


def gradient_observations(results: list[dict]) -> list[str]:
    rows, lines = summarize(results), []
    median = "" if len(rows[0]["seeds"]) == 1 else f" (median over {len(rows[0]['seeds'])} seeds)"
    for key, when in (("gradient_ratio_init", "at initialization"), ("gradient_ratio_trained", "after training")):
        parts = []
        for activation in dict.fromkeys(r["activation"] for r in rows):
            chosen = sorted((r for r in rows if r["activation"] == activation), key=lambda r: r["depth"])
            ratios = ", ".join(f"{r[key]:.2e} at depth {r['depth']}" for r in chosen)
            parts.append(f"{activation}: {ratios}")
        deepest = max(r["depth"] for r in rows)
        at_deepest = [r for r in rows if r["depth"] == deepest]
        worst = min(at_deepest, key=lambda r: _finite(r[key]))
        best = max(at_deepest, key=lambda r: _finite(r[key]))
        lines.append(f"Max |gradient| of the first hidden layer relative to the output layer, {when}{median}: "
                     f"{'; '.join(parts)}. At depth {deepest} the ratio is smallest for {worst['activation']} "
                     f"({worst[key]:.2e}) and largest for {best['activation']} ({best[key]:.2e}).")
    return lines


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def lecun_vs_tanh(results: list[dict]) -> list[str]:
    rows = {(r["depth"], r["activation"]): r for r in summarize(results)}
    depths = [d for d in _depths(results) if (d, "lecun") in rows and (d, "tanh") in rows]
    if not depths:
        return ["LeCun vs tanh: not compared (the run did not train both at any depth)."]
    parts, faster = [], 0
    for depth in depths:
        lecun, tanh = rows[depth, "lecun"], rows[depth, "tanh"]
        faster += lecun["first_val_accuracy"][0] > tanh["first_val_accuracy"][0]
        wins = _paired_wins(_runs(results, depth, "lecun"), _runs(results, depth, "tanh"))
        parts.append(f"depth {depth}: validation accuracy after epoch 1 {plus_minus(lecun['first_val_accuracy'])} "
                     f"(LeCun) vs {plus_minus(tanh['first_val_accuracy'])} (tanh){wins}, test accuracy "
                     f"{plus_minus(lecun['test_accuracy'])} vs {plus_minus(tanh['test_accuracy'])}")
    verdict = ("LeCun trains faster than tanh" if faster == len(depths) else
               "tanh trains faster than LeCun" if faster == 0 else "neither trains faster at every depth")
    seeds = len(rows[depths[0], "lecun"]["seeds"])
    mean = "" if seeds == 1 else f" (mean ± sd over {seeds} seeds)"
    return [f"LeCun vs tanh{mean}: {verdict} (higher validation accuracy after the first epoch at {faster} of "
            f"{len(depths)} depths): {'; '.join(parts)}."]


def _paired_wins(lecun: list[dict], tanh: list[dict]) -> str:
    """In how many seeds LeCun's first epoch beats tanh's started from that same seed."""
    by_seed = {r.get("seed"): r for r in tanh}
    pairs = [(r, by_seed[r.get("seed")]) for r in lecun if r.get("seed") in by_seed and r["history"]]
    if len(pairs) < 2:
        return ""
    wins = sum(a["history"][0]["val_accuracy"] > b["history"][0]["val_accuracy"] for a, b in pairs)
    return f", LeCun ahead in {wins} of {len(pairs)} seeds"


def growth_observation(results: list[dict]) -> str:
    """Vanishing or unstable? Models that learned but whose first layer ends with larger gradients than
    the output layer, and those whose validation accuracy fell from one epoch to the next."""
    learned = [r for r in summarize(results) if r["test_accuracy"][0] >= AT_CHANCE_BELOW]
    grew = [f"{_name(r)} ({r['gradient_ratio_init']:.2e} at initialization, {r['gradient_ratio_trained']:.2e} "
            "after training)" for r in learned if r["gradient_ratio_trained"] > max(1.0, r["gradient_ratio_init"])]
    fell = []
    for row in learned:
        runs = _runs(results, row["depth"], row["activation"])
        drops = [r for r in runs if any(b["val_accuracy"] < a["val_accuracy"]
                                        for a, b in zip(r["history"], r["history"][1:], strict=False))]
        if drops:
            fell.append(f"{_name(row)} ({len(drops)} of {len(runs)})")
    return ("Ratio above 1 after training (the first hidden layer's largest gradient exceeds the output "
            f"layer's; median over seeds): {', '.join(grew) or 'none'}. Validation accuracy fell from one "
            f"epoch to the next (runs of the model's seeds): {', '.join(fell) or 'none'}.")


def spread_observation(results: list[dict]) -> str:
    """Which model's score depends most on the draw: one seed's number is not its score."""
    spread = [r for r in summarize(results) if not math.isnan(r["test_accuracy"][1])]
    if not spread:
        return "Spread over seeds: not measured (one seed; `--seeds 3` trains each model three times)."
    widest = max(spread, key=lambda r: r["test_accuracy"][1])
    per_seed = ", ".join(f"{a:.4f}" for a in widest["test_accuracy_per_seed"])
    return (f"Spread over seeds: the largest sd of test accuracy is {_name(widest)}'s, "
            f"{widest['test_accuracy'][1]:.4f} (per seed {per_seed}).")
