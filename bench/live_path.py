"""End-to-end benchmark of `live`'s path on every test face; prints JSON.

    python bench/live_path.py [--models models/emotion.h5 models/emotion_live.h5] [--limit N]

Every PublicTest and PrivateTest face is rendered the way faces.mp4 was made (one frame a face,
through the same codec) in two framings: faces.mp4's (200 px at (220,140)) and a smaller face off the
centre (160 px at (380,230)). Each frame goes through the detector, the crop and the classifier that
`live` builds (`live.app.build_pipeline`, the shipped framing); the face found on the true box
(IoU > 0.3) is classified. Per model and framing it prints the detection rate, the accuracy on the
faces found and counting misses as wrong, beside the model's accuracy on the 48x48 faces themselves;
then frames a second and p95 latency of a whole `live` run on faces.mp4. Decisions (live's default:
the most accurate model on PublicTest frames that keeps >= 60 fps and p95 <= 30 ms) read the
PublicTest figures only; PrivateTest is reported.
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

from common.stderr import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # before anything imports it loudly

from bench.live import cpu_description, end_to_end  # noqa: E402
from common.errors import UserError  # noqa: E402
from data.datasets import resolve_data_dir  # noqa: E402
from live.app import build_pipeline  # noqa: E402
from live.capture import quiet_opencv  # noqa: E402
from live.config import DEFAULT_MODEL, LiveConfig  # noqa: E402
from live.detector import Box, crop  # noqa: E402
from live.face_video import BENCH_FRAMINGS, read_frames, split_video  # noqa: E402

SPLITS = ("PublicTest", "PrivateTest")
GOALS = {"fps": 60, "latency_p95_ms": 30}


def found_faces(video: Path, meta: dict, detector) -> tuple[list, np.ndarray]:
    """The crop live classifies for each frame's face on the true box (None when the detector missed it)."""
    truth = Box(*meta["face_box_xywh"])
    crops, found = [], []
    for frame in read_frames(video):
        boxes = [b for b in detector.detect(frame) if b.iou(truth) > 0.3]
        best = max(boxes, key=lambda b: b.iou(truth), default=None)
        found.append(best is not None)
        if best is not None:
            crops.append(crop(frame, best).copy())
    return crops, np.array(found)


def accuracy(classifier, faces: list, labels: np.ndarray, batch: int = 256) -> float:
    predicted = np.concatenate([classifier.classify(faces[i:i + batch]).argmax(axis=1)
                                for i in range(0, len(faces), batch)])
    return float(np.mean(predicted == labels))


def path_figures(classifier, crops: list, found: np.ndarray, labels: np.ndarray) -> dict:
    correct_found = accuracy(classifier, crops, labels[found]) if found.any() else 0.0
    return {"detection_rate": round(float(found.mean()), 4), "accuracy_on_found": round(correct_found, 4),
            "accuracy_misses_wrong": round(correct_found * float(found.mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["models/emotion.h5", "models/emotion_live.h5"])
    parser.add_argument("--limit", type=int, default=None, help="the first N faces of each split (default: all)")
    parser.add_argument("--out", default=str(ROOT / "logs" / "live-bench"), help="folder for the rendered videos")
    parser.add_argument("--repeats", type=int, default=3, help="runs of live on faces.mp4 per model, for fps")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    quiet_opencv()
    data_dir = resolve_data_dir(args.data_dir)
    with np.load(data_dir / "fer2013.npz", allow_pickle=False) as archive:
        x, y, usage = archive["x"], archive["y"], archive["usage"]
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    pipelines = {model: build_pipeline(LiveConfig(model=model)) for model in args.models}
    detector = next(iter(pipelines.values())).detector  # one detector: its boxes do not depend on the model
    figures = {model: {"faces_48x48": {}, **{split: {} for split in SPLITS}} for model in args.models}
    for split in SPLITS:
        rows = np.flatnonzero(usage == split)[:args.limit]
        labels = y[rows].astype(np.int64)
        for model, pipeline in pipelines.items():
            figures[model]["faces_48x48"][split] = round(accuracy(pipeline.classifier, list(x[rows]), labels), 4)
        for framing in BENCH_FRAMINGS:
            video, meta = split_video(x, y, usage, split, framing, args.out, args.limit)
            crops, found = found_faces(video, meta, detector)
            for model, pipeline in pipelines.items():
                figures[model][split][framing] = path_figures(pipeline.classifier, crops, found, labels)
    for model in args.models:
        runs, _ = end_to_end(data_dir / "faces.mp4", model, args.repeats)
        figures[model]["faces_mp4"] = {"fps_median": statistics.median(r["fps"] for r in runs),
                                       "latency_p95_ms_median": statistics.median(r["latency_p95_ms"] for r in runs)}
    print(json.dumps({"faces_per_split": {s: int(min(np.sum(usage == s), args.limit or 10**9)) for s in SPLITS},
                      "framings": {k: list(v) for k, v in BENCH_FRAMINGS.items()}, "models": figures,
                      "goals": GOALS, "live_default": DEFAULT_MODEL, "choice": choose(figures),
                      "cpu_count": os.cpu_count(), **cpu_description(), "load_average_at_start": load_at_start,
                      "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}, indent=2))


def choose(figures: dict) -> str | None:
    """The model with the best PublicTest accuracy through the live path (misses wrong, mean over the
    framings) among those that keep real time on faces.mp4."""
    fast = {m: f for m, f in figures.items() if f["faces_mp4"]["fps_median"] >= GOALS["fps"]
            and f["faces_mp4"]["latency_p95_ms_median"] <= GOALS["latency_p95_ms"]}
    scores = {m: np.mean([v["accuracy_misses_wrong"] for v in f["PublicTest"].values()]) for m, f in fast.items()}
    return max(scores, key=scores.get) if scores else None


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
