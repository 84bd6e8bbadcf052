"""ModelCheckpoint: keeps the ``save_top_k`` best weight files by a monitored metric, plus the last.

Files go to ``<run>/checkpoints/top/`` with an ``index.json`` (best first), and ``<run>/checkpoints/last.weights.h5``;
each is written to a temporary file and renamed. The weights are the ones validation saw, which
under ``--weight-averaging`` are the averaged ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from callbacks.monitor import MonitorCallback
from common.errors import BadArgument
from common.files import atomic_path, write_atomic

TOP, INDEX, LAST = "top", "index.json", "last.weights.h5"


class ModelCheckpoint(MonitorCallback):
    """Lightning's ``ModelCheckpoint(monitor, mode, save_top_k, save_last)`` for Keras weights."""

    state_key = "ModelCheckpoint"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", save_top_k: int = 1,
                 save_last: bool = True) -> None:
        super().__init__(monitor, mode)
        if save_top_k < 0:
            raise BadArgument(f"--save-top-k must be 0 or more, got {save_top_k}")
        self.save_top_k, self.save_last = save_top_k, save_last
        self.kept: list[dict] = []  # best first: {"file", "value", "epoch", "step", "metrics"}
        self.directory: Path | None = None
        self._active = False

    # --- what it kept -------------------------------------------------------------------------
    @property
    def best(self) -> dict | None:
        return self.kept[0] if self.kept else None

    @property
    def best_model_path(self) -> Path | None:
        return self.directory / TOP / self.best["file"] if self.best and self.directory else None

    # --- hooks --------------------------------------------------------------------------------
    def setup(self, trainer, task, stage):
        self.directory = trainer.resolve_run_dir(task) / "checkpoints"
        self._active = stage == "fit" and trainer.config.effective.checkpoint and trainer.is_chief

    def on_fit_start(self, trainer, task):
        if self._active and trainer.global_step == 0:
            # A fresh run in a reused folder starts a fresh record; a resumed one keeps its own (load_state_dict).
            self.kept = []
            for stale in [*(self.directory / TOP).glob("*.weights.h5"), self.directory / TOP / INDEX,
                          self.directory / LAST]:
                stale.unlink(missing_ok=True)

    def on_validation_epoch_end(self, trainer, task):
        if not self._active or self.save_top_k == 0:
            return
        value = self.monitored(trainer, task)
        if not math.isfinite(value):
            return
        if len(self.kept) >= self.save_top_k and not self.improved(value, self.kept[-1]["value"]):
            return
        epoch = trainer.current_epoch + 1  # as the console counts: "epoch 7/13" is epoch=007
        name = f"epoch={epoch:03d}-step={trainer.global_step:06d}-{self.monitor}={value:.4f}.weights.h5"
        _save_weights(task.model, self.directory / TOP / name)
        val_metrics = {k: v for k, v in trainer.metrics.items() if k.startswith("val_")}
        self.kept.append({"file": name, "value": value, "epoch": trainer.current_epoch,
                          "step": trainer.global_step, "metrics": val_metrics})
        self.kept.sort(key=lambda row: row["value"], reverse=self.mode == "max")
        for dropped in self.kept[self.save_top_k:]:
            (self.directory / TOP / dropped["file"]).unlink(missing_ok=True)
        del self.kept[self.save_top_k:]
        write_atomic(self.directory / TOP / INDEX, json.dumps(
            {"monitor": self.monitor, "mode": self.mode, "kept": self.kept}, indent=2))

    def on_train_epoch_end(self, trainer, task):
        if self._active and self.save_last:
            _save_weights(task.model, self.directory / LAST)

    def on_fit_end(self, trainer, task):
        # After fit the model holds its final (averaged, when averaging) weights: "last" is those.
        if self._active and self.save_last:
            _save_weights(task.model, self.directory / LAST)

    def state_dict(self) -> dict:
        return {"kept": self.kept}

    def load_state_dict(self, state: dict) -> None:
        self.kept = list(state.get("kept", []))


def _save_weights(model, path: Path) -> None:
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def saved_weights(run_dir: str | Path, which: str) -> Path | None:
    """The weight file ``test --which best|last`` loads from a run folder, or None when there is none."""
    checkpoints = Path(run_dir) / "checkpoints"
    if which == "last":
        return checkpoints / LAST if (checkpoints / LAST).exists() else None
    index = checkpoints / TOP / INDEX
    if not index.exists():
        return None
    kept = json.loads(index.read_text())["kept"]
    return checkpoints / TOP / kept[0]["file"] if kept else None
