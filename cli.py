"""trainlab's command line: thin typer commands over the trainer, tasks and callbacks.

TensorFlow is imported inside the commands, so ``--help`` and ``tasks`` answer at once.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tasks import TASKS

app = typer.Typer(
    help="trainlab: a Lightning-style trainer for Keras 3 with TensorBoard at its heart.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

class Strategy(str, Enum):
    default = "default"
    mirrored = "mirrored"
    multi_worker = "multi-worker"


class Progress(str, Enum):
    auto = "auto"
    rich = "rich"
    plain = "plain"
    none = "none"


# Options shared by the commands that mean the same thing in each.
DataDir = Annotated[Path | None, typer.Option(help="Data folder; else $TRAINLAB_DATA, else ~/.keras/datasets.")]
Seed = Annotated[int, typer.Option(help="Seeds Python, NumPy and TensorFlow; the same seed gives the same metrics on CPU.")]
LogDir = Annotated[Path, typer.Option(help="TensorBoard root; runs go to <logdir>/<task>/<run-name>/.")]
RunName = Annotated[str | None, typer.Option(help="Run folder name; default: a timestamp.")]
ProgressOpt = Annotated[Progress, typer.Option(help="Progress display; auto picks rich on a terminal.")]


def _quiet_tensorflow() -> None:
    """Imports TensorFlow without its start-up lines on stderr (absl logs them before any setting applies)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    # numpy 2 makes Keras warn about the __array__ copy keyword on every conversion.
    warnings.filterwarnings("ignore", message=".*__array__.*copy keyword.*", category=DeprecationWarning)
    if os.environ.get("TRAINLAB_VERBOSE_TF"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
        # Studies build one compiled step per model, which TensorFlow's retracing warning misreads.
        tf.get_logger().setLevel("ERROR")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


def _run(action):
    """Runs a library call, turning a user's mistake into one line and a non-zero exit."""
    from trainer.errors import UserError

    try:
        return action()
    except UserError as error:
        raise _fail(str(error), code=2) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; checkpoints written so far are intact (resume with --resume)", code=130) from None


@app.command()
def tasks() -> None:
    """List the tasks, one line each."""
    width = max(map(len, TASKS))
    for spec in TASKS.values():
        typer.echo(f"{spec.name:<{width}}  {spec.summary}")


class DatasetName(str, Enum):
    mnist = "mnist"
    cifar10 = "cifar10"


class TunerName(str, Enum):
    hyperband = "hyperband"
    bayesian = "bayesian"
    random = "random"


class AttackName(str, Enum):
    pgd = "pgd"
    fgsm = "fgsm"


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _fail(f"{option} {text!r} must be comma-separated integers, e.g. {option} 5,20", code=2) from None


def _str_list(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


def _value(option):
    return option.value if isinstance(option, Enum) else option


def _task_options(**options) -> dict:
    """Only the options the user gave: a task rejects any it does not take."""
    return {k: _value(v) for k, v in options.items() if v is not None and v is not False}


DEEP, ADV, ROBUST, EMOTION = "deep-mlp options", "adversarial options", "robust options", "emotion options"


@app.command()
def fit(
    task: Annotated[str, typer.Argument(help=f"The task to train: {', '.join(TASKS)}.")],
    data_dir: DataDir = None,
    seed: Seed = 42,
    max_epochs: Annotated[int | None, typer.Option(help="Epochs to train; default: the task's own.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size; default: the task's own.")] = None,
    limit_train_batches: Annotated[int | None, typer.Option(help="Train on at most N batches per epoch.")] = None,
    limit_val_batches: Annotated[int | None, typer.Option(help="Validate on at most N batches.")] = None,
    fast_dev_run: Annotated[bool, typer.Option(help="One batch, one epoch, no checkpoints: a wiring check.")] = False,
    strategy: Annotated[Strategy, typer.Option(help="tf.distribute strategy; multi-worker reads TF_CONFIG.")] = Strategy.default,
    resume: Annotated[bool, typer.Option(help="Continue the newest run (or --run-name) from its last checkpoint.")] = False,
    patience: Annotated[int | None, typer.Option(help="Early stopping: epochs without val_loss improvement.")] = None,
    log_every_n_steps: Annotated[int, typer.Option(help="Read metrics back every N steps (one host sync each).")] = 50,
    logdir: LogDir = Path("logs"),
    run_name: RunName = None,
    progress: ProgressOpt = Progress.auto,
    depths: Annotated[str | None, typer.Option(help="Hidden-layer counts, e.g. 5,20,40.", rich_help_panel=DEEP)] = None,
    activations: Annotated[str | None, typer.Option(help="e.g. relu,tanh,sigmoid,lecun.", rich_help_panel=DEEP)] = None,
    grad_every: Annotated[int | None, typer.Option(help="Gradient histograms every N steps.", rich_help_panel=DEEP)] = None,
    dataset: Annotated[DatasetName | None, typer.Option(help="mnist or cifar10.", rich_help_panel=ADV)] = None,
    retrain: Annotated[bool, typer.Option(help="Retrain the classifier even if its model file exists.", rich_help_panel=ADV)] = False,
    samples: Annotated[str | None, typer.Option(help="Test-image indices to attack, e.g. 3,2,1.", rich_help_panel=ADV)] = None,
    confidence: Annotated[float | None, typer.Option(help="Target confidence that ends an attack.", rich_help_panel=ADV)] = None,
    max_rounds: Annotated[int | None, typer.Option(help="Alternating rounds per attack at most.", rich_help_panel=ADV)] = None,
    generator_lr: Annotated[float | None, typer.Option(help="Adam rate pulling f toward the image.", rich_help_panel=ADV)] = None,
    composite_lr: Annotated[float | None, typer.Option(help="Adam rate pushing C(f) to the target.", rich_help_panel=ADV)] = None,
    attack: Annotated[AttackName | None, typer.Option(help="Adversarial training attack.", rich_help_panel=ROBUST)] = None,
    epsilon: Annotated[float | None, typer.Option(help="L-infinity budget (default 0.3 MNIST, 8/255 CIFAR-10).", rich_help_panel=ROBUST)] = None,
    tune: Annotated[bool, typer.Option(help="Search the architecture with KerasTuner first.", rich_help_panel=EMOTION)] = False,
    tuner: Annotated[TunerName | None, typer.Option(help="Search algorithm (default hyperband).", rich_help_panel=EMOTION)] = None,
    max_trials: Annotated[int | None, typer.Option(help="Trials for bayesian/random search.", rich_help_panel=EMOTION)] = None,
    tune_epochs: Annotated[int | None, typer.Option(help="Epochs per trial (Hyperband: the most).", rich_help_panel=EMOTION)] = None,
    tune_minutes: Annotated[float | None, typer.Option(help="Wall-clock budget of the whole search, across --resume (default 30).", rich_help_panel=EMOTION)] = None,
    tune_faces: Annotated[int | None, typer.Option(help="Training faces per trial, a fixed stratified subset (default 6000).", rich_help_panel=EMOTION)] = None,
    tune_seeds: Annotated[int | None, typer.Option(help="Extra seeds of the default network, for the seed spread (default 2).", rich_help_panel=EMOTION)] = None,
) -> None:
    """Train TASK through the Trainer, logging to TensorBoard and checkpointing every epoch."""
    options = _task_options(
        batch_size=batch_size, depths=_int_list(depths, "--depths"), activations=_str_list(activations),
        grad_every=grad_every, dataset=dataset, retrain=retrain, samples=_int_list(samples, "--samples"),
        confidence=confidence, max_rounds=max_rounds, generator_lr=generator_lr, composite_lr=composite_lr,
        attack=attack, epsilon=epsilon, tune=tune, tuner=tuner, max_trials=max_trials, tune_epochs=tune_epochs,
        tune_minutes=tune_minutes, tune_faces=tune_faces, tune_seeds=tune_seeds,
    )
    _quiet_tensorflow()

    def action():
        from tasks import build_task
        from trainer import Trainer, TrainerConfig

        built = build_task(task, options, data_dir)
        config = TrainerConfig(
            max_epochs=built.default_epochs if max_epochs is None else max_epochs,
            limit_train_batches=limit_train_batches, limit_val_batches=limit_val_batches,
            fast_dev_run=fast_dev_run, seed=seed, strategy=strategy.value, log_every_n_steps=log_every_n_steps,
            logdir=str(logdir), run_name=run_name, resume=resume, progress=progress.value,
        )
        trainer = Trainer(config, callbacks=_default_callbacks(built, patience))
        built.run(trainer)
        typer.echo(f"run folder: {trainer.run_dir}")

    _run(action)


def _default_callbacks(task, patience: int | None) -> list:
    from callbacks import EarlyStopping, LearningRateMonitor, TerminateOnNaN

    callbacks = [LearningRateMonitor(), TerminateOnNaN(), *task.extra_callbacks()]
    if patience is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=patience))
    return callbacks


