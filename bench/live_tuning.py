"""Tunes live's BlazeFace settings on a video of PublicTest faces; prints JSON.

    python bench/live_tuning.py [--out logs/live-tuning] [--per-emotion 2]

Builds `publictest_faces.mp4` (and its `.json`) in --out with `live.face_video`, the way faces.mp4
was built from PrivateTest (same size, rate, codec, face box, background, faces per emotion), so
faces.mp4 stays untouched for the accuracy `bench/live.py` reports. On every frame it runs BlazeFace
with no threshold, no widening and no lift, and derives from the raw boxes:
- `expand`: true face side / raw box side (median over faces), so the widened box spans the face
  the way FER2013's crops do (forehead to chin), which the emotion model was trained on;
- `lift`: how far the raw box's centre sits below the true centre, in raw box sides (median);
- `score_threshold`: midway between the weakest true face's score and the strongest non-face's.
Then it reports how well the derived and the shipped settings frame the faces (IoU with the true box).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from common.errors import UserError  # noqa: E402
from data.datasets import resolve_data_dir  # noqa: E402
from live.detector import BlazeFaceDetector, Box  # noqa: E402
from live.face_video import pick_rows, write_face_video  # noqa: E402


def build_video(data_dir: Path, out: Path, per_emotion: int) -> tuple[Path, dict]:
    with np.load(data_dir / "fer2013.npz", allow_pickle=False) as archive:
        x, y, usage = archive["x"], archive["y"], archive["usage"]
    rows = pick_rows(y, usage, "PublicTest", per_emotion)
    video = out / "publictest_faces.mp4"
    return video, write_face_video(x, y, rows, video, "PublicTest")


def raw_detections(video: Path) -> list[list[Box]]:
    """Per frame, BlazeFace's boxes before any threshold (above 0.01), widening or lift."""
    import cv2

    detector = BlazeFaceDetector(score_threshold=0.01, expand=1.0, lift=0.0)
    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(detector.detect(image))


def derive(frames: list[list[Box]], meta: dict) -> dict:
    truth = Box(*meta["face_box_xywh"])
    true_cy, true_side = truth.y + truth.h / 2, truth.w
    faces = []
    for boxes in frames:
        on_face = [b for b in boxes if b.iou(truth) > 0.3]
        if on_face:
            best = max(on_face, key=lambda b: b.score)
            faces.append({"side": best.w, "lift": (best.y + best.h / 2 - true_cy) / best.w})
    if not faces:
        raise UserError("BlazeFace found no face on the tuning video; check the video and the model file")
    scores = frame_scores(frames, truth)
    threshold, right = choose_threshold(scores, meta)
    return {"frames": len(frames), "frames_without_face": sum(true == 0 for true, _ in scores),
            "raw_side_over_true": round(statistics.median(f["side"] for f in faces) / true_side, 3),
            "expand": round(statistics.median(true_side / f["side"] for f in faces), 2),
            "lift": round(statistics.median(f["lift"] for f in faces), 2),
            "weakest_face_score": round(min(_segment_medians([t for t, _ in scores], meta)), 3),
            "strongest_non_face_score": round(max(f for _, f in scores), 3),
            "score_threshold": threshold, "segments_right_at_threshold": right}


def frame_scores(frames: list[list[Box]], truth: Box) -> list[tuple[float, float]]:
    """Per frame: the best score of a box on the face (IoU > 0.3) and of any other box (0 when none)."""
    return [(max((b.score for b in boxes if b.iou(truth) > 0.3), default=0.0),
             max((b.score for b in boxes if b.iou(truth) <= 0.3), default=0.0)) for boxes in frames]


def choose_threshold(scores: list[tuple[float, float]], meta: dict) -> tuple[float, int]:
    """The threshold (0.05 to 0.95 by 0.05) that gets most segments right: face found in most of its
    frames and no other box in most of them; among equals, the middle one (the widest margin)."""
    candidates = [round(0.05 * k, 2) for k in range(1, 20)]
    right = {t: _segments_right(scores, meta, t) for t in candidates}
    best = max(right.values())
    tied = [t for t in candidates if right[t] == best]
    return tied[len(tied) // 2], best


def _segments_right(scores, meta, threshold: float) -> int:
    right = 0
    for segment in meta["segments"]:
        part = scores[segment["start_frame"]:segment["end_frame"] + 1]
        found = sum(true > threshold for true, _ in part)
        extra = sum(other > threshold for _, other in part)
        right += found > len(part) / 2 and extra <= len(part) / 2
    return right


def _segment_medians(values: list[float], meta: dict) -> list[float]:
    return [statistics.median(values[s["start_frame"]:s["end_frame"] + 1]) for s in meta["segments"]]


def framing(video: Path, meta: dict, score_threshold: float, expand: float, lift: float) -> dict:
    """Mean IoU of the top box with the true box, and segments whose face is found in most frames."""
    import cv2

    truth = Box(*meta["face_box_xywh"])
    detector = BlazeFaceDetector(score_threshold=score_threshold, expand=expand, lift=lift)
    capture, ious = cv2.VideoCapture(str(video)), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        boxes = detector.detect(image)
        ious.append(max((b.iou(truth) for b in boxes), default=0.0))
    per_segment = np.array(ious).reshape(meta["n_segments"], -1)
    return {"score_threshold": score_threshold, "expand": expand, "lift": lift,
            "mean_iou": round(float(np.mean(ious)), 3),
            "segments_found": int(((per_segment > 0.3).mean(axis=1) > 0.5).sum()), "n_segments": meta["n_segments"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "logs" / "live-tuning"), help="folder for the tuning video")
    parser.add_argument("--per-emotion", type=int, default=2, help="faces per emotion (faces.mp4 has 2)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    video, meta = build_video(data_dir, Path(args.out), args.per_emotion)
    derived = derive(raw_detections(video), meta)
    shipped = BlazeFaceDetector.__init__.__defaults__
    print(json.dumps({
        "video": str(video), "split": "PublicTest", "faces": meta["n_segments"],
        "rows": [s["fer2013_row"] for s in meta["segments"]],
        "derived": derived,
        "framing_with_derived": framing(video, meta, derived["score_threshold"], derived["expand"], derived["lift"]),
        "framing_with_shipped": framing(video, meta, shipped[0], shipped[2], shipped[3]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
