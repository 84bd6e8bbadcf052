"""faces.mp4 (14 one-second segments of real FER2013 PrivateTest faces) through `cli.py live --plain`.

These check that the pipeline works (every frame read, faces found, each label the model's own on the
crop live made); which model is more accurate is measured on every test face by bench/live_path.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from live.config import DEFAULT_MODEL
from live.evaluation import read_predictions, score_segments
from tests.conftest import require_data

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / DEFAULT_MODEL  # what `live` runs by default


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    from data.datasets import resolve_data_dir

    data_dir = resolve_data_dir()
    require_data(data_dir, "faces.mp4", "faces_video.json", "fer2013.npz")
    if not MODEL.exists():
        pytest.fail(f"{MODEL.relative_to(ROOT)} is missing: ship the emotion model (python cli.py fit emotion)")
    output = tmp_path_factory.mktemp("faces") / "preds.jsonl"
    command = [sys.executable, str(ROOT / "cli.py"), "live", "--camera", str(data_dir / "faces.mp4"), "--plain",
               "--smooth", "0", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300, stdin=subprocess.DEVNULL)
    meta = json.loads((data_dir / "faces_video.json").read_text())
    return result, read_predictions(output), meta, data_dir


@pytest.mark.realdata
def test_every_frame_is_read_and_each_face_printed_and_recorded(video_run):
    result, predictions, meta, _ = video_run
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith(f"{meta['n_frames']} frames from video") and "0 dropped" in lines[-1]
    assert len(lines) - 1 == len(predictions)
    assert {p["frame"] for p in predictions} <= set(range(meta["n_frames"]))


@pytest.mark.realdata
def test_faces_are_found_in_most_segments(video_run):
    _, predictions, meta, _ = video_run
    scores = score_segments(predictions, meta)
    assert scores["segments_detected"] >= 12, scores["segments"]


@pytest.mark.realdata
def test_each_label_is_the_models_own_prediction_on_the_crop_live_made(video_run):
    """Without smoothing, a recorded label is the model's top class on that frame's face crop: the video is
    decoded, cropped and preprocessed in live as the model's card says, and nothing else changes the label."""
    import cv2

    from live.classifier import EmotionClassifier
    from live.detector import Box, crop

    _, predictions, meta, data_dir = video_run
    capture, frames = cv2.VideoCapture(str(data_dir / "faces.mp4")), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    classifier = EmotionClassifier.from_model_card(MODEL)
    crops = [crop(frames[p["frame"]], Box(*p["box"])) for p in predictions]
    own = [classifier.classes[i] for i in classifier.classify(crops).argmax(axis=1)]
    assert own == [p["emotion"] for p in predictions]
    assert len(set(own)) > 1  # the faces of seven emotions do not all get one label
