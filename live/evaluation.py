"""Scoring a `live --output` recording against a labelled video such as faces.mp4 + faces_video.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


def read_predictions(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def score_segments(predictions: list[dict], video: dict, min_iou: float = 0.3) -> dict:
    """Per segment: the share of its frames with a face on the true box and the majority label there.

    A segment counts as detected when more than half its frames have such a face (the rule
    faces_video.json's Haar check uses); its label is right when the majority emotion is its truth.
    """
    truth_box = video["face_box_xywh"]
    on_face = {}
    for p in predictions:
        if _iou(p["box"], truth_box) > min_iou:
            on_face.setdefault(p["frame"], p["emotion"])
    segments = []
    for segment in video["segments"]:
        frames = range(segment["start_frame"], segment["end_frame"] + 1)
        labels = [on_face[f] for f in frames if f in on_face]
        majority = Counter(labels).most_common(1)[0][0] if labels else None
        segments.append({"segment": segment["segment"], "truth": segment["emotion"], "predicted": majority,
                         "detection_rate": round(len(labels) / len(frames), 3),
                         "detected": len(labels) > len(frames) / 2, "correct": majority == segment["emotion"]})
    n = len(segments)
    return {
        "segments": segments,
        "segments_detected": sum(s["detected"] for s in segments),
        "segment_accuracy": sum(s["correct"] for s in segments) / n if n else 0.0,
        "frame_detection_rate": len(on_face) / sum(s["end_frame"] - s["start_frame"] + 1 for s in video["segments"]),
        "n_segments": n,
    }


def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
