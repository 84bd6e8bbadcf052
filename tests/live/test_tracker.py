import numpy as np

from live.detector import Box
from live.tracker import FaceTracker


def one_hot(index, n=7):
    row = np.zeros(n, np.float32)
    row[index] = 1
    return row


def test_overlapping_boxes_keep_their_face_id_and_a_new_box_gets_a_new_one():
    tracker = FaceTracker(smooth=0.5)
    first = tracker.update([Box(0, 0, 100, 100), Box(300, 0, 100, 100)], np.stack([one_hot(0), one_hot(1)]))
    moved = tracker.update([Box(305, 5, 100, 100), Box(5, 0, 100, 100), Box(150, 300, 80, 80)],
                           np.stack([one_hot(1), one_hot(0), one_hot(2)]))
    assert [t.id for t in first] == [1, 2]
    assert [t.id for t in moved] == [2, 1, 3]


def test_smoothing_holds_the_label_through_one_odd_frame_and_zero_turns_it_off():
    smoothed, raw = FaceTracker(smooth=0.6), FaceTracker(smooth=0.0)
    box = Box(10, 10, 100, 100)
    labels = []
    for label in (3, 3, 3, 0, 3):
        probabilities = one_hot(label)[None]
        labels.append((smoothed.update([box], probabilities)[0].top, raw.update([box], probabilities)[0].top))
    assert [s for s, _ in labels] == [3, 3, 3, 3, 3]
    assert [r for _, r in labels] == [3, 3, 3, 0, 3]


def test_smoothed_probabilities_are_the_exponential_average():
    tracker = FaceTracker(smooth=0.6)
    box = Box(0, 0, 50, 50)
    tracker.update([box], one_hot(0)[None])
    track = tracker.update([box], one_hot(1)[None])[0]
    np.testing.assert_allclose(track.probabilities[:2], [0.6, 0.4], rtol=1e-6)
    assert track.frames_seen == 2


def test_a_face_gone_longer_than_max_missed_is_forgotten():
    tracker = FaceTracker(max_missed=2)
    tracker.update([Box(0, 0, 50, 50)], one_hot(0)[None])
    for _ in range(3):
        tracker.update([], np.zeros((0, 7)))
    assert tracker.tracks == []
    assert tracker.update([Box(0, 0, 50, 50)], one_hot(0)[None])[0].id == 2
