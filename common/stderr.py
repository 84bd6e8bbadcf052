"""Silencing what native code (TensorFlow's start-up, TFLite's delegates) writes to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Points file descriptor 2 at /dev/null for the block: C++ logs there past Python's reach, and would
    add lines to a one-line error or break into a live view."""
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


@contextlib.contextmanager
def tensorflow_start_up_hidden():
    """Silences file descriptor 2 while TensorFlow may start: absl writes its start-up lines there (``I0000 ...``:
    oneDNN, CPU features, CUDA drivers) before any log level applies. TRAINLAB_VERBOSE_TF=1 shows them."""
    if os.environ.get("TRAINLAB_VERBOSE_TF"):
        yield
        return
    with native_stderr_silenced():
        yield


def import_tensorflow_quietly():
    """Imports TensorFlow and finds its devices (the CUDA platform logs when first asked) with the start-up lines
    hidden, as the CLI does; a process that imported TensorFlow before has printed them already."""
    with tensorflow_start_up_hidden():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
