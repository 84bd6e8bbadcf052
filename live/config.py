"""`live`'s options, importable without NumPy or TensorFlow so that `live --help` answers at once."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from trainer.validation import check_fields

DETECTORS = ("blazeface", "haar")
VIEWS = ("auto", "rich", "plain", "none")
# live's default model, written here only: the most accurate shipped model that keeps real time
# (>= 60 fps and p95 <= 30 ms on faces.mp4, 2 cores), chosen on PublicTest frames by bench/live_path.py.
DEFAULT_MODEL = "models/emotion.h5"


@dataclass(frozen=True)
class LiveConfig:
    camera: str = field(default="0", metadata={
        "help": "A camera index (0; on Linux `ls /dev/video*` lists them), a video file, or a stream URL.",
        "any": "a camera that does not open, or a file that is not there, is named when live starts"})
    model: str = field(default=DEFAULT_MODEL, metadata={
        "help": "Emotion model (.h5) with its JSON card beside it.",
        "any": "a model that is not there, or of another task, is named with the emotion models to pass"})
    plain: bool = field(default=False, metadata={"help": "Print one line per face instead of the live view."})
    output: str | None = field(default=None, metadata={
        "help": "Record every prediction to this JSONL file.", "any": "any file; written when the run ends"})
    max_frames: int | None = field(default=None, metadata={"help": "Stop after N frames.", "min": 1,
                                                           "fix": "or leave it out to run until the end"})
    # 0.6 lets a new expression take over within about 3 frames (0.6^3 = 0.2) while one odd frame barely moves it.
    smooth: float = field(default=0.6, metadata={
        "help": "Per-face smoothing across frames, 0 (off) to <1.", "min": 0, "below": 1})
    # BlazeFace found every face segment of faces.mp4 at about 1 ms a frame; Haar as a fallback.
    detector: str = field(default="blazeface", metadata={
        "help": "Face detector: blazeface (TFLite) or haar (OpenCV).", "choices": DETECTORS})
    # BlazeFace, tuned on a PublicTest video (bench/live_tuning.py): faces >= 0.37, other boxes <= 0.14.
    min_face_score: float = field(default=0.25, metadata={
        "help": "BlazeFace's score threshold for a face.", "above": 0, "below": 1})
    view: str = field(default="auto", metadata={
        "help": "auto: rich on a terminal, plain lines otherwise; none for benchmarks.", "choices": VIEWS})
    retry_s: float = field(default=2.0, metadata={
        "help": "Seconds a stopped camera or stream is retried before the run ends.", "min": 0})
    classifier_threads: int = field(default=2, metadata={"help": "TFLite threads for the faces of a frame.",
                                                         "min": 1})

    def __post_init__(self) -> None:
        check_fields(self)

    def resolved_view(self, stream=None) -> str:
        if self.view != "auto":
            return self.view
        stream = stream or sys.stdout
        return "plain" if self.plain or not stream.isatty() else "rich"
