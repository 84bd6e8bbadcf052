"""The KerasTuner search for the emotion CNN: the search itself (``run_search``), a wall-clock budget,
trials trained by our Trainer, a seed-spread measurement, and the trials table.

Each trial is one ``Trainer.fit`` of the task (``TrainerTuner.run_trial`` overrides KerasTuner's),
so it gets the final training's augmentation, class weights, TensorBoard logging and checkpoints,
in ``<run>/search/trials/<id>/``. The budget (``--tune-minutes``) is kept in ``budget.json`` and
survives ``--resume``: no trial starts once it is spent, and a running trial stops at the end of an
epoch through the Trainer's ``should_stop`` and is kept with its best epoch. The search folder is
reloaded (``overwrite=False``), so rerunning the same command skips finished trials; a folder made
for another search space is refused.

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

import keras
import keras_tuner

from callbacks.callback import Callback
from common.errors import UserError
from common.files import write_atomic
from tasks.emotion.config import TunerConfig
from tasks.emotion.model import search_space_fingerprint


# --- the search -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchResult:
    """What a finished search hands back: its pick, its trials best first and its signal."""

    hyperparameters: keras_tuner.HyperParameters
    rows: list[dict]
    summary: dict


def search_plan(config: TunerConfig, tune_faces: int, epochs: int) -> str:
    """What ``fit emotion --tune`` will do, said before it starts."""
    budget = f"a {config.minutes:g}-minute budget" if config.minutes is not None else "no time budget"
    return (f"emotion --tune: 1) search with {budget}: up to {config.max_trials} {config.tuner} trials of "
            f"{_count(config.epochs, 'epoch')} on {tune_faces:,} faces, and {_count(config.seed_repeats, 'more seed')} "
            f"of the default network; 2) the pick trained for {_count(epochs, 'epoch')} on every Training face (its "
            "time is said once a trial epoch is measured); 3) PrivateTest and the export. --resume continues any "
            "stage.")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def run_search(task, trainer) -> SearchResult | None:
    """Runs ``task``'s search in ``<run>/search``; None on a distributed worker (its job ends there)."""
    import numpy as np

    config = task.config.tuner_config(trainer.config.seed)
    role = distributed_role()
    search_dir = trainer.resolve_run_dir(task) / "search"
    hypermodel = task.hypermodel()
    check_search_folder(search_dir, {"space": search_space_fingerprint(hypermodel), "tuner": config.tuner,
                                     "epochs": config.epochs, "tune_faces": task.config.tune_faces})
    budget = SearchBudget(search_dir / "budget.json", config.minutes)
    full_epoch = len(task.split("train")[1]) / max(1, task.config.tune_faces)
    runner = TrialRunner(task, trainer, budget, full_epoch_ratio=full_epoch)
    keras.utils.set_random_seed(trainer.config.seed)
    tuner = make_tuner(hypermodel, config, search_dir.parent, runner, budget, measure_seeds=role == "single")
    tuner.search()
    budget.save()
    if role == "worker":
        return None
    labels = task.split("val")[1]
    result = tuner.result(search_dir, chance=float(np.bincount(labels).max() / len(labels)),
                          extra={"run": search_dir.parent.name, "tuner": config.tuner, "minutes": config.minutes,
                                 "spent_minutes": round(budget.spent_seconds / 60, 1), "epochs": config.epochs,
                                 "tune_faces": task.config.tune_faces})
    write_atomic(search_dir / "signal.json", json.dumps(result.summary, indent=2))
    from rich.console import Console

    console = Console()
    # Without a terminal rich assumes 80 columns and truncates the hyperparameter names.
    (console if console.is_terminal else Console(width=200)).print(trials_table(result.rows))
    print(signal_line(result.summary), flush=True)
    keras.backend.clear_session()
    return result


