"""Real-time emotion recognition from a camera, a video file or a stream, in a rich terminal view."""

from live.app import LiveConfig, run_live

__all__ = ["LiveConfig", "run_live"]
