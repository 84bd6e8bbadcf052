"""Fits live's face framing on PublicTest renderings; prints JSON (``--write`` keeps it in live/framing.json).

    python bench/live_tuning.py [--out logs/live-bench] [--limit N] [--write]

Every PublicTest face is rendered the way faces.mp4 was made, one frame a face, in two framings (the
faces.mp4 one and a smaller off-centre face; ``live.face_video.BENCH_FRAMINGS``). BlazeFace runs on
every frame with live's score threshold and no framing; on each face it finds (IoU > 0.3 with the true
box) the true FER2013 box gives the targets: its centre offset from the raw box's centre and its log
side ratio, in raw box sides. Two framings are compared on how well they reproduce the true box:
- ``fixed``: a widening and a lift (the medians of the targets), keypoints unused;
- ``keypoints``: least squares from the six keypoints' offsets (``live.detector.Framing``).
Each is scored on the half of the faces it was not fitted on (even / odd rows, both ways), and the
written weights are fitted on all of them. PrivateTest is never read here; ``bench/live_path.py``
reports the end-to-end accuracy on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from common.errors import UserError  # noqa: E402
from common.files import write_atomic  # noqa: E402
from data.datasets import resolve_data_dir  # noqa: E402
from live.detector import FRAMING_FILE, BlazeFaceDetector, Framing, RawFaces  # noqa: E402
from live.face_video import BENCH_FRAMINGS, read_frames, split_video  # noqa: E402


def detections(video: Path, meta: dict, detector: BlazeFaceDetector) -> tuple[RawFaces, np.ndarray, int]:
    """The raw detection on the true face of every frame where one is found, the targets, and the misses."""
    x, y, w, _ = meta["face_box_xywh"]
    true_cx, true_cy, true_side = x + w / 2, y + w / 2, float(w)
    found, targets, misses = [], [], 0
    for frame in read_frames(video):
        faces = detector.detect_raw(frame)
        overlap = [_iou(cx, cy, s, true_cx, true_cy, true_side) for cx, cy, s in zip(faces.cx, faces.cy, faces.side,
                                                                                  strict=True)]
        if not overlap or max(overlap) <= 0.3:
            misses += 1
            continue
        i = int(np.argmax(overlap))
        s = faces.side[i]
        found.append((faces.cx[i], faces.cy[i], s, faces.keypoints[i], faces.score[i]))
        targets.append(((true_cx - faces.cx[i]) / s, (true_cy - faces.cy[i]) / s, np.log(true_side / s)))
    raw = RawFaces(*(np.array([f[k] for f in found]) for k in range(5)))
    return raw, np.array(targets), misses


def _iou(cx, cy, s, tx, ty, ts) -> float:
    ix = max(0.0, min(cx + s / 2, tx + ts / 2) - max(cx - s / 2, tx - ts / 2))
    iy = max(0.0, min(cy + s / 2, ty + ts / 2) - max(cy - s / 2, ty - ts / 2))
    return ix * iy / (s * s + ts * ts - ix * iy)


def fit_fixed(targets: np.ndarray) -> Framing:
    dx, dy, log_side = np.median(targets, axis=0)
    zeros = (0.0,) * 12
    return Framing(((float(dx), *zeros), (float(dy), *zeros), (float(log_side), *zeros)))


def fit_keypoints(raw: RawFaces, targets: np.ndarray, ridge: float = 1e-3) -> Framing:
    features = Framing.features(raw)
    gram = features.T @ features + ridge * len(features) * np.diag([0.0] + [1.0] * (features.shape[1] - 1))
    weights = np.linalg.solve(gram, features.T @ targets).T
    return Framing(tuple(tuple(float(w) for w in row) for row in weights))


def errors(framing: Framing, raw: RawFaces, targets: np.ndarray) -> dict:
    """How far the framed box is from the true one: its side over the true side, its centre's distance
    in true sides."""
    predicted = Framing.features(raw) @ np.asarray(framing.weights).T
    scale = np.exp(predicted[:, 2] - targets[:, 2])
    shift = np.hypot(*(predicted[:, :2] - targets[:, :2]).T) / np.exp(targets[:, 2])
    return {"side_over_true_p5_p50_p95": [round(float(v), 3) for v in np.percentile(scale, [5, 50, 95])],
            "share_within_0.9_1.1": round(float(np.mean(np.abs(scale - 1) <= 0.1)), 3),
            "centre_error_p50_p95": [round(float(v), 3) for v in np.percentile(shift, [50, 95])]}


def held_out(fit, raw: RawFaces, targets: np.ndarray) -> dict:
    """``fit`` scored on the faces it did not see: fitted on even rows and scored on odd ones, and back;
    the two scores averaged."""
    even = np.arange(len(targets)) % 2 == 0
    scores = []
    for train, test in ((even, ~even), (~even, even)):
        framing = fit_keypoints(_rows(raw, train), targets[train]) if fit is fit_keypoints else fit(targets[train])
        scores.append(errors(framing, _rows(raw, test), targets[test]))
    return {key: np.round(np.mean([s[key] for s in scores], axis=0), 3).tolist() for key in scores[0]}


def _rows(raw: RawFaces, mask: np.ndarray) -> RawFaces:
    return RawFaces(raw.cx[mask], raw.cy[mask], raw.side[mask], raw.keypoints[mask], raw.score[mask])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "logs" / "live-bench"), help="folder for the rendered videos")
    parser.add_argument("--limit", type=int, default=None, help="the first N PublicTest faces (default: all)")
    parser.add_argument("--write", action="store_true", help="write the fitted weights to live/framing.json")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    with np.load(resolve_data_dir(args.data_dir) / "fer2013.npz", allow_pickle=False) as archive:
        x, y, usage = archive["x"], archive["y"], archive["usage"]
    detector = BlazeFaceDetector(framing=Framing.fixed())
    parts, per_framing = [], {}
    for name in BENCH_FRAMINGS:
        video, meta = split_video(x, y, usage, "PublicTest", name, args.out, args.limit)
        raw, targets, misses = detections(video, meta, detector)
        parts.append((raw, targets))
        per_framing[name] = {"faces": meta["n_segments"], "missed": misses}
    raw = RawFaces(*(np.concatenate([getattr(p[0], f) for p in parts]) for f in ("cx", "cy", "side", "keypoints",
                                                                                  "score")))
    targets = np.concatenate([p[1] for p in parts])
    if len(targets) < 50:
        raise UserError(f"BlazeFace found only {len(targets)} faces; pass a larger --limit")
    keypoints = fit_keypoints(raw, targets)
    fixed = fit_fixed(targets)
    result = {
        "split": "PublicTest", "framings": per_framing, "faces_fitted": int(len(targets)),
        "held_out": {"fixed": held_out(fit_fixed, raw, targets), "keypoints": held_out(fit_keypoints, raw, targets)},
        "fixed_expand": round(float(np.exp(fixed.weights[2][0])), 3), "fixed_lift": round(-fixed.weights[1][0], 3),
        "shipped": errors(Framing.load(), raw, targets),
    }
    if args.write:
        record = {"weights": [list(row) for row in keypoints.weights], "keypoints": "right_eye, left_eye, nose, "
                  "mouth, right_ear, left_ear", "made_by": "python bench/live_tuning.py --write",
                  "fitted_on": f"{len(targets)} PublicTest faces in {', '.join(BENCH_FRAMINGS)} framings",
                  "held_out": result["held_out"]["keypoints"]}
        write_atomic(FRAMING_FILE, json.dumps(record, indent=1) + "\n")
        result["written"] = str(FRAMING_FILE.relative_to(ROOT))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
