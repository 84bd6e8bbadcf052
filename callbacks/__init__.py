"""Callbacks that observe a Trainer run; they import trainer/ and never tasks/."""

from callbacks.early_stopping import EarlyStopping
from callbacks.gradient_histogram import GradientHistogram
from callbacks.learning_rate import LearningRateMonitor
from callbacks.model_checkpoint import ModelCheckpoint
from callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["EarlyStopping", "GradientHistogram", "LearningRateMonitor", "ModelCheckpoint", "TerminateOnNaN"]
