"""Precision, gradient clipping and accumulation, applied to a task's model with Keras's own machinery.

Nothing here re-implements an optimizer feature: the policies are ``keras.mixed_precision``'s, the
loss scaling is the ``LossScaleOptimizer`` that ``Model.compile`` adds under ``mixed_float16``, and
clipping, accumulation and the EMA are the optimizer's ``global_clipnorm`` / ``clipvalue``,
``gradient_accumulation_steps`` and ``use_ema``, which take effect when the optimizer is built (its
first step), so the Trainer sets them between ``build_model`` and that step.
"""

from __future__ import annotations

import contextlib

import keras

from common.errors import UserError
from trainer.config import TrainerConfig

POLICIES = {"32": "float32", "bf16-mixed": "mixed_bfloat16", "16-mixed": "mixed_float16"}


@contextlib.contextmanager
def precision_policy(precision: str):
    """Builds layers under the dtype policy of ``precision``; the global policy is restored afterwards."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def keep_outputs_float32(model) -> None:
    """Runs the layers that produce the model's outputs in float32, so softmax and the loss see full precision."""
    for tensor in getattr(model, "outputs", None) or []:
        layer = tensor._keras_history.operation
        if layer.dtype_policy.compute_dtype != "float32":
            layer.dtype_policy = "float32"


def inner_optimizer(model):
    """The optimizer that owns the variables: under loss scaling, the one the LossScaleOptimizer wraps."""
    optimizer = getattr(model, "optimizer", None)
    return getattr(optimizer, "inner_optimizer", optimizer)


def configure_optimizer(model, config: TrainerConfig) -> None:
    """Gives the task's optimizer the run's clipping, accumulation and EMA settings."""
    wanted = (config.gradient_clip_val is not None or config.accumulate_grad_batches > 1
              or config.weight_averaging == "ema")
    if not wanted:
        return
    optimizer = inner_optimizer(model)
    if optimizer is None:
        raise UserError("--gradient-clip-val, --accumulate-grad-batches and --weight-averaging ema act on the "
                        "model's optimizer, and this task's model is not compiled with one")
    if optimizer.built and (config.accumulate_grad_batches > 1 or config.weight_averaging == "ema"):
        raise UserError("the task builds its optimizer before training, so --accumulate-grad-batches and "
                        "--weight-averaging ema cannot add their variables; leave them out for this task")
    if config.gradient_clip_val is not None:
        optimizer.clipnorm = optimizer.clipvalue = optimizer.global_clipnorm = None
        if config.gradient_clip_algorithm == "norm":
            optimizer.global_clipnorm = config.gradient_clip_val
        else:
            optimizer.clipvalue = config.gradient_clip_val
    if config.accumulate_grad_batches > 1:
        optimizer.gradient_accumulation_steps = config.accumulate_grad_batches
    if config.weight_averaging == "ema":
        optimizer.use_ema, optimizer.ema_momentum, optimizer.ema_overwrite_frequency = True, config.ema_decay, None