class TrialRunner:
    """Trains one configuration: the task's own fit (crops, flips, framing, schedule, TensorBoard,
    checkpoints) on the tuning subset, in ``<run>/search/<name>``; returns its best PublicTest accuracy.

    An interrupted trial resumes from its checkpoints; the budget stops it at an epoch end.
    """

    def __init__(self, task, trainer, budget: SearchBudget, full_epoch_ratio: float = 1.0) -> None:
        self.task, self.trainer, self.budget = task, trainer, budget
        self.full_epoch_ratio = full_epoch_ratio  # a full-data epoch over a trial epoch, for the plan's estimate
        self.estimated = False

    def __call__(self, hp, name: str, epochs: int, seed: int) -> float | None:
        keras.backend.clear_session()
        trial = self.task.trial(hp)
        child = self.trainer.spawn(self.task, f"search/{name}", seed=seed, max_epochs=epochs, resume=True)
        monitor = TrialMonitor(f"search/{name}", self.budget)
        child.callbacks.append(monitor)
        if not self.estimated:
            epochs = self.trainer.config.effective.max_epochs
            child.callbacks.append(FullScheduleEstimate(self.full_epoch_ratio, epochs))
            self.estimated = True
        child.fit(trial)
        return monitor.best


def distributed_role() -> str:
    """``"single"``, ``"chief"`` or ``"worker"`` from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise UserError(f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} is not; distributed search "
                        "needs all three, e.g. KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_PORT=8000")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


# --- the budget -----------------------------------------------------------------------------------
class SearchBudget:
    """Wall-clock minutes for a whole search, counted from this process's start plus what earlier
    runs of the same search spent (``budget.json``, rewritten at every epoch end)."""

    clock = staticmethod(time.monotonic)

    def __init__(self, path: Path, minutes: float | None) -> None:
        self.path = Path(path)
        self.minutes = minutes
        self._spent_before = json.loads(self.path.read_text())["spent_seconds"] if self.path.exists() else 0.0
        self._started = self.clock()

    @property
    def spent_seconds(self) -> float:
        return self._spent_before + self.clock() - self._started

    @property
    def exhausted(self) -> bool:
        return self.minutes is not None and self.spent_seconds >= self.minutes * 60

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"minutes": self.minutes, "spent_seconds": round(self.spent_seconds, 1)}))

    def describe(self) -> str:
        spent = self.spent_seconds / 60
        return f"{spent:.1f} of {self.minutes:g} min" if self.minutes is not None else f"{spent:.1f} min"


class TrialMonitor(Callback):
    """One trial's best objective, one line per epoch, and the budget's stop at an epoch end.

    Its state (the best score) travels in the trial's checkpoints, so a resumed trial keeps it.
    """

    def __init__(self, name: str, budget: SearchBudget, objective: str = "val_accuracy") -> None:
        self.name, self.budget, self.objective = name, budget, objective
        self.best: float | None = None
        self.epochs = 0
        self.seconds = 0.0
        self._started = time.monotonic()

    def on_train_epoch_end(self, trainer, task) -> None:
        score = trainer.metrics.get(self.objective)
        if score is not None and (self.best is None or score > self.best):
            self.best = score
        self.epochs = trainer.current_epoch + 1
        self.seconds += time.monotonic() - self._started
        self._started = time.monotonic()
        self.budget.save()
        shown = "-" if score is None else f"{score:.4f}"
        print(f"{self.name}: epoch {self.epochs}/{trainer.config.effective.max_epochs} {self.objective} {shown} "
              f"(search {self.budget.describe()})", flush=True)
        if self.budget.exhausted:
            print(f"{self.name}: the search budget is spent; this trial ends here and is kept", flush=True)
            trainer.should_stop = True

    def on_fit_end(self, trainer, task) -> None:
        if trainer.run_dir is not None:
            write_atomic(trainer.run_dir / "timing.json", json.dumps(self.state_dict()))

    def state_dict(self) -> dict:
        return {"best": self.best, "epochs": self.epochs, "seconds": round(self.seconds, 1)}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.epochs, self.seconds = state.get("best"), state.get("epochs", 0), state.get("seconds", 0.0)


class FullScheduleEstimate(Callback):
    """Says, from a trial's second epoch (the first also traces the step), about how long the pick's
    full schedule will take: that epoch's time scaled from the tuning subset to every Training face."""

    def __init__(self, full_epoch_ratio: float, epochs: int) -> None:
        self.full_epoch_ratio, self.epochs = full_epoch_ratio, epochs
        self._started = 0.0

    def on_train_epoch_start(self, trainer, task) -> None:
        self._started = time.monotonic()

    def on_train_epoch_end(self, trainer, task) -> None:
        if trainer.current_epoch + 1 == min(2, trainer.config.effective.max_epochs):
            epoch = (time.monotonic() - self._started) * self.full_epoch_ratio
            takes = "take" if self.epochs != 1 else "takes"
            print(f"estimate: the pick's {_count(self.epochs, 'epoch')} on every Training face {takes} about "
                  f"{epoch * self.epochs / 60:.0f} min ({epoch:.0f} s an epoch, scaled from this trial's); "
                  "--max-epochs N shortens them", flush=True)


