"""Faces followed across frames by box overlap, their class probabilities smoothed so labels don't flicker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from live.detector import Box


@dataclass
class Track:
    id: int
    box: Box
    probabilities: np.ndarray  # smoothed
    frames_seen: int = 1
    missed: int = 0  # consecutive frames without a matching box

    @property
    def top(self) -> int:
        return int(np.argmax(self.probabilities))


class FaceTracker:
    """Greedy IoU matching of this frame's boxes to the faces seen before, then exponential smoothing.

    ``smooth`` is the weight of the past: 0 shows each frame's own prediction, 0.6 (the default) lets a
    new expression take over within about 3 frames (0.6^3 = 0.2) while one odd frame barely moves it.
    A face unseen for ``max_missed`` frames is forgotten, so a new person gets a new id.
    """

    def __init__(self, smooth: float = 0.6, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.smooth, self.min_iou, self.max_missed = smooth, min_iou, max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: list[Box], probabilities: np.ndarray) -> list[Track]:
        """The faces of this frame, in the order of ``boxes``, each with its smoothed probabilities."""
        matches = self._match(boxes)
        current = []
        for i, box in enumerate(boxes):
            track = matches.get(i)
            if track is None:
                track = Track(self._next_id, box, np.asarray(probabilities[i], np.float32).copy())
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.box, track.missed = box, 0
                track.frames_seen += 1
                track.probabilities = self.smooth * track.probabilities + (1 - self.smooth) * probabilities[i]
            current.append(track)
        for track in self.tracks:
            if all(track is not c for c in current):
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return current

    def _match(self, boxes: list[Box]) -> dict[int, Track]:
        pairs = sorted(((box.iou(track.box), i, track) for i, box in enumerate(boxes) for track in self.tracks),
                       key=lambda pair: -pair[0])
        matched: dict[int, Track] = {}
        for overlap, i, track in pairs:
            if overlap < self.min_iou:
                break
            if i not in matched and all(track is not t for t in matched.values()):
                matched[i] = track
        return matched
