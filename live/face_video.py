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


def face_frame(face: np.ndarray, face_box: tuple[int, int, int, int] = FACE_BOX) -> np.ndarray:
    """One 640x480 BGR frame with the 48x48 grey face upscaled (bicubic) into ``face_box`` (x, y, w, h)."""
    import cv2

    x, y, w, h = face_box
    frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    big = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC)
    frame[y:y + h, x:x + w] = big[..., None]
    return frame


def write_face_video(faces: np.ndarray, labels: np.ndarray, rows: list[int], path: str | Path, split: str,
                     face_box: tuple[int, int, int, int] = FACE_BOX,
                     frames_per_segment: int = FRAMES_PER_SEGMENT) -> dict:
    """Writes the video of ``faces[rows]`` to ``path`` and its description beside it; returns the description.

    ``face_box`` and ``frames_per_segment`` default to faces.mp4's; one frame a face renders a whole split
    through the same codec for the end-to-end benchmark."""
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
                frame = face_frame(faces[row], face_box)
                for _ in range(frames_per_segment):
                    writer.write(frame)
                start = index * frames_per_segment
                segments.append({"segment": index, "start_frame": start,
                                 "end_frame": start + frames_per_segment - 1, "start_s": start / FPS,
                                 "end_s": (start + frames_per_segment) / FPS, "label": int(labels[row]),
                                 "emotion": EMOTIONS[int(labels[row])], "usage": split, "fer2013_row": int(row)})
        finally:
            writer.release()
    description = {"file": path.name, "codec_fourcc": "mp4v", "width": WIDTH, "height": HEIGHT, "fps": FPS,
                   "frames_per_segment": frames_per_segment, "n_segments": len(rows),
                   "n_frames": len(rows) * frames_per_segment, "background_gray": BACKGROUND,
                   "face_box_xywh": list(face_box),
                   "face_upscale": f"48x48 -> {face_box[2]}x{face_box[3]}, cv2.INTER_CUBIC",
                   "source": f"FER2013 {split} rows, the first of each emotion in file order", "segments": segments}
    write_atomic(path.with_suffix(".json"), json.dumps(description, indent=1))
    return description


# The two framings the end-to-end benchmarks render every test face in: faces.mp4's, and a smaller face
# off the centre (a face further from the camera, away from the middle of the picture).
BENCH_FRAMINGS = {"faces.mp4": FACE_BOX, "small-off-centre": (380, 230, 160, 160)}


def split_video(faces: np.ndarray, labels: np.ndarray, usage: np.ndarray, split: str, framing: str,
                folder: str | Path, limit: int | None = None) -> tuple[Path, dict]:
    """Every face of ``split`` (the first ``limit``) as one frame of a video in ``framing``, written the
    way faces.mp4 was (same frame, codec and upscaling) to ``folder``, or found there from an earlier run."""
    rows = [int(r) for r in np.flatnonzero(usage == split)[:limit]]
    path = Path(folder) / f"{split.lower()}-{framing}-{len(rows)}.mp4"
    if path.exists() and path.with_suffix(".json").exists():
        return path, json.loads(path.with_suffix(".json").read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, write_face_video(faces, labels, rows, path, split, BENCH_FRAMINGS[framing], frames_per_segment=1)


def read_frames(path: str | Path):
    """The frames of a video, decoded one at a time (a whole split's frames would not fit in memory)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()
