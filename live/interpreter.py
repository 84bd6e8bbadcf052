"""TensorFlow Lite interpreters for the detector and the classifier."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings


@contextlib.contextmanager
def native_stderr_silenced():
    """TFLite logs "Created TensorFlow Lite XNNPACK delegate" from C++ on fd 2, past Python's reach;
    it would add a line to every one-line error and break into the live view."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def tflite_interpreter(model_path: str, threads: int):
    """An allocated ``tf.lite.Interpreter``; TF 2.21 still ships it (with a deprecation warning we mute)."""
    import tensorflow as tf

    with warnings.catch_warnings(), native_stderr_silenced():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(model_path), num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter
