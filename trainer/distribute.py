"""Distribution through tf.distribute: the Trainer's loop runs each step with ``strategy.run``."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from trainer.errors import UserError


class StrategyError(UserError):
    """A strategy that cannot be built from the given environment."""


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise StrategyError(
                "--strategy multi-worker needs TF_CONFIG, e.g. "
                '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
            )
        try:
            json.loads(raw)
        except json.JSONDecodeError as error:
            raise StrategyError(f"TF_CONFIG is not valid JSON ({error}); fix the environment variable") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise StrategyError(f"strategy {name!r} is unknown; use default, mirrored or multi-worker")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The chief (or worker 0 when there is no chief) writes logs, reports and checkpoints."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_name(strategy: tf.distribute.Strategy) -> str:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}-{resolver.task_id}"
