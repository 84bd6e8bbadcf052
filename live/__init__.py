"""Real-time emotion recognition from a camera, a video file or a stream, in a rich terminal view."""

from live.config import DEFAULT_MODEL, LiveConfig

__all__ = ["DEFAULT_MODEL", "LiveConfig", "run_live"]


def __getattr__(name):
    # run_live brings NumPy, OpenCV and TFLite: loaded when used, so `live --help` stays instant.
    if name == "run_live":
        from live.app import run_live

        return run_live
    raise AttributeError(name)
