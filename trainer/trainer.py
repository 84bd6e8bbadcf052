"""The Trainer: owns the loop, counters, strategy, checkpoints and logging; knows nothing of tasks."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from callbacks.callback import Callback, KerasCallbackAdapter
from callbacks.model_checkpoint import ModelCheckpoint, saved_weights
from callbacks.progress import PlainProgress, RichProgress, make_progress
from common.errors import UserError
from common.files import DiskFullError, FolderLock, is_disk_full, make_dirs
from trainer.averaging import make_averaging
from trainer.batches import BatchSource
from trainer.budget import TimeBudget
from trainer.checkpoint import CheckpointIO, load_random_state, random_state
from trainer.config import TrainerConfig
from trainer.distribute import StepCompiler, build_model_state, distribute_dataset, is_chief, make_strategy, worker_name
from trainer.logger import NullLogger, TensorBoardLogger
from trainer.optimization import configure_optimizer, keep_outputs_float32, precision_policy
from trainer.profiler import make_profiler
from trainer.report import new_run_dir, write_run_config, write_run_results
from trainer.task import Task


class Trainer:
    """Runs a Task: ``fit``, ``validate``, ``test`` and ``predict``.

    Public state read by callbacks: ``config``, ``current_epoch``, ``global_step``, ``metrics``
    (python floats, refreshed on logged steps and at the end of every pass), ``logger``, ``run_dir``,
    ``strategy``, ``num_train_batches``, ``validated_this_epoch``, ``stopped_early`` and ``stop_reason``
    (whether fit ended before --max-epochs, and why it ended),
    ``profiler``. A callback's one write is ``should_stop = True``.

    A Trainer fits one task (its run folder holds that task's checkpoints); it may then validate,
    test or predict others, each with its own compiled steps. ``spawn`` gives a study one per model.
    ``run_kind`` (fit, test, lr-find) is recorded in the run folder, for ``report`` and ``--resume``.

    ``exclusive`` (the CLI's choice): a new run (no ``resume``) refuses a named run folder that already
    holds a run, so that two runs never mix checkpoints and event files. Either way, a run that fails
    before its first checkpoint or results removes the folders it made.
    """

    def __init__(self, config: TrainerConfig | None = None, callbacks=(), run_dir: str | Path | None = None,
                 exclusive: bool = False) -> None:
        self.config = config or TrainerConfig()
        self.exclusive = exclusive
        self.run_kind: str | None = None
        self.evaluated: str | None = None
        self.callbacks: list[Callback] = [
            c if isinstance(c, Callback) else KerasCallbackAdapter(c) for c in callbacks
        ]
        progress = make_progress(self.config.progress)
        if progress is not None:
            self.callbacks.append(progress)
        self.callbacks = _checkpoints_last(self.callbacks)
        self.current_epoch = 0
        self.global_step = 0
        self.metrics: dict[str, float] = {}
        self.should_stop = False
        self.logger = NullLogger()
        # The run folder shared by all workers; ``run_dir`` is this worker's (the chief's is the same).
        self._run_root: Path | None = Path(run_dir) if run_dir is not None else None
        # A plain --resume that found no run with a checkpoint: the run folder is a new one.
        self._resumes_nothing = False
        self.run_dir: Path | None = None
        self.strategy = None
        self.is_chief = True
        self.num_train_batches: int | None = None
        self.num_train_batches_seen = 0
        self.logged_this_step = False
        self.fit_seconds = 0.0
        self.stop_reason: str | None = None
        self.stopped_early = False  # fit ended before --max-epochs (a callback, a budget): stop_reason says why
        self.validated_this_epoch = False
        self.profiler = make_profiler(self.config.profiler)
        self._averaging = make_averaging(self.config.effective)
        self._budget = TimeBudget(self.config.max_time_seconds, self.config.max_time)
        self._task: Task | None = None
        # The task whose configure_callbacks() are merged in, and those callbacks.
        self._attached: Task | None = None
        self._task_callbacks: list[Callback] = []
        self._fitted: Task | None = None
        self._checkpoint: CheckpointIO | None = None
        self._lock: FolderLock | None = None
        self._made: list[Path] | None = None
        self._steps: dict[str, tf.types.experimental.GenericFunction] = {}
        self._compiler: StepCompiler | None = None
        self._batches = BatchSource(self.config.seed)

    # --- entry points ------------------------------------------------------------------------
    def fit(self, task: Task) -> dict:
        config = self.config.effective
        with self._running(task, "fit"):
            if config.resume:
                self._resume(task)
            self._call("on_fit_start", task)
            self._budget.start()
            started = time.perf_counter()
            while self.current_epoch < config.max_epochs and not self.should_stop:
                self._run_epoch(task)
                self._averaging.on_train_epoch_end(task.model, self.current_epoch)
                # Validation and the epoch-end callbacks (checkpoint files) see the averaged weights.
                with self._averaging.swapped(task.model):
                    self._validate_at_epoch_end(task)
                    self._call("on_train_epoch_end", task)
                self._log_epoch()
                self.current_epoch += 1
                self._save_checkpoint(task)
            self.fit_seconds = time.perf_counter() - started
            self.stopped_early = self.current_epoch < config.max_epochs
            self.stop_reason = self.stop_reason or f"reached --max-epochs {config.max_epochs}"
            self._averaging.finalize(task.model)
            self._call("on_fit_end", task)
            write_run_results(self, task)
        return dict(self.metrics)

    def validate(self, task: Task) -> dict:
        with self._running(task, "validate"):
            return self._run_eval(task, "validation")

    def test(self, task: Task, checkpoint: str | Path | None = None, which: str = "last") -> dict:
        """Evaluates on the task's test split; ``checkpoint`` is a run folder whose ``which`` weights to load:
        ``best`` (ModelCheckpoint's top file) or ``last`` (its last file, else the newest resumable checkpoint)."""
        with self._running(task, "test"):
            if checkpoint is not None:
                self.evaluated = f"{checkpoint} ({which})"
                self._load_weights(task, Path(checkpoint), which)
            elif self.run_kind == "test":
                self.evaluated = task.trained_model_file
            results = self._run_eval(task, "test")
            write_run_results(self, task)
            return results

    def predict(self, task: Task) -> np.ndarray:
        """The model's outputs for every input of ``predict_data``, in order (all replicas' shares joined)."""
        with self._running(task, "predict"):
            self._call("on_predict_epoch_start", task)
            data, count = self._batches_of(task, "predict")
            step = self._step("predict", task.predict_step)
            iterator, outputs = iter(data), []
            for _ in _indices(count):
                try:
                    outputs.append(np.asarray(step(iterator)))
                except (StopIteration, tf.errors.OutOfRangeError):
                    break
            self._call("on_predict_epoch_end", task)
            return np.concatenate(outputs) if outputs else np.empty((0,))

    def resolve_run_dir(self, task: Task) -> Path:
        """This worker's run folder: ``<logdir>/<task>/<run-name>``, plus ``workers/<name>`` off the chief."""
        self._bind(task)
        if self.run_dir is None:
            self._ensure_strategy()
            if self._run_root is None:
                config = self.config.effective
                self._run_root = new_run_dir(Path(config.logdir) / task.name, config.run_name, config.resume,
                                             exclusive=self.exclusive and self.is_chief)
                self._resumes_nothing = config.resume and not config.run_name and not self._run_root.exists()
            self.run_dir = self._run_root
            if not self.is_chief:
                self.run_dir = self._run_root / "workers" / worker_name(self.strategy)
        return self.run_dir

    def spawn(self, task: Task, name: str, **overrides) -> Trainer:
        """A Trainer of this configuration with ``overrides`` (any ``TrainerConfig`` field: ``seed``,
        ``max_epochs``, ...), this strategy and fresh copies of the callbacks, for ``<run>/<name>``.

        The child is built from its final configuration, so what its constructor derives (weight
        averaging's start epoch, the time budget) follows the overrides. Off the chief its folder gets
        the usual ``workers/<worker>`` suffix, so no two workers share one."""
        self.resolve_run_dir(task)
        callbacks = [copy.deepcopy(c) for c in self.callbacks
                     if not isinstance(c, (PlainProgress, RichProgress)) and c not in self._task_callbacks]
        if "seed" in overrides:
            overrides.setdefault("seeds", 1)
        config = dataclasses.replace(self.config, **overrides)
        child = Trainer(config, callbacks, run_dir=self._run_root / name)
        child.strategy, child.is_chief = self.strategy, self.is_chief
        return child

    # --- set-up and tear-down ----------------------------------------------------------------
    @contextlib.contextmanager
    def _running(self, task: Task, stage: str):
        try:
            self._setup(task, stage)
        except BaseException as exception:
            self.logger.close()
            self._unlock_run_dir()
            self._remove_failed_start(exception)
            raise
        failure = None
        try:
            for target in (task, *self.callbacks):
                target.setup(self, task, stage)
            yield
        except BaseException as exception:
            failure = exception
            self._call("on_exception", task, exception)
            if is_disk_full(exception) and not isinstance(exception, DiskFullError):  # e.g. TensorBoard's events
                raise DiskFullError(self.run_dir, None, "free some space, then continue with --resume") from None
            raise
        finally:
            self._call("teardown", task, stage, timed=False)
            self.logger.close()
            self._unlock_run_dir()
            if failure is not None:
                self._remove_failed_start(failure)

    def _setup(self, task: Task, stage: str) -> None:
        self._bind(task)
        if stage == "fit":
            if self._fitted is not None and self._fitted is not task:
                raise UserError(f"this Trainer already fit a {self._fitted.name} model into {self.run_dir}; "
                                "fit each model with its own Trainer (trainer.spawn(task, name) for a study)")
            self._fitted = task
        self._attach_task_callbacks(task)
        self.resolve_run_dir(task)
        self._lock_run_dir()
        self.run_kind = self.run_kind or stage
        if task.model is None:
            import keras

            if self.config.deterministic:
                # Process-wide and permanent: every later op picks its deterministic kernel (or raises).
                tf.config.experimental.enable_op_determinism()
            keras.utils.set_random_seed(self.config.seed)
            with self.strategy.scope(), precision_policy(self.config.precision):
                task.model = task.build_model()
            if self.config.precision != "32":
                keep_outputs_float32(task.model)
        if stage == "fit":
            configure_optimizer(task.model, self.config.effective)
            self._averaging.build(task.model)
        self.logger = TensorBoardLogger(self.run_dir) if self.is_chief else NullLogger()
        if not self.is_chief:
            # A worker writes no logs or reports, but a task may still save its figures here.
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if stage == "fit" or self.run_kind == "test":  # a test run keeps its config.json too (not a fit's test pass)
            write_run_config(self, task)
        if stage == "fit":
            self.stop_reason = None
        self.should_stop = False

    def _attach_task_callbacks(self, task: Task) -> None:
        """Merges ``task.configure_callbacks()`` into the run's callbacks, once per task, as Lightning does:
        a task callback replaces the user's callbacks of its type (or a parent type), a previous task's
        callbacks leave, and checkpoint callbacks run last (they save what the others have seen)."""
        if task is self._attached:
            return
        own = [c if isinstance(c, Callback) else KerasCallbackAdapter(c) for c in task.configure_callbacks()]
        kept = [c for c in self.callbacks if c not in self._task_callbacks and not _replaced_by(c, own)]
        self.callbacks = _checkpoints_last([*kept, *own])
        self._attached, self._task_callbacks = task, own

    def _lock_run_dir(self) -> None:
        """One writer per run folder: a second ``fit`` of the same run refuses while the first runs."""
        if self._made is None:  # the folders this Trainer makes, which a failed start removes again
            self._made = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]
        make_dirs(self.run_dir, "pass a --logdir you can write to")
        if self._lock is None:
            self._lock = FolderLock(self.run_dir)
        holder = self._lock.acquire()
        if holder is not None:
            who = f"process {holder}" if holder else "another process"
            raise UserError(f"the run folder {self.run_dir} is in use by {who}; wait for it to end, "
                            "or pass another --run-name")

    def _unlock_run_dir(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _remove_failed_start(self, error: BaseException) -> None:
        """A run that fails before its first checkpoint or results leaves no folder behind: on a user's
        mistake it removes the run folder this Trainer made (its config and event files say nothing
        yet), on any other failure only a folder that holds no more than the lock."""
        folder, made = self.run_dir, self._made or []
        if folder is None or folder not in made or not folder.is_dir():
            return
        if (folder / "metrics.json").exists() or any((folder / "checkpoints").glob("*")):
            return
        if not isinstance(error, UserError) and any(p.name != ".lock" for p in folder.iterdir()):
            return
        shutil.rmtree(folder, ignore_errors=True)
        for parent in made[made.index(folder) + 1:]:  # the parents it made, deepest first, while empty
            try:
                parent.rmdir()
            except OSError:
                break
        self._made = []

    def _ensure_strategy(self) -> None:
        if self.strategy is None:
            self.strategy = make_strategy(self.config.strategy)
            self.is_chief = is_chief(self.strategy)

    def _bind(self, task: Task) -> None:
        """Checks the task's batch size, and gives a task other than the last its own compiled steps and data."""
        size = getattr(task, "batch_size", None)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UserError(f"batch size {size!r} of task {task.name} is not a positive whole number; "
                            "pass --batch-size 1 or more (e.g. --batch-size 32)")
        if task is not self._task:
            self._task = task
            self._steps, self._compiler = {}, None
            self._batches = BatchSource(self.config.seed)
            self._checkpoint = None

    # --- loops -------------------------------------------------------------------------------
    def _run_epoch(self, task: Task) -> None:
        config = self.config.effective
        data, count = self._batches_of(task, "train")
        self.num_train_batches = count
        step = self._step("train", task.train_step)
        interval = self._val_interval(count)
        self._start_pass(task, "train")
        self._call("on_train_epoch_start", task)
        iterator, outputs, seen = iter(data), {}, 0
        for batch_idx in _indices(count):
            self._call("on_train_batch_start", task, batch_idx)
            try:
                source = self._step_input(iterator)
                with self.profiler.section("train step"):
                    outputs, batch = step(source)
            except (StopIteration, tf.errors.OutOfRangeError):
                break
            seen += 1
            self.global_step += 1
            self.logged_this_step = self.global_step % config.log_every_n_steps == 0
            if self.logged_this_step:
                self._update_metrics("train", outputs)
                self.logger.log_scalars(self._split_metrics("train"), self.global_step, "train", "batch_")
            self._call("on_train_batch_end", task, outputs, batch, batch_idx)
            if interval and seen % interval == 0 and seen != count:
                self._validate_mid_epoch(task)
            if self._budget.expired():
                self._stop(f"--max-time {config.max_time} ran out after step {self.global_step} "
                           f"({self._budget.used:.1f} s)")
            if self.should_stop:
                break
        self.num_train_batches_seen = seen
        self._update_metrics("train", outputs)

    def _run_eval(self, task: Task, split: str) -> dict:
        if (task.val_data() if split == "validation" else task.test_data()) is None:
            return {}
        prefix = "val" if split == "validation" else "test"
        data, count = self._batches_of(task, split)
        step = self._step(split, task.validation_step if split == "validation" else task.test_step)
        self._start_pass(task, split)
        self._call(f"on_{split}_epoch_start", task)
        iterator, outputs = iter(data), {}
        for _ in _indices(count):
            try:
                outputs, _batch = step(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                break
        self._update_metrics(prefix, outputs)
        if split == "validation":  # before the epoch-end hooks, which may monitor them
            self._update_metrics(prefix, task.validation_metrics(self))
        if split == "test":
            self.logger.log_scalars(self._split_metrics(prefix), self.current_epoch, "test")
        self._call(f"on_{split}_epoch_end", task)
        return self._split_metrics(prefix)

    def _validate_at_epoch_end(self, task: Task) -> None:
        """Validates every ``check_val_every_n_epoch``-th epoch, and always on the run's last one."""
        config = self.config.effective
        last = self.should_stop or self.current_epoch + 1 >= config.max_epochs
        self.validated_this_epoch = last or (self.current_epoch + 1) % config.check_val_every_n_epoch == 0
        if self.validated_this_epoch:
            with self.profiler.section("validation"):
                self._run_eval(task, "validation")

    def _validate_mid_epoch(self, task: Task) -> None:
        """A ``--val-check-interval`` validation; the epoch's running train metrics survive it."""
        running = [np.array(v.numpy()) for v in getattr(task.model, "metrics_variables", [])]
        with self._averaging.swapped(task.model), self.profiler.section("validation"):
            self._run_eval(task, "validation")
        for variable, value in zip(getattr(task.model, "metrics_variables", []), running, strict=True):
            variable.assign(value)
        self.logger.log_scalars(self._split_metrics("val"), self.global_step, "validation", "batch_")

    def _val_interval(self, count: int | None) -> int | None:
        value = self.config.effective.val_check_interval
        if value is None or isinstance(value, int):
            return value
        if count is None:
            raise UserError(f"--val-check-interval {value} is a fraction of an epoch, and this task's training "
                            "data has no known length; give a step count instead, e.g. --val-check-interval 100")
        return max(1, round(count * value))

    def _stop(self, reason: str) -> None:
        self.should_stop = True
        self.stop_reason = self.stop_reason or reason

    def _log_epoch(self) -> None:
        self.logger.log_scalars(self._split_metrics("train"), self.current_epoch, "train")
        if self.validated_this_epoch and self._split_metrics("val"):
            self.logger.log_scalars(self._split_metrics("val"), self.current_epoch, "validation")
        self.logger.flush()

    # --- helpers -----------------------------------------------------------------------------
    def _call(self, hook: str, task: Task, *args, timed: bool = True) -> None:
        """The one place hooks are fired: the task first, then callbacks in the order given. Teardown is not
        ``timed``: it comes after metrics.json is written, so --profiler counts, like setup, only the run's hooks."""
        with self.profiler.section("callbacks") if timed else contextlib.nullcontext():
            for target in (task, *self.callbacks):
                getattr(target, hook)(self, task, *args)
                if self.should_stop and self.stop_reason is None:
                    self.stop_reason = f"{type(target).__name__} stopped the run ({hook})"

    def _start_pass(self, task: Task, stage: str) -> None:
        reset = getattr(task.model, "reset_metrics", None)
        if reset:
            reset()
        self._compiler.start_pass(stage)

    def _step(self, stage: str, step_fn):
        """The stage's compiled step, traced on first use."""
        if stage not in self._steps:
            if self._compiler is None:
                self._compiler = StepCompiler(self.strategy, self._distributed)
            make = self._compiler.predict_step if stage == "predict" else self._compiler.metrics_step
            self._steps[stage] = make(step_fn) if stage == "predict" else make(stage, step_fn)
        return self._steps[stage]

    @property
    def _distributed(self) -> bool:
        return self.strategy.num_replicas_in_sync > 1 or self.config.strategy != "default"

    def _step_input(self, iterator):
        """The compiled step's argument: the iterator itself, or under the profiler a batch fetched here."""
        if not self.profiler.enabled:
            return iterator
        with self.profiler.section("data loading"):
            return next(iterator)

    def _update_metrics(self, prefix: str, outputs: dict) -> None:
        for key, value in outputs.items():
            self.metrics[f"{prefix}_{key}"] = float(value)

    def _split_metrics(self, prefix: str) -> dict:
        return {k[len(prefix) + 1:]: v for k, v in self.metrics.items() if k.startswith(prefix + "_")}

    def _batches_of(self, task: Task, split: str):
        """The split's batches and their count; only training drops a last partial batch, and only
        across replicas (an uneven share would weigh its samples differently in the gradient)."""
        config = self.config.effective
        source = {"train": task.train_data, "validation": task.val_data, "test": task.test_data,
                  "predict": task.predict_data}[split]()
        limit = {"train": config.limit_train_batches, "validation": config.limit_val_batches,
                 "test": config.limit_val_batches if config.fast_dev_run else None}.get(split)
        data, count = self._batches.batches(
            source, split, task.batch_size, epoch=self.current_epoch, shuffle=split == "train",
            drop_remainder=split == "train" and self.strategy.num_replicas_in_sync > 1, limit=limit)
        if self._distributed:
            build_model_state(self.strategy, task.model, data.element_spec)
            data = distribute_dataset(self.strategy, data)
        return data, count

    # --- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "metrics": self.metrics,
            "config": self.config.to_dict(),
            "callbacks": {_state_key(c): c.state_dict() for c in self.callbacks},
            "time": self._budget.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.current_epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.metrics = dict(state["metrics"])
        saved = state["callbacks"]
        for callback in self.callbacks:
            key = _state_key(callback)
            if key not in saved and _only_one_of_its_class(callback, self.callbacks):
                key = type(callback).__name__  # checkpoints written before keys carried arguments
            if key in saved:
                callback.load_state_dict(saved[key])

    def _checkpoint_io(self, task: Task) -> CheckpointIO:
        if self._checkpoint is None:
            self._checkpoint = CheckpointIO(self.run_dir / "checkpoints", task.model, self.config.keep_checkpoints,
                                            extra=self._averaging.trackables())
        return self._checkpoint

    def _save_checkpoint(self, task: Task) -> None:
        if not self.config.effective.checkpoint:
            return
        if not all(math.isfinite(v) for v in self.metrics.values()):
            # A non-finite epoch is never written: the last good checkpoint stays the newest.
            return
        # The task is a callback too: its state (e.g. an attack guard's history) resumes with the run,
        # and so do its random generators, so a resumed run draws what an uninterrupted one would.
        state = {**self.state_dict(), "task": task.state_dict(), "random": random_state(task)}
        with self.profiler.section("checkpointing"):
            path = self._checkpoint_io(task).save(state, self.current_epoch)
        self._call("on_save_checkpoint", task, path)

    def _load_weights(self, task: Task, run_dir: Path, which: str = "last") -> None:
        weights = saved_weights(run_dir, which)
        if weights is not None:
            with warnings.catch_warnings():
                # The file carries the optimizer's slots too; evaluation needs only the model's weights.
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                task.model.load_weights(weights)
            return
        if which == "best":
            raise UserError(f"no best checkpoint in {run_dir / 'checkpoints'}; fit with --save-top-k 1 "
                            "(ModelCheckpoint) to keep one, or use --which last")
        io = CheckpointIO(run_dir / "checkpoints", task.model)
        if io.latest is None:
            raise UserError(f"no checkpoint in {run_dir / 'checkpoints'}; pass a run folder made by `fit`")
        io.restore()

    def _resume(self, task: Task) -> None:
        io = self._checkpoint_io(task)
        if io.latest is None:
            where = (f"--resume found no run with a checkpoint in {self._run_root.parent}; training a new run"
                     if self._resumes_nothing else f"nothing to resume in {self.run_dir} (no checkpoint yet); training")
            print(f"note: {where} from epoch 1", file=sys.stderr, flush=True)
            return
        state = io.restore()
        self.load_state_dict(state)
        self._budget = self._budget.resumed(state.get("time"))
        if state.get("task"):
            task.load_state_dict(state["task"])
        load_random_state(task, state.get("random", {}))
        max_epochs = self.config.effective.max_epochs
        if self.current_epoch >= max_epochs:
            print(f"note: {self.run_dir} has trained {self.current_epoch} epoch(s), --max-epochs {max_epochs}: nothing "
                  f"to train; raise --max-epochs to continue, e.g. --max-epochs {2 * self.current_epoch}",
                  file=sys.stderr, flush=True)


def _kind(callback: Callback) -> type:
    """What a callback is: an adapted Keras callback by the Keras class it wraps."""
    return type(callback.keras_callback) if isinstance(callback, KerasCallbackAdapter) else type(callback)


def _replaced_by(callback: Callback, task_callbacks: list[Callback]) -> bool:
    """True when a task callback is of ``callback``'s type or a subclass of it (a bare Callback is never replaced)."""
    kind = _kind(callback)
    return kind is not Callback and any(issubclass(_kind(own), kind) for own in task_callbacks)


def _checkpoints_last(callbacks: list[Callback]) -> list[Callback]:
    """The callbacks in their order, checkpoint callbacks moved to the end (a stable sort)."""
    return sorted(callbacks, key=lambda callback: isinstance(callback, ModelCheckpoint))


def _state_key(callback: Callback) -> str:
    return getattr(callback, "state_key", type(callback).__name__)


def _only_one_of_its_class(callback: Callback, callbacks: list[Callback]) -> bool:
    return sum(type(c) is type(callback) for c in callbacks) == 1


def _indices(count: int | None):
    return range(count) if count is not None else itertools.count()
