"""trainlab's generic trainer: a Lightning-style loop for Keras 3 with TensorBoard logging.

It owns the loop and its contracts (``Task``, ``TrainerConfig``), checkpoints, distribution, logging,
reports and model files, and knows no task and no data set. It may import ``common`` and ``callbacks``
(the ones it installs by default); never ``tasks`` or ``data``. ``Callback`` is re-exported from
``callbacks`` for user code written as ``from trainer import Callback``.
"""

from callbacks.callback import Callback, KerasCallbackAdapter
from trainer.config import TrainerConfig
from trainer.task import Task

__all__ = ["Callback", "KerasCallbackAdapter", "Task", "Trainer", "TrainerConfig"]


def __getattr__(name):
    # The Trainer imports TensorFlow; loading it lazily keeps `import trainer` instant.
    if name == "Trainer":
        from trainer.trainer import Trainer

        return Trainer
    raise AttributeError(name)
