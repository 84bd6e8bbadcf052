"""Labelled face videos: rows picked per emotion, frames as faces.mp4's, a description live can score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.errors import UserError
from live.evaluation import score_segments
from live.face_video import FACE_BOX, face_frame, pick_rows, write_face_video
from tests.conftest import require_data


def synthetic_split():
    labels = np.array([3, 0, 0, 1, 2, 3, 4, 5, 6, 1, 2, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6])
    usage = np.array(["Training"] + ["PublicTest"] * 20)
    return labels, usage


def test_rows_are_the_first_of_each_emotion_in_the_split_emotion_by_emotion():
    labels, usage = synthetic_split()
    # Row 0 is a happy Training face: not in PublicTest, so row 5 is the first happy one.
    assert pick_rows(labels, usage, "PublicTest", per_emotion=2) == [1, 3, 4, 5, 6, 7, 8, 2, 9, 10, 17, 11, 12, 13]
    with pytest.raises(UserError, match="PublicTest has 2 happy faces, fewer than --per-emotion 3"):
        pick_rows(labels, usage, "PublicTest", per_emotion=3)


def test_video_reads_back_with_the_face_in_its_box_and_scores_like_faces_mp4(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    labels = np.array([5, 3, 0])
    meta = write_face_video(faces, labels, [2, 0], tmp_path / "tune.mp4", "PublicTest")

    assert json.loads((tmp_path / "tune.json").read_text()) == meta
    assert [(s["emotion"], s["fer2013_row"], s["start_frame"]) for s in meta["segments"]] == [("angry", 2, 0),
                                                                                                ("surprise", 0, 15)]
    capture, frames = cv2.VideoCapture(str(tmp_path / "tune.mp4")), []
    while (read := capture.read())[0]:
        frames.append(read[1])
    assert len(frames) == meta["n_frames"] == 30 and frames[0].shape == (480, 640, 3)
    x, y, w, h = FACE_BOX
    expected = face_frame(faces[0]).astype(int)
    assert np.abs(frames[20].astype(int) - expected)[y:y + h, x:x + w].mean() < 12  # mp4v is lossy
    assert np.abs(frames[20].astype(int) - expected)[y:y + h, x:x + w].mean() < \
        np.abs(frames[5].astype(int) - expected)[y:y + h, x:x + w].mean() / 2  # and the first face is another
    assert abs(frames[0][:100].mean() - 128) < 6  # grey background (YUV round trip shifts it a little)
    recording = [{"frame": f, "box": [x, y, w, h], "emotion": "angry" if f < 15 else "happy"} for f in range(30)]
    scores = score_segments(recording, meta)
    assert scores["segments_detected"] == 2 and scores["segment_accuracy"] == 0.5


@pytest.mark.realdata
def test_privatetest_rebuilt_with_this_tooling_is_faces_mp4_frame_for_frame(data_dir, tmp_path):
    import cv2

    require_data(data_dir, "fer2013.npz", "faces.mp4", "faces_video.json")
    with np.load(data_dir / "fer2013.npz", allow_pickle=False) as archive:
        x, y, usage = archive["x"], archive["y"], archive["usage"]
    shipped = json.loads((data_dir / "faces_video.json").read_text())
    rows = pick_rows(y, usage, "PrivateTest")
    assert rows == [s["fer2013_row"] for s in shipped["segments"]]
    write_face_video(x, y, rows, tmp_path / "private.mp4", "PrivateTest")
    ours, theirs = cv2.VideoCapture(str(tmp_path / "private.mp4")), cv2.VideoCapture(str(data_dir / "faces.mp4"))
    frames = 0
    while True:
        (ok, a), (ok_theirs, b) = ours.read(), theirs.read()
        assert ok == ok_theirs
        if not ok:
            break
        assert np.array_equal(a, b)
        frames += 1
    assert frames == shipped["n_frames"]
    tuning = pick_rows(y, usage, "PublicTest")
    assert set(usage[tuning]) == {"PublicTest"} and not set(tuning) & set(rows)
