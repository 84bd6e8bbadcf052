"""The one face preprocessing used by emotion training, evaluation and `live`.

Its settings travel in the model's JSON card (``"preprocessing"``), so a model always receives the
input it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FacePreprocessing:
    size: int = 48  # FER2013's native resolution
    grayscale: bool = True
    scale: float = 1.0 / 255.0  # pixels to [0, 1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FacePreprocessing:
        return cls(**{k: values[k] for k in ("size", "grayscale", "scale") if k in values})

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 1 if self.grayscale else 3)


def preprocess_faces(faces, spec: FacePreprocessing = FacePreprocessing()) -> np.ndarray:
    """Face crops (a list or array of HxW or HxWx3 BGR uint8 images) to a float32 batch the model takes."""
    import cv2

    batch = np.empty((len(faces), *spec.input_shape), np.float32)
    for i, face in enumerate(faces):
        face = np.asarray(face)
        if spec.grayscale and face.ndim == 3:
            face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        if face.shape[:2] != (spec.size, spec.size):
            face = cv2.resize(face, (spec.size, spec.size), interpolation=cv2.INTER_AREA)
        batch[i] = face.reshape(spec.input_shape) * spec.scale
    return batch
