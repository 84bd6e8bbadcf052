import json

import numpy as np
import pytest

from common.errors import UserError
from live.classifier import EmotionClassifier
from tests.live.conftest import CLASSES, write_tiny_model


def faces(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (60 + 10 * i, 60 + 10 * i, 3), dtype=np.uint8) for i in range(n)]


def test_a_frames_faces_are_classified_in_one_batch_into_probabilities(tiny_model):
    classifier = EmotionClassifier.from_model_card(tiny_model)
    probabilities = classifier.classify(faces(3))
    assert classifier.backend == "keras" and classifier.classes == CLASSES
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert classifier.classify([]).shape == (0, 7)


def test_the_tflite_export_named_in_the_card_is_preferred_and_agrees_with_keras(tmp_path):
    model = write_tiny_model(tmp_path / "tiny.h5", tflite=True)
    tflite = EmotionClassifier.from_model_card(model)
    keras_path = EmotionClassifier.from_model_card(model, prefer_tflite=False)
    assert (tflite.backend, keras_path.backend) == ("tflite", "keras")
    for count in (2, 1, 4):  # the interpreter is resized as the number of faces changes
        batch = faces(count, seed=count)
        np.testing.assert_allclose(tflite.classify(batch), keras_path.classify(batch), atol=1e-5)


def test_a_model_with_the_wrong_input_shape_is_refused_with_both_shapes(tmp_path):
    model = write_tiny_model(tmp_path / "wrong.h5", input_shape=(32, 32, 1))
    with pytest.raises(UserError, match=r"takes input \[32, 32, 1\] but live feeds faces of \[48, 48, 1\]"):
        EmotionClassifier.from_model_card(model)


def test_a_card_naming_more_classes_than_the_model_outputs_is_refused(tmp_path):
    model = write_tiny_model(tmp_path / "tiny.h5")
    card = json.loads(model.with_suffix(".json").read_text())
    card["classes"] = CLASSES + ["contempt"]
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(UserError, match="outputs \\[7\\] but its card names 8 classes"):
        EmotionClassifier.from_model_card(model)


def test_a_missing_model_or_card_is_a_user_error(tmp_path, tiny_model):
    with pytest.raises(UserError, match="nope.h5 does not exist"):
        EmotionClassifier.from_model_card(tmp_path / "nope.h5")
    tiny_model.with_suffix(".json").unlink()
    with pytest.raises(UserError, match="tiny.json is missing"):
        EmotionClassifier.from_model_card(tiny_model)
