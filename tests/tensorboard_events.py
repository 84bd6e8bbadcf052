"""Reads TensorBoard event files back, classifying tags by plugin as TensorBoard itself does."""

from __future__ import annotations

from pathlib import Path


def read_tags(directory: Path) -> dict[str, set[str]]:
    """``{"scalars": {...}, "histograms": {...}, "images": {...}, "text": {...}, "hparams": {...}}``."""
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={TENSORS: 0})
    accumulator.Reload()
    tags: dict[str, set[str]] = {}
    for tag in accumulator.Tags()["tensors"]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        tags.setdefault(plugin, set()).add(tag)
    return tags


def read_scalars(directory: Path, tag: str) -> list[tuple[int, float]]:
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={TENSORS: 0})
    accumulator.Reload()
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
