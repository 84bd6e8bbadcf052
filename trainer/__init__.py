"""trainlab's generic trainer: a Lightning-style loop for Keras 3 with TensorBoard logging."""

from trainer.callback import Callback, KerasCallbackAdapter
from trainer.config import TrainerConfig
from trainer.task import Task

__all__ = ["Callback", "KerasCallbackAdapter", "Task", "Trainer", "TrainerConfig"]


def __getattr__(name):
    # The Trainer imports TensorFlow; loading it lazily keeps `import trainer` instant.
    if name == "Trainer":
        from trainer.trainer import Trainer

        return Trainer
    raise AttributeError(name)
