"""The KerasTuner architecture search for the emotion CNN: tuner choice, resumable search, top-trials table.

Trials train with KerasTuner's own loop (``model.fit``) on the augmented, class-weighted Training
split and are scored on PublicTest. The search folder lives in the run folder and KerasTuner
reloads it (``overwrite=False``), so rerunning the same command skips finished trials.

Distributed search is KerasTuner's chief/worker mode, driven by its environment variables: the
chief (``KERASTUNER_TUNER_ID=chief``) serves the oracle on ``KERASTUNER_ORACLE_IP``:
``KERASTUNER_ORACLE_PORT`` and, when every trial is done, retrains the best configuration; each
worker (``KERASTUNER_TUNER_ID=tuner0``, ``tuner1``, ...) runs trials and exits.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import UserError
from trainer.files import write_atomic

TUNERS = ("hyperband", "bayesian", "random")


@dataclass(frozen=True)
class TunerConfig:
    tuner: str = "hyperband"
    # Bayesian and random search: trials to run. Hyperband sizes itself from max_epochs and factor.
    max_trials: int = 8
    # Epochs per trial (Hyperband: the most any trial gets); a short look is enough to rank architectures.
    epochs: int = 6
    # Hyperband keeps the best 1/factor of each round.
    factor: int = 3
    seed: int = 42
    objective: str = "val_accuracy"

    def __post_init__(self) -> None:
        if self.tuner not in TUNERS:
            raise UserError(f"tuner {self.tuner!r} is unknown; use one of {', '.join(TUNERS)}")
        if self.max_trials < 1:
            raise UserError(f"--max-trials must be at least 1, got {self.max_trials}")
        if self.epochs < 1:
            raise UserError(f"--tune-epochs must be at least 1, got {self.epochs}")


def distributed_role() -> str:
    """``"single"``, ``"chief"`` or ``"worker"`` from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise UserError(f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} is not; distributed search "
                        "needs all three, e.g. KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_PORT=8000")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def make_tuner(hypermodel, config: TunerConfig, directory: Path):
    """Builds (or reloads, when ``directory/search`` holds a search) the configured tuner."""
    import keras_tuner

    common = dict(objective=keras_tuner.Objective(config.objective, "max"), seed=config.seed,
                  directory=str(directory), project_name="search", overwrite=False)
    if config.tuner == "hyperband":
        return keras_tuner.Hyperband(hypermodel, max_epochs=config.epochs, factor=config.factor, **common)
    if config.tuner == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=config.max_trials, **common)
    _require_bayesian_dependencies()
    return keras_tuner.BayesianOptimization(hypermodel, max_trials=config.max_trials, **common)


def _require_bayesian_dependencies() -> None:
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as error:
        raise UserError(f"--tuner bayesian needs scipy and scikit-learn ({error.name} is missing); "
                        "install them with `pip install 'keras-tuner[bayesian]'` or use --tuner hyperband") from None


def run_search(tuner, config: TunerConfig, train, val, tensorboard_dir: Path) -> None:
    """Runs (or finishes) the search. Each trial logs to ``tensorboard_dir/<trial>/`` with its HParams."""
    TensorBoard = _timed_tensorboard()
    # KerasTuner gives every trial its own copy of this callback, its own log folder and an HParams entry.
    tensorboard = TensorBoard(log_dir=str(tensorboard_dir), write_graph=False, profile_batch=0)
    epochs = {} if config.tuner == "hyperband" else {"epochs": config.epochs}
    # The training data is a tf.data pipeline that reshuffles itself each epoch.
    tuner.search(train, validation_data=val, callbacks=[tensorboard], verbose=2, shuffle=False, **epochs)


def _timed_tensorboard():
    import keras

    class TensorBoard(keras.callbacks.TensorBoard):
        """Keras's TensorBoard callback that also writes ``timing.json`` (seconds, epochs) per trial.

        KerasTuner recognises the callback by its class name and points it at the trial's folder.
        """

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self._started, self._epochs = time.time(), 0

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            self._epochs += 1

        def on_train_end(self, logs=None):
            super().on_train_end(logs)
            timing = {"seconds": round(time.time() - self._started, 2), "epochs": self._epochs}
            write_atomic(Path(self.log_dir) / "timing.json", json.dumps(timing))

    return TensorBoard


def top_trials(tuner, count: int = 5) -> list[dict]:
    """The best finished trials as plain dicts: id, score, epochs trained and hyperparameter values."""
    rows = []
    for trial in tuner.oracle.get_best_trials(count):
        values = dict(trial.hyperparameters.values)
        rows.append({
            "trial": trial.trial_id,
            "score": trial.score,
            "epochs": values.pop("tuner/epochs", None),
            "hyperparameters": {k: v for k, v in values.items() if not k.startswith("tuner/")},
        })
    return rows


def trials_table(rows: list[dict], objective: str = "val_accuracy"):
    """A rich Table of the top trials, best first."""
    from rich.table import Table

    names = sorted({k for row in rows for k in row["hyperparameters"]})
    table = Table(title=f"Top {len(rows)} trials by PublicTest {objective}")
    for column in ("trial", objective, "epochs", *names):
        table.add_column(column, justify="right")
    for row in rows:
        score = "-" if row["score"] is None else f"{row['score']:.4f}"
        table.add_row(row["trial"], score, str(row["epochs"] or "-"),
                      *(_fmt(row["hyperparameters"].get(n)) for n in names))
    return table


def trials_markdown(rows: list[dict], objective: str = "val_accuracy") -> str:
    names = sorted({k for row in rows for k in row["hyperparameters"]})
    lines = [f"| trial | {objective} | epochs | " + " | ".join(names) + " |",
             "|---" * (3 + len(names)) + "|"]
    for row in rows:
        score = "-" if row["score"] is None else f"{row['score']:.4f}"
        cells = [row["trial"], score, str(row["epochs"] or "-"), *(_fmt(row["hyperparameters"].get(n)) for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)
