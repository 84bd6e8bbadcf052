import io
import json

import numpy as np
import pytest

from common.errors import UserError
from live import LiveConfig, run_live
from live.app import LivePipeline
from live.capture import Frame
from live.classifier import EmotionClassifier
from live.detector import Box
from live.tracker import FaceTracker
from tests.live.conftest import CLASSES


def test_run_live_reads_a_video_to_its_end_and_records_to_jsonl(tmp_path, small_video, tiny_model):
    output = tmp_path / "out" / "preds.jsonl"
    summary = run_live(LiveConfig(camera=str(small_video), model=str(tiny_model), view="none", output=str(output)))
    assert summary.startswith(f"12 frames from video {small_video}")
    assert "0 dropped" in summary and f"predictions in {output}" in summary
    assert output.exists() and output.read_text() == ""  # plain grey frames: no face, no prediction
    assert sorted(p.name for p in output.parent.iterdir()) == ["preds.jsonl"]  # no temporary file left


def test_max_frames_stops_early(small_video, tiny_model):
    summary = run_live(LiveConfig(camera=str(small_video), model=str(tiny_model), view="none", max_frames=5))
    assert summary.startswith("5 frames from video")


class FixedDetector:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image):
        return self.boxes


def test_the_pipeline_classifies_each_detected_face_and_keeps_its_id_across_frames(tiny_model):
    boxes = [Box(10, 10, 60, 60), Box(100, 20, 50, 50)]
    pipeline = LivePipeline(FixedDetector(boxes), EmotionClassifier.from_model_card(tiny_model), FaceTracker(0.6))
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    first = pipeline.process(Frame(0, image, 0.0), 0.0)
    second = pipeline.process(Frame(1, image, 0.0), 0.1)
    assert [p.face for p in first] == [p.face for p in second] == [1, 2]
    for p in second:
        assert p.emotion in CLASSES and p.frame == 1
        assert p.confidence == max(p.probabilities.values())
        assert abs(sum(p.probabilities.values()) - 1) < 1e-4
    assert json.loads(json.dumps(second[0].to_record()))["box"] == [10, 10, 60, 60]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"smooth": 1.0}, "--smooth must be at least 0 and below 1, got 1.0; e.g. --smooth 0.6"),
    ({"max_frames": 0}, "--max-frames must be at least 1, got 0; or leave it out to run until the end"),
    ({"detector": "yolo"}, "--detector 'yolo' is unknown; use one of blazeface, haar"),
])
def test_bad_settings_are_refused_before_anything_opens(overrides, message):
    with pytest.raises(UserError, match=message):
        run_live(LiveConfig(camera="definitely-missing.mp4", model="missing.h5", **overrides))


def test_a_missing_video_or_model_is_a_user_error_naming_it(tmp_path, small_video, tiny_model):
    with pytest.raises(UserError, match="video file .*nope.mp4 does not exist; pass --camera 0"):
        run_live(LiveConfig(camera=str(tmp_path / "nope.mp4"), model=str(tiny_model), view="none"))
    with pytest.raises(UserError, match="model .*absent.h5 does not exist"):
        run_live(LiveConfig(camera=str(small_video), model=str(tmp_path / "absent.h5"), view="none"))


def test_without_a_terminal_the_view_is_plain():
    assert LiveConfig().resolved_view(io.StringIO()) == "plain"
    assert LiveConfig(plain=True, view="auto").resolved_view(io.StringIO()) == "plain"
    assert LiveConfig(view="rich").resolved_view(io.StringIO()) == "rich"
