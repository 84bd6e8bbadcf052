"""Exporting trained models for shipping: the model file and a JSON card beside it, both atomic, and
the TFLite file with the one runner that evaluation, benches and ``live`` share."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import atomic_path, write_atomic, write_bytes_atomic
from common.stderr import native_stderr_silenced
from trainer.validation import missing_model_error


def save_model_atomic(model, path: str | Path, include_optimizer: bool = True) -> Path:
    """Saves ``model`` to ``path`` (``.h5`` or ``.keras``) via a temporary file and a rename.

    Keras picks the format from the suffix, so the temporary name keeps it. Note that saving
    ``.h5`` in Keras 3.15 drops the optimizer from the model's compile config in memory: save any
    ``.keras`` copy first. ``include_optimizer=False`` saves the weights without the optimizer's
    state (a third of the size with Adam), as shipped models are.
    """
    if not include_optimizer:
        model = without_optimizer(model)
    model = float32_copy(model)
    path = Path(path)
    optimizer = getattr(model, "optimizer", None)  # an uncompiled model has none
    needed = variables_size([*model.weights, *(optimizer.variables if optimizer else [])])
    # Keras warns on every .h5 save that the format is legacy.
    with atomic_path(path, needed=needed) as tmp, _quiet_absl():
        model.save(tmp)
    return path


def variables_size(variables) -> int:
    """Bytes that ``variables`` take in a file: what a save needs free on the disk, give or take its headers."""
    return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables) + 64 * 1024


def without_optimizer(model):
    """An uncompiled copy with the same weights: its saved file holds no optimizer state (Adam's
    moments triple a file's size). ``from_config`` rather than ``clone_model``, which in Keras 3.15
    compiles the clone, so the ``.h5`` would store the optimizer anyway."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def float32_copy(model):
    """``model`` itself when every layer computes in float32; otherwise an uncompiled float32 copy with the
    same weights. Mixed-precision training (``--precision bf16-mixed``) ships float32 files: bfloat16
    convolutions have no TFLite kernel, and a float32 file runs everywhere."""
    layers = getattr(model, "_flatten_layers", lambda: model.layers)()
    if all(getattr(layer, "compute_dtype", "float32") == "float32" for layer in layers):
        return model
    copy = type(model).from_config(_float32_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _float32_config(config):
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and isinstance(config.get("config"), dict):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    return config


@contextlib.contextmanager
def _quiet_absl():
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def write_model_card(model_path: str | Path, card: dict) -> Path:
    """Writes ``<model>.json``: metrics, data checksums, seed, the command that made it, and more."""
    path = Path(model_path).with_suffix(".json")
    card = {"model": Path(model_path).name, "command": "python " + " ".join(sys.argv), **card}
    write_atomic(path, json.dumps(card, indent=2, default=str) + "\n")
    return path


def read_model_card(model_path: str | Path) -> dict:
    """The card beside a model file; a model that is not there is named before its card."""
    if not Path(model_path).exists():
        raise UserError(missing_model_error(model_path))
    path = Path(model_path).with_suffix(".json")
    if not path.exists():
        raise UserError(f"{path} is missing: a model needs its JSON card beside it; re-export it with `fit`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error}); re-export the model with `fit`") from None


def load_model_file(model_path: str | Path, custom_objects: dict | None = None):
    """Loads a ``.h5`` or ``.keras`` model with a one-line error for a missing or broken file."""
    import keras

    path = Path(model_path)
    if not path.exists():
        raise UserError(missing_model_error(path))
    try:
        return keras.models.load_model(path, custom_objects=custom_objects, compile=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"model {path} could not be loaded ({type(error).__name__}: {error}); "
                        "re-export it or pass another --model") from None


def export_tflite(model, path: str | Path, quantize: bool = True) -> Path:
    """Converts ``model`` to a TFLite flatbuffer at ``path`` (temporary file and rename).

    ``quantize`` stores the weights as int8 (dynamic-range quantization): on the shipped network a
    face takes a quarter of the float32 time and the file a quarter of the size, for about 0.1 point
    of PrivateTest accuracy.
    """
    import tensorflow as tf

    from trainer.export import float32_copy

    path = Path(path)
    converter = tf.lite.TFLiteConverter.from_keras_model(float32_copy(model))
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # The converter prints its intermediate SavedModel's signature to stdout; keep the terminal clean.
    with contextlib.redirect_stdout(io.StringIO()):
        flatbuffer = converter.convert()
    write_bytes_atomic(path, flatbuffer)
    return path


def tflite_interpreter(model_path: str | Path, threads: int):
    """An allocated ``tf.lite.Interpreter``; TF 2.21 still ships it (with a deprecation warning we mute),
    and its XNNPACK delegate announces itself on fd 2 (silenced)."""
    import tensorflow as tf

    with warnings.catch_warnings(), native_stderr_silenced():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(model_path), num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


class TFLiteModel:
    """A TFLite file run on batches: ``model(batch)`` returns its first output (a copy); the input is
    resized only when the number of rows changes."""

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        self.interpreter = tflite_interpreter(path, threads)
        given, output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self._input, self._output = given["index"], output["index"]
        self._rows = int(given["shape"][0])
        self.input_shape = tuple(int(d) for d in given["shape"][1:])
        self.output_shape = tuple(int(d) for d in output["shape"][1:])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._rows:
            with native_stderr_silenced():
                self.interpreter.resize_tensor_input(self._input, batch.shape)
                self.interpreter.allocate_tensors()
            self._rows = len(batch)
        self.interpreter.set_tensor(self._input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output).copy()
