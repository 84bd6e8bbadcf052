"""The emotion classifier, built from a model file and its JSON card.

The card names the classes, the input shape and the face preprocessing the model was trained with;
``preprocess_faces`` applies that same preprocessing here. The faces of one frame go through in one
batch: through TFLite when the card names a ``.tflite`` export (well under 1 ms a face on 2 threads),
else through the Keras model called directly in a compiled function (``model.predict`` costs
milliseconds of set-up per call).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import UserError
from tasks.emotion.preprocessing import FacePreprocessing, preprocess_faces
from trainer.export import load_model_file, read_model_card
from trainer.validation import missing_model_error


class EmotionClassifier:
    def __init__(self, classes: list[str], preprocessing: FacePreprocessing, predict_batch, backend: str) -> None:
        self.classes = classes
        self.preprocessing = preprocessing
        self.backend = backend
        self._predict_batch = predict_batch

    @classmethod
    def from_model_card(cls, model_path: str | Path, threads: int = 2, prefer_tflite: bool = True) -> EmotionClassifier:
        model_path = Path(model_path)
        if not model_path.exists():
            raise UserError(missing_model_error(model_path, "emotion"))
        card = read_model_card(model_path)
        classes = card.get("classes")
        if not classes or not all(isinstance(c, str) for c in classes):
            raise UserError(f"{model_path.with_suffix('.json')} has no \"classes\" list of names; "
                            "re-export the model with `fit emotion`")
        preprocessing = FacePreprocessing.from_dict(card.get("preprocessing", {}))
        card_shape = tuple(card.get("input_shape", preprocessing.input_shape))
        if card_shape != preprocessing.input_shape:
            raise UserError(f"{model_path.with_suffix('.json')} says input_shape {list(card_shape)} but its "
                            f"preprocessing makes {list(preprocessing.input_shape)}; re-export the model")
        tflite = model_path.parent / card["tflite"] if card.get("tflite") else None
        if prefer_tflite and tflite is not None and tflite.is_file():
            (predict, shapes), backend = _tflite_predictor(tflite, threads), "tflite"
        else:
            model = load_model_file(model_path)
            predict, shapes, backend = _keras_predictor(model), (tuple(model.input_shape[1:]),
                                                                  tuple(model.output_shape[1:])), "keras"
        _check_shapes(model_path, shapes, preprocessing.input_shape, len(classes))
        return cls(list(classes), preprocessing, predict, backend)

    def classify(self, faces: list) -> np.ndarray:
        """Face crops (BGR uint8) to class probabilities, one row per face."""
        if not faces:
            return np.zeros((0, len(self.classes)), np.float32)
        return self._predict_batch(preprocess_faces(faces, self.preprocessing))


def _check_shapes(model_path: Path, shapes: tuple, expected_input: tuple, n_classes: int) -> None:
    model_input, model_output = shapes
    if tuple(model_input) != tuple(expected_input):
        raise UserError(f"model {model_path} takes input {list(model_input)} but live feeds faces of "
                        f"{list(expected_input)} (from its card); pass a model trained by `fit emotion`")
    if tuple(model_output) != (n_classes,):
        raise UserError(f"model {model_path} outputs {list(model_output)} but its card names {n_classes} classes; "
                        "re-export the model with its card")


def _keras_predictor(model):
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)]
    forward = tf.function(lambda x: model(x, training=False), input_signature=signature)
    return lambda batch: _as_probabilities(forward(batch).numpy())


def _tflite_predictor(path: Path, threads: int):
    """A predictor for batches of any size and the model's (input, output) shapes."""
    from trainer.export import TFLiteModel

    model = TFLiteModel(path, threads)
    return (lambda batch: _as_probabilities(model(batch))), (model.input_shape, model.output_shape)


def _as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Softmax outputs pass through; logits (rows not summing to 1) are turned into probabilities."""
    outputs = outputs.astype(np.float32)
    if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
