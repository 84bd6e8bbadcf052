"""Face boxes: the crop past a frame's edge, the framing map from BlazeFace's box and keypoints, BlazeFace itself."""

from __future__ import annotations

import numpy as np
import pytest

from live.detector import KEYPOINTS, BlazeFaceDetector, Box, Framing, RawFaces, crop
from tests.conftest import require_data


def raw_face(cx=100.0, cy=100.0, side=80.0, keypoints=None) -> RawFaces:
    points = np.zeros((1, len(KEYPOINTS), 2)) + [cx, cy] if keypoints is None else np.asarray(keypoints)[None]
    return RawFaces(np.array([cx]), np.array([cy]), np.array([side]), points, np.array([0.9]))


def test_a_box_past_the_frame_edge_is_padded_with_the_edge_pixels_not_clipped():
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    face = crop(image, Box(-2, 7, 6, 6))
    assert face.shape == (6, 6)  # the box's framing, not the 4x3 part inside the frame
    np.testing.assert_array_equal(face[:3, 2:], image[7:10, 0:4])
    np.testing.assert_array_equal(face[3:, 2:], np.repeat(image[9:10, 0:4], 3, axis=0))  # below: the last row again
    np.testing.assert_array_equal(face[:3, :2], np.repeat(image[7:10, 0:1], 2, axis=1))  # left: the first column
    np.testing.assert_array_equal(crop(image, Box(1, 1, 3, 3)), image[1:4, 1:4])  # inside: the pixels as they are


def test_a_fixed_framing_widens_and_lifts_the_raw_box():
    cx, cy, side = Framing.fixed(expand=1.25, lift=0.1).boxes(raw_face())
    assert (cx[0], cy[0], side[0]) == pytest.approx((100.0, 92.0, 100.0))


def test_the_shipped_framing_moves_the_box_with_the_keypoints():
    framing = Framing.load()
    assert np.asarray(framing.weights).shape == (3, 1 + 2 * len(KEYPOINTS))
    eyes_high = [[85, 80], [115, 80], [100, 100], [100, 115], [70, 90], [130, 90]]
    eyes_low = [[85, 95], [115, 95], [100, 110], [100, 122], [70, 100], [130, 100]]
    high, low = framing.boxes(raw_face(keypoints=eyes_high)), framing.boxes(raw_face(keypoints=eyes_low))
    assert all(np.isfinite(v).all() for v in (*high, *low))
    assert high[1][0] != pytest.approx(low[1][0])  # the same raw box, framed by where the face's features are


def test_no_face_gives_no_box():
    assert Framing.load().boxes(RawFaces(*(np.zeros((0,) + shape) for shape in ((), (), (), (6, 2), ()))))[0].size == 0


@pytest.mark.realdata
def test_blazeface_frames_a_rendered_publictest_face_close_to_its_true_box():
    from data.datasets import resolve_data_dir
    from live.face_video import FACE_BOX, face_frame

    data_dir = resolve_data_dir()
    require_data(data_dir, "fer2013.npz")
    with np.load(data_dir / "fer2013.npz", allow_pickle=False) as archive:
        rows = np.flatnonzero(archive["usage"] == "PublicTest")[:20]
        faces = archive["x"][rows]
    detector, truth = BlazeFaceDetector(), Box(*FACE_BOX)
    overlaps = [max((b.iou(truth) for b in detector.detect(face_frame(face))), default=0.0) for face in faces]
    assert np.median(overlaps) > 0.7, overlaps
