import time

import numpy as np
import pytest

from common.errors import UserError
from live.capture import FrameGrabber, Source


def test_sources_are_told_apart_by_their_text():
    kinds = [Source(t).kind for t in ("0", "12", "rtsp://host/cam", "clip.mp4")]
    assert kinds == ["camera", "camera", "stream", "file"]


def test_a_folder_given_as_a_video_is_named_a_folder_with_a_video_in_it_to_pass(tmp_path):
    with pytest.raises(UserError) as empty:
        Source(str(tmp_path) + "/").open()
    assert str(empty.value) == (f"{tmp_path}/ is a folder, not a video file; pass a video file in it, --camera 0 "
                                "for a camera, or a stream URL")
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(UserError, match=f"pass a video in it, e.g. --camera {tmp_path / 'clip.mp4'}, or --camera 0"):
        Source(str(tmp_path)).open()


def test_a_video_file_hands_over_every_frame_in_order_without_drops(small_video):
    grabber = FrameGrabber(Source(str(small_video))).start()
    frames = []
    while (frame := grabber.next_frame(timeout=5)) is not None:
        time.sleep(0.01)  # a consumer slower than the decoder must still get every frame of a file
        frames.append(frame)
    grabber.stop()
    assert [f.index for f in frames] == list(range(12))
    assert [round(float(f.image.mean()) / 10) for f in frames] == list(range(12))
    assert grabber.dropped == 0 and not grabber.stalled


class FakeCamera:
    """A capture that delivers ``count`` frames at ``interval`` seconds, then fails like an unplugged camera."""

    def __init__(self, count, interval=0.0):
        self.count, self.interval, self.read_frames = count, interval, 0

    def isOpened(self):  # noqa: N802  (cv2's API)
        return True

    def read(self):
        if self.read_frames >= self.count:
            return False, None
        time.sleep(self.interval)
        self.read_frames += 1
        return True, np.full((4, 4, 3), self.read_frames, np.uint8)

    def release(self):
        pass


def plug_cameras(monkeypatch, *cameras):
    """Source.open hands out ``cameras`` one by one, then fails like a camera that is gone."""
    opens = iter(cameras)

    def reopen(self):
        try:
            return next(opens)
        except StopIteration:
            raise UserError("gone") from None

    monkeypatch.setattr(Source, "open", reopen)


def test_a_live_source_keeps_only_the_newest_frame_and_counts_the_dropped(monkeypatch):
    plug_cameras(monkeypatch, FakeCamera(count=30, interval=0.002))
    grabber = FrameGrabber(Source("0"), retry_s=0.2).start()
    taken = []
    while (frame := grabber.next_frame(timeout=5)) is not None:
        taken.append(frame.index)
        time.sleep(0.02)  # ten camera frames per frame processed
    grabber.stop()
    assert taken[-1] == 29  # the newest frame is never lost
    assert len(taken) < 30 and grabber.dropped == 30 - len(taken)
    assert grabber.stalled and grabber.error is None  # the camera failed and could not be reopened


def test_a_stalled_live_source_is_reopened_within_retry_s(monkeypatch):
    plug_cameras(monkeypatch, FakeCamera(count=3), FakeCamera(count=2))
    grabber = FrameGrabber(Source("0"), retry_s=0.5).start()
    frames = []
    while (frame := grabber.next_frame(timeout=5)) is not None:
        frames.append(frame)
        time.sleep(0.005)
    grabber.stop()
    assert len(frames) + grabber.dropped == 5
    assert grabber.stalled


def test_a_missing_file_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="missing.mp4 does not exist"):
        Source(str(tmp_path / "missing.mp4")).open()
