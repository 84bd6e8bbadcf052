"""trainlab's command line: thin typer commands over the trainer, tasks and callbacks.

TensorFlow is imported inside the commands, so ``--help`` and ``tasks`` answer at once.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli_config import SaveConfig, save_config
from cli_help import HelpCommand, HelpGroup
from cli_options import TASK_COMMAND, parameter, parse_task_command, quiet_tensorflow_start
from cli_options import resolved_options_yaml as _options_yaml
from common.errors import UserError
from live.config import LiveConfig
from trainer.options import options_of
from trainer.shipped import find_model
from trainer.validation import Given, missing_model_error, other_task_model_error, typed_values

app = typer.Typer(
    cls=HelpGroup,
    help="trainlab: a Lightning-style trainer for Keras 3 with TensorBoard at its heart.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
LogDir = Annotated[Path, typer.Option(help="TensorBoard root; runs go to <logdir>/<task>/<run-name>/.")]

def _quiet_tensorflow() -> None:
    """Imports TensorFlow without its start-up lines on stderr (absl logs them before any setting applies)."""
    import warnings

    # numpy 2 makes Keras warn about the __array__ copy keyword on every conversion.
    warnings.filterwarnings("ignore", message=".*__array__.*copy keyword.*", category=DeprecationWarning)
    with quiet_tensorflow_start():
        import tensorflow as tf

        tf.config.list_physical_devices()
        # Studies build one compiled step per model, which TensorFlow's retracing warning misreads.
        tf.get_logger().setLevel("ERROR")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


def _run(action):
    """Runs a library call, turning a user's mistake into one line and a non-zero exit."""

    try:
        return action()
    except UserError as error:
        raise _fail(str(error), code=2) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; checkpoints written so far are intact (resume with --resume)", code=130) from None


@app.command(cls=HelpCommand)
def tasks() -> None:
    """List the built-in and installed tasks, one line each."""

    def action():
        from tasks import registry

        specs = registry()
        width = max(map(len, specs))
        for spec in specs.values():
            typer.echo(f"{spec.name:<{width}}  {spec.summary}")

    _run(action)


@app.command(**TASK_COMMAND)
def fit(ctx: typer.Context) -> None:
    """Train TASK (a name from `tasks`, or module:Class) through the Trainer; `fit TASK --help` lists its options."""
    parsed = _run(lambda: parse_task_command(ctx, "fit"))
    _quiet_tensorflow()

    def action():
        from tasks import build_task
        from trainer import Trainer, TrainerConfig

        task = build_task(parsed.spec, parsed.task, parsed.own.get("data_dir"))
        config = TrainerConfig(**{"max_epochs": task.default_epochs, **parsed.trainer})
        if config.seeds > 1 and not task.runs_per_seed:
            raise UserError(f"--seeds {config.seeds}: task {task.name} trains one model per run; "
                            f"repeat it with --seed {config.seed}, --seed {config.seed + 1}, ... instead")
        if parsed.print_config:
            typer.echo(_options_yaml(parsed, config, task), nl=False)
            return
        own = parsed.own
        checkpointing = _model_checkpoint(config, own.get("save_top_k"), own.get("monitor", "val_loss"),
                                          own.get("monitor_mode", "auto"))
        trainer = Trainer(config, callbacks=[*_default_callbacks(own.get("patience")), *checkpointing],
                          exclusive=True)
        folder = trainer.resolve_run_dir(task)
        trainer.callbacks.append(SaveConfig(folder, _options_yaml(parsed, config, task, folder)))
        task.run(trainer)
        if trainer.stopped_early:
            typer.echo(f"stopped: {trainer.stop_reason}")
        if trainer.profiler.enabled:
            from trainer.profiler import profile_table

            typer.echo(profile_table(trainer.profiler.summary(), trainer.fit_seconds))
        typer.echo(f"run folder: {trainer.run_dir}")

    _run(action)


def _model_checkpoint(config, save_top_k: int | None, monitor: str, mode: str) -> list:
    """A ModelCheckpoint when asked for (--save-top-k), or under weight averaging to keep the averaged last weights."""
    from callbacks import ModelCheckpoint

    if save_top_k is None and config.weight_averaging == "none":
        return []
    return [ModelCheckpoint(monitor=monitor, mode=mode, save_top_k=save_top_k or 0, save_last=True)]


def _default_callbacks(patience: int | None) -> list:
    from callbacks import EarlyStopping, LearningRateMonitor, TerminateOnNaN

    callbacks = [LearningRateMonitor(), TerminateOnNaN()]
    if patience is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=patience))
    return callbacks


