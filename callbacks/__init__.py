"""Every callback that observes a Trainer run, the ``Callback`` base class included.

Callbacks read public trainer state and write only ``trainer.should_stop``. This package may import
``common`` (errors, atomic files) and never ``trainer``, ``tasks`` or ``data``: the Trainer imports the
callbacks it installs, and a task may return callbacks from ``configure_callbacks()``.

Names load on first use, so ``import callbacks`` (and ``import trainer``) imports no TensorFlow.
"""

import importlib

_HOMES = {
    "Callback": "callbacks.callback",
    "KerasCallbackAdapter": "callbacks.callback",
    "EarlyStopping": "callbacks.early_stopping",
    "GradientHistogram": "callbacks.gradients",
    "GradientProbe": "callbacks.gradients",
    "LearningRateFinder": "callbacks.lr_finder",
    "LearningRateMonitor": "callbacks.learning_rate",
    "MonitorCallback": "callbacks.monitor",
    "ModelCheckpoint": "callbacks.model_checkpoint",
    "PlainProgress": "callbacks.progress",
    "RichProgress": "callbacks.progress",
    "TerminateOnNaN": "callbacks.terminate_on_nan",
}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'callbacks' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
