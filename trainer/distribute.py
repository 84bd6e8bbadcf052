"""Distribution through tf.distribute: the Trainer's loop runs each step with ``strategy.run``."""

from __future__ import annotations

import functools
import json
import os

import tensorflow as tf

from common.errors import UserError


class StrategyError(UserError):
    """A strategy that cannot be built from the given environment."""


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    return _collective_strategy(name)


@functools.cache
def _collective_strategy(name: str) -> tf.distribute.Strategy:
    """One per process: a second strategy's collectives reuse the first's keys and clash with them."""
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


def distribute_dataset(strategy: tf.distribute.Strategy, data: tf.data.Dataset):
    """Splits every global batch over the replicas; a last partial batch is split too (unevenly if need be)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(data.with_options(options))


def build_model_state(strategy: tf.distribute.Strategy, model, element_spec) -> None:
    """Creates the model's metric, loss and optimizer variables before the first distributed step.

    Keras creates them lazily on first use; inside ``strategy.run`` that fails on more than one
    device. Keras's own ``fit`` builds them first from a symbolic batch; this does the same.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is None or not isinstance(element_spec, (tuple, list)) or len(element_spec) < 2:
        return
    with strategy.scope():
        build(data_batch=tuple(element_spec))


class StepCompiler:
    """Compiles a task's step into one ``tf.function`` that takes its batch from an iterator (or, under
    the profiler, the batch itself).

    With one replica the step runs as is. With more, each replica runs it on its share of the batch
    and the results are combined: metrics as a mean weighted by the samples each replica has seen
    this pass (exact for per-sample averages such as loss and accuracy, even for an uneven last
    batch), predictions concatenated in replica order, which is the order of the batch.
    """

    def __init__(self, strategy: tf.distribute.Strategy, distributed: bool) -> None:
        self.strategy = strategy
        self.distributed = distributed
        self._seen: dict[str, object] = {}

    def metrics_step(self, stage: str, step_fn):
        if not self.distributed:
            return _local_step(step_fn)
        seen = self._samples_metric(stage)
        strategy = self.strategy

        def replica_step(batch):
            return _weighted_mean(step_fn(batch), _batch_size(batch), seen)

        def run(source):
            batch = _batch_from(source)
            outputs = strategy.run(replica_step, args=(batch,))
            return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], (outputs, batch))

        return tf.function(run)

    def predict_step(self, step_fn):
        if not self.distributed:
            return tf.function(lambda source: step_fn(_batch_from(source)))
        strategy = self.strategy

        def replica_step(batch):
            outputs = step_fn(batch)
            counts = tf.nest.map_structure(_row_counts, outputs)
            return tf.nest.map_structure(_padded, outputs, counts), counts

        def run(source):
            padded, counts = strategy.run(replica_step, args=(_batch_from(source),))
            return tf.nest.map_structure(lambda p, c: _gathered_rows(strategy, p, c), padded, counts)

        return tf.function(run)

    def start_pass(self, stage: str) -> None:
        """Restarts the per-replica sample counts with the pass's running metrics."""
        if stage in self._seen:
            self._seen[stage].reset_state()

    def _samples_metric(self, stage: str):
        import keras

        if stage not in self._seen:
            # A Keras metric: one on-read counter per replica, created outside the compiled step.
            with self.strategy.scope():
                self._seen[stage] = keras.metrics.Sum(name=f"{stage}_samples")
        return self._seen[stage]


def _local_step(step_fn):
    def run(source):
        batch = _batch_from(source)
        return step_fn(batch), batch

    return tf.function(run)


def _batch_from(source):
    # The batch is taken inside the graph, as Keras's fit does: no eager iterator call
    # and no argument conversion per step (measured: 2-3x less loop overhead per step).
    # Only the profiler passes a batch fetched outside, to time data loading apart.
    return next(source) if hasattr(source, "get_next") else source


def _row_counts(value: tf.Tensor) -> tf.Tensor:
    """Every replica's number of rows (the last batch may be split unevenly)."""
    return tf.distribute.get_replica_context().all_gather(tf.shape(value)[:1], axis=0)


def _padded(value: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """A replica's rows padded to the largest share: gathering across replicas needs equal shapes."""
    padding = tf.concat([[[0, tf.reduce_max(counts) - tf.shape(value)[0]]],
                         tf.zeros([tf.rank(value) - 1, 2], tf.int32)], axis=0)
    return tf.pad(value, padding)


def _gathered_rows(strategy: tf.distribute.Strategy, padded, counts) -> tf.Tensor:
    """All replicas' rows in replica order, which is the order of the global batch, padding removed."""
    values = strategy.gather(padded, axis=0)
    counts = strategy.experimental_local_results(counts)[0]
    keep = tf.sequence_mask(counts, tf.shape(values)[0] // tf.size(counts))
    return tf.boolean_mask(values, tf.reshape(keep, [-1]))


def _batch_size(batch) -> tf.Tensor:
    return tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32)


def _weighted_mean(outputs: dict, size: tf.Tensor, seen) -> dict:
    """Each replica's running results, averaged over all replicas by the samples behind each."""
    seen.update_state(size)
    local = tf.identity(seen.result())  # a tensor, not the metric's variable: all_reduce takes values
    context = tf.distribute.get_replica_context()
    # A replica that has seen nothing yet (an empty share of a last batch) may hold NaN: weight 0.
    weighted = {k: tf.where(local > 0, tf.cast(v, tf.float32) * local, 0.0) for k, v in outputs.items()}
    sums, total = context.all_reduce("SUM", (weighted, local))
    return {k: tf.math.divide_no_nan(v, total) for k, v in sums.items()}
