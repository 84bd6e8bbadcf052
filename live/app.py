"""`live`: frames from a camera, video or stream, faces found, classified, smoothed and shown."""

from __future__ import annotations

import json
import time
from array import array
from collections import deque
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import publish, temp_file_beside
from live.capture import Frame, FrameGrabber, Source, quiet_opencv
from live.classifier import EmotionClassifier
from live.config import LiveConfig
from live.detector import crop, make_detector
from live.tracker import FaceTracker
from live.view import LiveState, NoView, PlainPrinter, Prediction, RichView


class PredictionRecorder:
    """Writes predictions as JSON lines to a temporary file, renamed into place when the run ends."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._handle, self._tmp = temp_file_beside(self.path)

    def write(self, predictions) -> None:
        for prediction in predictions:
            self._handle.write(json.dumps(prediction.to_record()) + "\n")

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
            publish(self._tmp, self.path)


class RunStats:
    """Frame counts and per-frame latency (capture to prediction), for the view and the summary.

    The view's figures cover recent frames only, so a run of hours costs the same per frame as the first
    minute; the summary's p95 is over every frame (4 bytes each).
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.frames = 0
        self.faces = 0
        self.latencies_ms = array("f")
        self._recent = deque(maxlen=30)  # the view's fps: the last 30 frames
        self._recent_latencies = deque(maxlen=300)  # the view's p95: the last 300 frames

    def add(self, frame: Frame, faces: int) -> None:
        now = time.perf_counter()
        latency = (now - frame.captured) * 1e3
        self.frames += 1
        self.faces += faces
        self.latencies_ms.append(latency)
        self._recent_latencies.append(latency)
        self._recent.append(now)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.frames else 0.0

    @property
    def recent_fps(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        return (len(self._recent) - 1) / max(self._recent[-1] - self._recent[0], 1e-9)

    def last_latency(self) -> float:
        return self.latencies_ms[-1] if self.latencies_ms else 0.0

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0

    def recent_latency(self, q: float) -> float:
        return float(np.percentile(self._recent_latencies, q)) if self._recent_latencies else 0.0


class LivePipeline:
    """Detect, classify in one batch, match and smooth: one frame in, its predictions out."""

    def __init__(self, detector, classifier: EmotionClassifier, tracker: FaceTracker) -> None:
        self.detector, self.classifier, self.tracker = detector, classifier, tracker

    def warm_up(self, shape=(480, 640, 3)) -> None:
        """Builds the interpreters' buffers and traces the Keras function before the clock starts."""
        blank = np.full(shape, 128, np.uint8)
        self.detector.detect(blank)
        self.classifier.classify([blank[:64, :64]])

    def process(self, frame: Frame, time_s: float) -> list[Prediction]:
        boxes = self.detector.detect(frame.image)
        probabilities = self.classifier.classify([crop(frame.image, box) for box in boxes])
        tracks = self.tracker.update(boxes, probabilities)
        classes = self.classifier.classes
        return [Prediction(time_s, frame.index, t.id, t.box.as_list(), classes[t.top], float(t.probabilities[t.top]),
                           {name: float(p) for name, p in zip(classes, t.probabilities, strict=True)})
                for t in tracks]


def build_pipeline(config: LiveConfig) -> LivePipeline:
    """The detector, classifier and tracker ``config`` asks for: what live runs, and what the benchmarks measure."""
    classifier = EmotionClassifier.from_model_card(config.model, threads=config.classifier_threads)
    detector = make_detector(config.detector, config.min_face_score)
    return LivePipeline(detector, classifier, FaceTracker(config.smooth))


def run_live(config: LiveConfig, console=None) -> str:
    """Runs until the source ends, ``max_frames``, or Ctrl-C; returns a one-line summary.

    Raises UserError for a source or model that can't be used, and for a live source that stopped
    mid-way (its message carries the summary).
    """
    quiet_opencv()
    pipeline = build_pipeline(config)
    classifier = pipeline.classifier
    pipeline.warm_up()
    source = Source(config.camera)
    grabber = FrameGrabber(source, retry_s=config.retry_s)
    view = _make_view(config, source, console)
    recorder = PredictionRecorder(config.output) if config.output else None
    stats, interrupted = RunStats(), False
    try:
        view.start()
        grabber.start()
        _loop(config, grabber, pipeline, view, recorder, stats)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        view.stop()
        grabber.stop()
        if recorder:
            recorder.close()
    summary = _summary(config, source, grabber, stats, classifier, interrupted)
    if grabber.error or grabber.stalled:
        reason = grabber.error or f"stopped delivering frames and did not come back within {config.retry_s:g} s"
        raise UserError(f"{source.describe()} {reason}; {summary}")
    return summary


def _make_view(config: LiveConfig, source: Source, console):
    view = config.resolved_view(console.file if console is not None else None)
    if view == "rich":
        return RichView(source.describe(), console=console)
    return PlainPrinter(console.file if console is not None else None) if view == "plain" else NoView()


def _loop(config, grabber, pipeline, view, recorder, stats) -> None:
    while config.max_frames is None or stats.frames < config.max_frames:
        frame = grabber.next_frame()
        if frame is None:
            return
        predictions = pipeline.process(frame, time.perf_counter() - stats.started)
        stats.add(frame, len(predictions))
        if recorder:
            recorder.write(predictions)
        view.update(LiveState(grabber.source.describe(), stats.frames, stats.recent_fps, stats.last_latency(),
                              stats.recent_latency(95), grabber.dropped, tuple(predictions)))


def _summary(config, source, grabber, stats, classifier, interrupted) -> str:
    text = (f"{'interrupted: ' if interrupted else ''}{stats.frames} frames from {source.describe()} in "
            f"{stats.elapsed_s:.1f} s, {stats.fps:.1f} fps, latency p95 {stats.latency(95):.1f} ms, "
            f"{grabber.dropped} dropped, {stats.faces} faces classified ({config.detector} + {classifier.backend})")
    return text + (f"; predictions in {config.output}" if config.output else "")