@app.command(**TASK_COMMAND)
def test(ctx: typer.Context) -> None:
    """Evaluate TASK on its test split and write the run's metrics and report; `test TASK --help` lists its options."""
    parsed = _run(lambda: parse_task_command(ctx, "test"))
    _run(lambda: _check_model_exists(parsed.task.get("model"), parsed.spec.name))
    _quiet_tensorflow()

    def action():
        from tasks import build_task
        from trainer import Trainer, TrainerConfig

        task = build_task(parsed.spec, parsed.task, parsed.own.get("data_dir"))
        config = TrainerConfig(**parsed.trainer)
        if parsed.print_config:
            typer.echo(_options_yaml(parsed, config, task), nl=False)
            return
        if parsed.own.get("checkpoint") is None and not task.loads_trained_model:
            raise UserError(_nothing_to_test(task, config))
        trainer = Trainer(config, exclusive=True)
        folder = trainer.resolve_run_dir(task)
        trainer.callbacks.append(SaveConfig(folder, _options_yaml(parsed, config, task, folder)))
        results = trainer.test(task, checkpoint=parsed.own.get("checkpoint"), which=parsed.own.get("which", "last"))
        for name, value in results.items():
            typer.echo(f"test_{name}: {value:.4f}")
        typer.echo(f"run folder: {trainer.run_dir}")

    _run(action)


def _check_model_exists(model: str | Path | None, task: str) -> None:
    """A --model file that is not there names the task's shipped models, before TensorFlow loads."""
    if model is not None and not find_model(model).exists():
        raise UserError(missing_model_error(model, task))


def _check_emotion_model(model: Path) -> None:
    """live classifies emotions: a model that is not there, or that another task made, names the emotion models."""
    _check_model_exists(model, "emotion")
    wrong = other_task_model_error(model, "emotion")
    if wrong:
        raise UserError(wrong)


def _nothing_to_test(task, config) -> str:
    """`test` of a task that trains its own model, without weights: what to pass instead of an untrained score."""
    model = any(f.name == "model" for f in dataclasses.fields(task.Config)) if task.Config else False
    other = " or --model FILE.h5 (an exported model)" if model else ""
    return (f"test {task.name}: nothing trained to evaluate (the task builds a new, untrained model); pass "
            f"--checkpoint {Path(config.logdir) / task.name}/<run> (a run folder of `fit {task.name}`){other}")


@app.command("lr-find", **TASK_COMMAND)
def lr_find(ctx: typer.Context) -> None:
    """Learning-rate range test of TASK: an exponential sweep, a suggested rate, the curve as PNG and TensorBoard image."""
    parsed = _run(lambda: parse_task_command(ctx, "lr-find"))
    _quiet_tensorflow()

    def action():
        from callbacks.lr_finder import LearningRateFinder
        from tasks import build_task
        from trainer import TrainerConfig
        from trainer.tuning import find_learning_rate

        built = build_task(parsed.spec, parsed.task, parsed.own.get("data_dir"))
        sweep = {k: v for k, v in parsed.own.items() if k != "data_dir"}
        finder = LearningRateFinder(**sweep)
        config = TrainerConfig(**{**parsed.trainer, "progress": "none"})
        if parsed.print_config:
            typer.echo(_options_yaml(parsed, config, built), nl=False)
            return
        trainer, suggestion = find_learning_rate(built, config, finder, exclusive=True)
        save_config(trainer.run_dir, _options_yaml(parsed, config, built, trainer.run_dir))
        ending = "the loss diverged" if finder.stopped_early else "the sweep ended"
        typer.echo(f"swept {len(finder.rates)} steps from {finder.rates[0]:.1e} to {finder.rates[-1]:.1e} ({ending})")
        if suggestion is None:
            typer.echo("no suggestion: too few steps before the loss diverged; lower --max-lr or raise --num-steps")
        else:
            typer.echo(f"suggested learning rate: {suggestion:.2e} (steepest fall of the smoothed loss)")
        typer.echo(f"curve: {trainer.run_dir / 'lr_find.png'} (TensorBoard image lr_find)")

    _run(action)


def live(**values) -> None:
    """Classify faces from a camera or video in real time, in a rich terminal view."""
    given = {name: Given(value) for name, value in values.items() if value is not None}
    config = _run(lambda: LiveConfig(**typed_values(LiveConfig, given, "live")))
    _run(lambda: _check_emotion_model(Path(config.model)))
    _quiet_tensorflow()

    def action():
        from live import run_live

        try:
            summary = run_live(dataclasses.replace(config, model=str(find_model(config.model))))
        except KeyboardInterrupt:  # before the first frame; once frames flow, run_live ends with its summary
            raise _fail("interrupted before the first frame", code=130) from None
        typer.echo(summary)

    _run(action)


# live's flags are LiveConfig's fields, as a task command's are its Config's.
live.__signature__ = inspect.Signature([parameter(o, "Options") for o in options_of(LiveConfig, "live")])
live.__annotations__ = {p.name: p.annotation for p in live.__signature__.parameters.values()}
app.command(cls=HelpCommand)(live)


@app.command(cls=HelpCommand)
def report(logdir: LogDir = Path("logs")) -> None:
    """Gather every run under LOGDIR into LOGDIR/REPORT.md."""

    def action():
        from common.errors import UserError
        from trainer.report import gather_reports

        try:
            path = gather_reports(logdir)
        except FileNotFoundError as error:
            raise UserError(str(error)) from None
        typer.echo(f"wrote {path}")

    _run(action)


if __name__ == "__main__":
    sys.exit(app())