# --- the tuner ------------------------------------------------------------------------------------
class EmotionTuner(keras_tuner.Tuner):
    """KerasTuner's documented seam for "train a trial my way": ``run_trial`` trains through the
    Trainer and returns the objective. It owns the search's results (``result``); once its first
    trial (the default network) has ended it measures the seed spread of that network."""

    def __init__(self, train_trial, config: TunerConfig, measure_seeds: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train_trial, self.config, self.measure_seeds = train_trial, config, measure_seeds
        self.seed_scores: dict = {}
        self.default_values = {}

    def on_search_begin(self) -> None:
        super().on_search_begin()
        default = keras_tuner.HyperParameters()
        self.hypermodel.build(default)
        self.default_hp, self.default_values = default, dict(default.values)
        # A distributed worker's oracle is a client without the trials: only a single process measures seeds.
        if self.measure_seeds and self.oracle.trials:  # a resumed search: the first trial has ended before
            self._measure_seeds()

    def on_trial_end(self, trial) -> None:
        super().on_trial_end(trial)
        if self.measure_seeds and len(self.oracle.trials) == 1:
            self._measure_seeds()

    def _measure_seeds(self) -> None:
        # After the first trial, so a budget always buys a trial first.
        self.seed_scores = measure_seed_spread(self.train_trial, self.default_hp, self.config,
                                               Path(self.project_dir), self.oracle.budget)

    def run_trial(self, trial, *args, **kwargs) -> dict:
        values = trial.hyperparameters.values
        # Hyperband's later rounds retrain from scratch for their epochs (no warm start).
        epochs = int(values.get("tuner/epochs", self.config.epochs))
        score = self.train_trial(trial.hyperparameters, f"trials/{trial.trial_id}", epochs, self.config.seed)
        if score is None:
            raise keras_tuner.errors.FailedTrialError(f"trial {trial.trial_id} finished no epoch")
        return {self.config.objective: score}

    def result(self, search_dir: Path, chance: float, extra: dict | None = None) -> SearchResult:
        rows = top_trials(self, search_dir)
        if not rows:
            raise UserError(f"the search in {search_dir} finished no trial; see the errors above")
        summary = {**(extra or {}), **search_signal(rows, self.seed_scores, self.default_values, chance)}
        return SearchResult(self.get_best_hyperparameters(1)[0], rows, summary)


class _Budgeted:
    """An oracle that hands out no trial once the budget is spent and (random and Bayesian search)
    starts from the default configuration, so the search table shows it."""

    def __init__(self, *args, budget: SearchBudget | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget

    def populate_space(self, trial_id):
        if self.budget is not None and self.budget.exhausted:
            return {"status": "STOPPED", "values": None}
        if not self.trials and not isinstance(self, keras_tuner.oracles.HyperbandOracle):
            return {"status": "RUNNING", "values": self.get_space().values}
        return super().populate_space(trial_id)


class BudgetedRandomSearch(_Budgeted, keras_tuner.oracles.RandomSearchOracle):
    pass


class BudgetedBayesianOptimization(_Budgeted, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class BudgetedHyperband(_Budgeted, keras_tuner.oracles.HyperbandOracle):
    pass


def make_tuner(hypermodel, config: TunerConfig, directory: Path, train_trial=None, budget: SearchBudget | None = None,
               measure_seeds: bool = False) -> EmotionTuner:
    """Builds (or reloads, when ``directory/search`` holds a search) a tuner whose trials call ``train_trial``.

    ``train_trial(hyperparameters, name, epochs, seed)`` trains one configuration and returns its
    best objective value; ``name`` is the trial's folder under ``directory/search``.
    """
    objective = keras_tuner.Objective(config.objective, "max")
    if config.tuner == "hyperband":
        oracle = BudgetedHyperband(objective, max_epochs=config.epochs, factor=config.factor, seed=config.seed,
                                   budget=budget)
    elif config.tuner == "bayesian":
        _require_bayesian_dependencies()
        oracle = BudgetedBayesianOptimization(objective, max_trials=config.max_trials, seed=config.seed,
                                              budget=budget)
    else:
        oracle = BudgetedRandomSearch(objective, max_trials=config.max_trials, seed=config.seed, budget=budget)
    return EmotionTuner(train_trial, config, measure_seeds, oracle=oracle, hypermodel=hypermodel,
                        directory=str(directory), project_name="search", overwrite=False)


def _require_bayesian_dependencies() -> None:
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as error:
        raise UserError(f"--tuner bayesian needs scipy and scikit-learn ({error.name} is missing); "
                        "install them with `pip install 'keras-tuner[bayesian]'` or use --tuner random") from None


def check_search_folder(search_dir: Path, fingerprint: dict) -> None:
    """Refuses a search folder made for another search space or fidelity; records it in a new one.

    KerasTuner would reload such a folder and mix trials of two different questions.
    """
    path = search_dir / "space.json"
    if path.exists():
        saved = json.loads(path.read_text())
    elif (search_dir / "oracle.json").exists():
        saved = {}  # made before search spaces were recorded: another space by definition
    else:
        search_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(fingerprint, indent=2, sort_keys=True, default=str))
        return
    fingerprint = json.loads(json.dumps(fingerprint, default=str))
    if saved != fingerprint:
        changed = sorted(k for k in {**saved.get("space", {}), **fingerprint["space"]}
                         if saved.get("space", {}).get(k) != fingerprint["space"].get(k))
        changed += sorted(k for k in fingerprint if k != "space" and saved.get(k) != fingerprint[k])
        raise UserError(f"{search_dir} holds a search over another search space (differs in "
                        f"{', '.join(changed) or 'everything'}); start a new search with --run-name NAME "
                        "or remove that folder")


# --- the signal: seed spread against trial spread ------------------------------------------------
def measure_seed_spread(train_trial, default_hp, config: TunerConfig, search_dir: Path,
                        budget: SearchBudget) -> dict:
    """Trains the default configuration with ``config.seed_repeats`` other seeds at trial fidelity.

    Results go to ``seeds.json`` as they finish (a resumed search skips them); the budget counts them.
    """
    path = search_dir / "seeds.json"
    scores = json.loads(path.read_text()) if path.exists() else {}
    for seed in range(config.seed + 1, config.seed + 1 + config.seed_repeats):
        if str(seed) in scores or budget.exhausted:
            continue
        score = train_trial(default_hp, f"seeds/{seed}", config.epochs, seed)
        if score is not None:
            scores[str(seed)] = score
            write_atomic(path, json.dumps(scores, indent=2))
    return scores


# The best-worst trial spread must be at least this many seed spreads for the search to rank.
RANKING_MARGIN = 2.0


def search_signal(rows: list[dict], seed_scores: dict, default_values: dict, chance: float) -> dict:
    """Best and worst trial, their spread, and the seed-to-seed spread of the default configuration."""
    finished = [r for r in rows if r["score"] is not None]
    signal = {"trials": len(finished), "majority_class_rate": round(chance, 4)}
    if finished:
        best, worst = max(finished, key=lambda r: r["score"]), min(finished, key=lambda r: r["score"])
        signal.update(best_trial=best["trial"], best=round(best["score"], 4), worst_trial=worst["trial"],
                      worst=round(worst["score"], 4), trial_spread=round(best["score"] - worst["score"], 4))
    default_runs = [r["score"] for r in finished if r["hyperparameters"] == default_values]
    seeds = [*default_runs[:1], *seed_scores.values()]
    signal["seed_scores"] = [round(s, 4) for s in seeds]
    if len(seeds) > 1:
        signal["seed_spread"] = round(max(seeds) - min(seeds), 4)
        if "trial_spread" in signal:
            # A spread within twice the seed-to-seed noise could be two draws of one network.
            signal["ranks"] = bool(signal["trial_spread"] >= RANKING_MARGIN * signal["seed_spread"])
    return signal


def signal_line(signal: dict) -> str:
    parts = [f"{signal['trials']} trials"]
    if "best" in signal:
        parts.append(f"best {signal['best']:.4f} (trial {signal['best_trial']}), worst {signal['worst']:.4f} "
                     f"(trial {signal['worst_trial']}), spread {signal['trial_spread']:.4f}")
    if "seed_spread" in signal:
        parts.append(f"seed spread of the default configuration {signal['seed_spread']:.4f} over "
                     f"{len(signal['seed_scores'])} seeds ({', '.join(f'{s:.4f}' for s in signal['seed_scores'])})")
    parts.append(f"majority-class rate {signal['majority_class_rate']:.4f}")
    if "ranks" in signal:
        verdict = "ranks" if signal["ranks"] else "does not rank: the trials differ by no more than noise"
        if signal["seed_spread"]:
            ratio = signal["trial_spread"] / signal["seed_spread"]
            parts.append(f"trial spread {ratio:.1f}x the seed spread (needs {RANKING_MARGIN:g}x): {verdict}")
        else:  # every seed scored the same: no noise was measured to compare with
            parts.append(f"trial spread {signal['trial_spread']:.4f} against no seed spread: {verdict}")
    return "search: " + "; ".join(parts)


def top_trials(tuner, search_dir: Path | None = None, count: int | None = None) -> list[dict]:
    """Finished trials as plain dicts, best first: id, score, epochs and seconds trained, hyperparameters."""
    trials = tuner.oracle.get_best_trials(count or len(tuner.oracle.trials))
    rows = []
    for trial in trials:
        values = dict(trial.hyperparameters.values)
        timing = _trial_timing(search_dir, trial.trial_id)
        rows.append({
            "trial": trial.trial_id,
            "score": trial.score,
            "epochs": timing.get("epochs", values.get("tuner/epochs")),
            "seconds": timing.get("seconds"),
            "hyperparameters": {k: v for k, v in values.items() if not k.startswith("tuner/")},
        })
    return rows


def _trial_timing(search_dir: Path | None, trial_id: str) -> dict:
    path = None if search_dir is None else Path(search_dir) / "trials" / trial_id / "timing.json"
    return json.loads(path.read_text()) if path is not None and path.exists() else {}


def trials_table(rows: list[dict], objective: str = "val_accuracy"):
    """A rich Table of the trials, best first."""
    from rich.table import Table

    names = sorted({k for row in rows for k in row["hyperparameters"]})
    table = Table(title=f"Search trials by PublicTest {objective}, best first")
    for column in ("trial", objective, "epochs", "seconds", *names):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*_cells(row, names))
    return table


def trials_markdown(rows: list[dict], objective: str = "val_accuracy") -> str:
    names = sorted({k for row in rows for k in row["hyperparameters"]})
    lines = [f"| trial | {objective} | epochs | seconds | " + " | ".join(names) + " |",
             "|---" * (4 + len(names)) + "|"]
    lines += ["| " + " | ".join(_cells(row, names)) + " |" for row in rows]
    return "\n".join(lines)


def _cells(row: dict, names: list[str]) -> list[str]:
    score = "-" if row["score"] is None else f"{row['score']:.4f}"
    seconds = "-" if row.get("seconds") is None else f"{row['seconds']:.0f}"
    return [row["trial"], score, str(row["epochs"] or "-"), seconds,
            *(_fmt(row["hyperparameters"].get(n)) for n in names)]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)
