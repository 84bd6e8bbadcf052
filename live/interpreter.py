"""TensorFlow Lite interpreters for the detector and the classifier."""

from __future__ import annotations

import warnings


def tflite_interpreter(model_path: str, threads: int):
    """An allocated ``tf.lite.Interpreter``; TF 2.21 still ships it (with a deprecation warning we mute)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(model_path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter
