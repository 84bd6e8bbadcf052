"""Keeps the best ``save_top_k`` weight files by a monitored metric, plus the last; see ``trainer.model_checkpoint``."""

from trainer.model_checkpoint import ModelCheckpoint

__all__ = ["ModelCheckpoint"]