@app.command()
def test(
    task: Annotated[str, typer.Argument(help=f"The task to evaluate: {', '.join(TASKS)}.")],
    data_dir: DataDir = None,
    seed: Seed = 42,
    model: Annotated[Path | None, typer.Option(help="An exported model (.h5) to evaluate.")] = None,
    dataset: Annotated[DatasetName | None, typer.Option(help="mnist or cifar10 (adversarial, robust).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="A run folder whose newest checkpoint to load.")] = None,
    logdir: LogDir = Path("logs"),
    run_name: RunName = None,
    progress: ProgressOpt = Progress.auto,
) -> None:
    """Evaluate TASK on its test split and write the run's metrics and report."""
    options = _task_options(model=str(model) if model else None, dataset=dataset)
    _quiet_tensorflow()

    def action():
        from tasks import build_task
        from trainer import Trainer, TrainerConfig

        built = build_task(task, options, data_dir)
        config = TrainerConfig(seed=seed, logdir=str(logdir), run_name=run_name, progress=progress.value)
        trainer = Trainer(config)
        results = trainer.test(built, checkpoint=checkpoint)
        for name, value in results.items():
            typer.echo(f"test_{name}: {value:.4f}")
        typer.echo(f"run folder: {trainer.run_dir}")

    _run(action)


class DetectorName(str, Enum):
    blazeface = "blazeface"
    haar = "haar"


@app.command()
def live(
    camera: Annotated[str, typer.Option(help="A camera index (0), a video file, or a stream URL.")] = "0",
    model: Annotated[Path, typer.Option(help="Emotion model (.h5) with its JSON card beside it.")] = Path("models/emotion.h5"),
    plain: Annotated[bool, typer.Option(help="Print one line per face instead of the live view.")] = False,
    output: Annotated[Path | None, typer.Option(help="Record every prediction to this JSONL file.")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after N frames.")] = None,
    smooth: Annotated[float, typer.Option(help="Per-face smoothing across frames, 0 (off) to <1.")] = 0.6,
    detector: Annotated[DetectorName, typer.Option(help="Face detector: blazeface (TFLite) or haar (OpenCV).")]
    = DetectorName.blazeface,
) -> None:
    """Classify faces from a camera or video in real time, in a rich terminal view."""
    _quiet_tensorflow()

    def action():
        from live import LiveConfig, run_live

        try:
            summary = run_live(LiveConfig(camera=camera, model=str(model), plain=plain,
                                          output=str(output) if output else None, max_frames=max_frames,
                                          smooth=smooth, detector=detector.value))
        except KeyboardInterrupt:  # before the first frame; once frames flow, run_live ends with its summary
            raise _fail("interrupted before the first frame", code=130) from None
        typer.echo(summary)

    _run(action)


@app.command()
def report(logdir: LogDir = Path("logs")) -> None:
    """Gather every run under LOGDIR into LOGDIR/REPORT.md."""

    def action():
        from trainer.errors import UserError
        from trainer.report import gather_reports

        try:
            path = gather_reports(logdir)
        except FileNotFoundError as error:
            raise UserError(str(error)) from None
        typer.echo(f"wrote {path}")

    _run(action)


if __name__ == "__main__":
    sys.exit(app())
