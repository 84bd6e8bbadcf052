"""Frame capture on its own thread, so decoding never waits on inference.

A camera or stream keeps only its newest frame: a frame the consumer did not take in time is
overwritten and counted as dropped, so the view never lags behind the scene. A video file is not
live, so its frames are handed over one by one (none dropped), read as fast as the consumer takes them.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

# What OpenCV's FFmpeg back end commonly decodes; a folder given as --camera is searched for one.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source, counting dropped frames
    image: object  # HxWx3 BGR uint8
    captured: float  # time.perf_counter() when it was handed over: decoded (live) or taken from the file


@dataclass(frozen=True)
class Source:
    """What ``--camera`` names: a device index, a stream URL or a video file."""

    text: str

    @property
    def kind(self) -> str:
        if self.text.strip().isdigit():
            return "camera"
        return "stream" if "://" in self.text else "file"

    @property
    def is_live(self) -> bool:
        return self.kind != "file"

    def describe(self) -> str:
        return f"{'video' if self.kind == 'file' else self.kind} {self.text}"

    def open(self):
        """An opened cv2.VideoCapture, or a UserError naming the fix."""
        import cv2

        if self.kind == "file" and Path(self.text).is_dir():
            raise UserError(f"{self.text} is a folder, not a video file; {_video_in(Path(self.text))}"
                            "--camera 0 for a camera, or a stream URL")
        if self.kind == "file" and not Path(self.text).is_file():
            raise UserError(f"video file {self.text} does not exist; "
                            "pass --camera 0 for a camera, a video path or a URL")
        capture = _quietly(lambda: cv2.VideoCapture(int(self.text) if self.kind == "camera" else self.text))
        if not capture.isOpened():
            capture.release()
            other_camera = "--camera 1" if self.text.strip() == "0" else "--camera 0"
            hint = {"camera": f"try {other_camera} (on Linux `ls /dev/video*` lists the cameras), a video file "
                              "such as --camera $TRAINLAB_DATA/faces.mp4, or a stream URL",
                    "stream": "check the URL and that the stream is up",
                    "file": "it is not a video OpenCV can decode; convert it to mp4"}[self.kind]
            raise UserError(f"{self.describe()} could not be opened; {hint}")
        return capture


def _video_in(folder: Path) -> str:
    """The fix for a folder given as a video: a video inside it, when it holds one."""
    readable = os.access(folder, os.R_OK | os.X_OK)
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if readable else []
    return f"pass a video in it, e.g. --camera {videos[0]}, or " if videos else "pass a video file in it, "


def _quietly(action):
    """Runs an OpenCV call with its own warnings off: a failed open is reported as one line by us."""
    import cv2

    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return action()
    finally:
        logging.setLogLevel(previous)


class FrameGrabber:
    """Reads ``source`` on a daemon thread; ``next_frame()`` hands the consumer the newest frame.

    A live source that stops delivering is reopened until ``retry_s`` has passed without a frame;
    then the grabber ends and ``stalled`` says so.
    """

    def __init__(self, source: Source, retry_s: float = 2.0) -> None:
        self.source = source
        self.retry_s = retry_s
        self.dropped = 0
        self.stalled = False
        self.error: str | None = None
        self._capture = source.open()
        self._slot: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read_all, name="frame-grabber", daemon=True)

    def start(self) -> FrameGrabber:
        self._thread.start()
        return self

    def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; None once the source has ended (or after ``timeout``)."""
        with self._changed:
            self._changed.wait_for(lambda: self._slot is not None or self._ended, timeout)
            frame, self._slot = self._slot, None
            self._changed.notify_all()
            return frame

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.ident is None:
            self._capture.release()
        else:
            # The reader releases the capture itself: releasing it under a blocked read could crash the decoder.
            self._thread.join(timeout=2.0)

    def _read_all(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                ok, image = self._capture.read()
                if not ok:
                    if not self.source.is_live or not self._reconnect():
                        break
                    continue
                self._hand_over(index, image)
                index += 1
        except Exception as error:  # noqa: BLE001  (a decoder failure ends the run with its message)
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self._capture.release()
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _hand_over(self, index: int, image) -> None:
        with self._changed:
            if self.source.is_live:
                self.dropped += self._slot is not None
            else:
                self._changed.wait_for(lambda: self._slot is None or self._stop.is_set())
            self._slot = Frame(index, image, time.perf_counter())
            self._changed.notify_all()

    def _reconnect(self) -> bool:
        """Tries to reopen a live source for ``retry_s`` seconds; False when it did not come back."""
        deadline = time.monotonic() + self.retry_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            time.sleep(min(0.2, self.retry_s))
            self._capture.release()
            try:
                self._capture = self.source.open()
                return True
            except UserError:
                continue
        self.stalled = not self._stop.is_set()
        return False


def quiet_opencv() -> None:
    """OpenCV's and FFmpeg's own log lines would break the one-line error contract and the live view."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
