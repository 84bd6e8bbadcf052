"""Labelled test videos of FER2013 faces, made the way faces.mp4 was: one face per one-second segment.

Each segment shows one 48x48 face upscaled (bicubic) to 200x200 at x=220, y=140 of a 640x480 grey
(128) frame, 15 frames at 15 fps, written by OpenCV with fourcc ``mp4v``; the faces are the first
``per_emotion`` rows of each emotion of one FER2013 split, in file order, segments angry..neutral,
then again. Its description (``<video>.json``) has the fields of faces_video.json that
``live.evaluation.score_segments`` reads, so a recording of ``live`` on it scores the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import atomic_path, write_atomic

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
WIDTH, HEIGHT, FPS, FRAMES_PER_SEGMENT = 640, 480, 15, 15
FACE_BOX = (220, 140, 200, 200)
BACKGROUND = 128


def pick_rows(labels: np.ndarray, usage: np.ndarray, split: str, per_emotion: int = 2) -> list[int]:
    """Row indices: the ``k``-th row of each emotion in ``split`` for k < per_emotion, emotion by emotion."""
    rounds = []
    for emotion in range(len(EMOTIONS)):
        rows = np.flatnonzero((usage == split) & (labels == emotion))[:per_emotion]
        if len(rows) < per_emotion:
            raise UserError(f"{split} has {len(rows)} {EMOTIONS[emotion]} faces, fewer than --per-emotion "
                            f"{per_emotion}; ask for fewer")
        rounds.append(rows)
    return [int(rounds[emotion][k]) for k in range(per_emotion) for emotion in range(len(EMOTIONS))]


def face_frame(face: np.ndarray) -> np.ndarray:
    """One 640x480 BGR frame with the 48x48 grey face upscaled into FACE_BOX."""
    import cv2

    x, y, w, h = FACE_BOX
    frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    big = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC)
    frame[y:y + h, x:x + w] = big[..., None]
    return frame


def write_face_video(faces: np.ndarray, labels: np.ndarray, rows: list[int], path: str | Path,
                     split: str) -> dict:
    """Writes the video of ``faces[rows]`` to ``path`` and its description beside it; returns the description."""
    import cv2

    path = Path(path)
    segments = []
    # Written under a temporary name and renamed: an interrupted build leaves no half video.
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        if not writer.isOpened():
            raise UserError(f"OpenCV cannot write {path} with fourcc mp4v; install opencv-python-headless")
        try:
            for index, row in enumerate(rows):
                frame = face_frame(faces[row])
                for _ in range(FRAMES_PER_SEGMENT):
                    writer.write(frame)
                start = index * FRAMES_PER_SEGMENT
                segments.append({"segment": index, "start_frame": start,
                                 "end_frame": start + FRAMES_PER_SEGMENT - 1, "start_s": start / FPS,
                                 "end_s": (start + FRAMES_PER_SEGMENT) / FPS, "label": int(labels[row]),
                                 "emotion": EMOTIONS[int(labels[row])], "usage": split, "fer2013_row": int(row)})
        finally:
            writer.release()
    description = {"file": path.name, "codec_fourcc": "mp4v", "width": WIDTH, "height": HEIGHT, "fps": FPS,
                   "frames_per_segment": FRAMES_PER_SEGMENT, "n_segments": len(rows),
                   "n_frames": len(rows) * FRAMES_PER_SEGMENT, "background_gray": BACKGROUND,
                   "face_box_xywh": list(FACE_BOX), "face_upscale": "48x48 -> 200x200, cv2.INTER_CUBIC",
                   "source": f"FER2013 {split} rows, the first of each emotion in file order", "segments": segments}
    write_atomic(path.with_suffix(".json"), json.dumps(description, indent=1))
    return description
