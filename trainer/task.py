"""The Task contract: a task builds its model, gives its data, may own its steps, reports results."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

from callbacks.callback import Callback
from common.errors import UserError
from trainer.options import flag_of


class Task(Callback):
    """One experiment. Subclasses implement ``build_model`` and ``train_data``; the rest is optional.

    A task receives every hook a callback does (it is fired first), so it can export its model on
    ``on_fit_end`` or log figures on ``on_train_epoch_end`` without the Trainer knowing about it.

    Data methods return either a ``tf.data.Dataset`` of batches, used as is, or a tuple of arrays
    ``(x, y)``, which the Trainer batches with ``batch_size`` and reshuffles each epoch from the
    run's seed (so a resumed run sees the same order as an uninterrupted one).
    """

    # The run folder's name (<logdir>/<name>/<run>); a subclass without one is named after its class.
    name: ClassVar[str] = "task"
    Config: ClassVar[type] = None  # a frozen dataclass of the task's own options
    batch_size: int = 32
    # Epochs when the user gives no --max-epochs: short enough for a laptop CPU.
    default_epochs: ClassVar[int] = 10
    # True for a study that trains its models once per seed of ``--seeds N`` (``TrainerConfig.run_seeds``);
    # a task that trains one model per run refuses --seeds above 1.
    runs_per_seed: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", cls.__name__.removesuffix("Task") or cls.__name__).lower()

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else (self.Config() if self.Config else None)
        self.model = None
        self.data_dir = None

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_options(cls, options: dict) -> Task:
        """Builds the task from CLI options; unknown or inapplicable options raise UserError."""
        fields = [f.name for f in dataclasses.fields(cls.Config)] if cls.Config else []
        given = {k: v for k, v in options.items() if v is not None}
        wrong = sorted(set(given) - set(fields))
        if wrong:
            takes = ", ".join(map(flag_of, fields)) or "no options of its own"
            raise UserError(f"option {', '.join(map(flag_of, wrong))} does not apply to task {cls.name}; "
                            f"it takes {takes}")
        return cls(cls.Config(**given) if cls.Config else None)

    @property
    def trained_model_file(self) -> str | None:
        """The exported model file ``build_model`` loads (by default the option ``model``, when the task's
        Config has one and it is given); None when it builds a new network. ``test`` records it."""
        model = getattr(self.config, "model", None)
        return str(model) if model else None

    @property
    def loads_trained_model(self) -> bool:
        """Whether ``build_model`` loads trained weights itself, so that ``test`` needs no checkpoint."""
        return self.trained_model_file is not None

    def build_model(self):
        """Returns the compiled ``keras.Model``; called inside the distribution strategy's scope."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_model()")

    # --- the whole job -----------------------------------------------------------------------
    def run(self, trainer) -> dict:
        """Runs the task's job as ``python cli.py fit`` does: by default fit, then test if there is a test split.

        Studies that train several models (a grid, a tuner's best) override this and train each with
        ``trainer.spawn(name)``, a Trainer of the same configuration writing under this run's folder.
        """
        trainer.fit(self)
        # Every worker evaluates (the metric reduction is collective); only the chief writes.
        if self.test_data() is not None:
            trainer.test(self)
        return dict(trainer.metrics)

    def configure_callbacks(self) -> list:
        """Callbacks this task brings to every run it is fit, validated or tested in (e.g. a gradient logger
        or the checkpoint that keeps its best epoch), as Lightning's ``configure_callbacks``.

        The Trainer merges them once per task at set-up: one of a type the user also passed replaces the
        user's, checkpoint callbacks run last, and their state is saved and restored with the run's.
        """
        return []

    # --- data -------------------------------------------------------------------------------
    def train_data(self):
        """Returns the training data: a batched ``tf.data.Dataset`` or an ``(x, y)`` tuple."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_data()")

    def val_data(self):
        """Returns the validation data, or None to skip validation."""
        return None

    def test_data(self):
        """Returns the test data, or None when the task has no test split."""
        return None

    def predict_data(self):
        """Returns inputs to predict on; defaults to the test data."""
        return self.test_data()

    # --- steps (run inside tf.function and strategy.run) ----------------------------------
    def train_step(self, batch) -> dict:
        """Runs one optimisation step and returns the running metrics as tensors."""
        return self.model.train_step(batch)

    def validation_step(self, batch) -> dict:
        """Evaluates one batch and returns the running metrics as tensors."""
        return self.model.test_step(batch)

    def validation_metrics(self, trainer) -> dict:
        """Metrics the task measures itself after each validation pass, outside the compiled step (an
        attack on a held-out batch, say): merged into ``trainer.metrics`` with the ``val_`` prefix before
        ``on_validation_epoch_end``, so callbacks (``ModelCheckpoint(monitor="val_...")``) and TensorBoard
        see them."""
        return {}

    def test_step(self, batch) -> dict:
        """Evaluates one test batch; defaults to the validation step."""
        return self.validation_step(batch)

    def predict_step(self, batch):
        """Returns the model's output for one batch."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.model(x, training=False)

    # --- reporting ------------------------------------------------------------------------
    def config_dict(self) -> dict:
        """The task's resolved options, written to the run folder and TensorBoard."""
        return dataclasses.asdict(self.config) if self.config is not None else {}

    def hparams(self) -> dict:
        """Scalars and strings shown in TensorBoard's HParams dashboard."""
        return {k: v for k, v in self.config_dict().items() if isinstance(v, (int, float, str, bool))}

    def data_checksums(self) -> dict:
        """sha256 of each data file the task read, for the run's report."""
        return {}

    def results(self, trainer) -> dict:
        """The task's results for ``metrics.json`` and the report; defaults to the last metrics."""
        return dict(trainer.metrics)

    def report_sections(self, trainer) -> list[tuple[str, str]]:
        """Extra (title, markdown) sections for the run's ``report.md``: tables, figures, findings."""
        return []

