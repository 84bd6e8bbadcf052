"""A task's data as batches for the Trainer: ``tf.data`` used as is, arrays batched and reshuffled per epoch."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf


class BatchSource:
    """Turns what a task's data methods return into ``(batches, count)`` for one pass.

    Arrays are converted to tensors once and kept per split (one copy each): a task that returns
    new arrays on every call replaces its split's copy instead of adding one per epoch.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._tensors: dict[str, tuple[object, tuple[tf.Tensor, ...]]] = {}

    @property
    def cached_splits(self) -> int:
        """How many converted array sets are held (at most one per split)."""
        return len(self._tensors)

    def batches(self, source, split: str, batch_size: int, *, epoch: int = 0, shuffle: bool = False,
                drop_remainder: bool = False, limit: int | None = None) -> tuple[tf.data.Dataset, int | None]:
        """``count`` is None when a dataset's length is unknown; the loops then stop at its end."""
        if isinstance(source, tf.data.Dataset):
            data = source if limit is None else source.take(limit)
            return data, _known_length(data)
        tensors = self._tensors_of(source, split)
        count = int(tensors[0].shape[0])
        order = np.random.default_rng([self.seed, epoch]).permutation(count) if shuffle else np.arange(count)
        batches = count // batch_size if drop_remainder else math.ceil(count / batch_size)
        indices = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)
        data = _gathered(indices, tensors)
        if limit is not None:
            data, batches = data.take(limit), min(batches, limit)
        return data, batches

    def _tensors_of(self, arrays, split: str) -> tuple[tf.Tensor, ...]:
        arrays = tuple(arrays) if isinstance(arrays, (tuple, list)) else (arrays,)
        cached = self._tensors.get(split)
        if cached is None or cached[0] is not arrays[0]:
            # Converted once per run; each epoch only a permutation of indices is built. Splits
            # given the same arrays (predict defaults to test) share one copy.
            same = [tensors for source, tensors in self._tensors.values() if source is arrays[0]]
            self._tensors[split] = (arrays[0], same[0] if same else tuple(tf.convert_to_tensor(a) for a in arrays))
        return self._tensors[split][1]


def _gathered(indices: tf.data.Dataset, tensors: tuple[tf.Tensor, ...]) -> tf.data.Dataset:
    # Zipping the arrays in (rather than capturing them) and skipping tf.data's static
    # optimisations is what Keras's own array adapter does: both make the gather cheaper.
    data = tf.data.Dataset.zip((indices, tf.data.Dataset.from_tensors(tensors).repeat()))

    def gather(index, arrays):
        parts = tuple(tf.gather(a, index) for a in arrays)
        return parts if len(parts) > 1 else parts[0]

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    data = data.map(gather, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
    return data.prefetch(tf.data.AUTOTUNE)


def _known_length(data: tf.data.Dataset) -> int | None:
    cardinality = int(data.cardinality())
    return cardinality if cardinality >= 0 else None
