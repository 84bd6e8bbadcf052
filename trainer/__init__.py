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
    # The Trainer imports TensorFlow; loading it lazily keeps `import trainer` instant, and loading it quietly
    # keeps a script's stderr free of TensorFlow's start-up lines, as the CLI's is.
    if name == "Trainer":
        from common.stderr import import_tensorflow_quietly

        import_tensorflow_quietly()
        from trainer.trainer import Trainer

        return Trainer
    raise AttributeError(name)
