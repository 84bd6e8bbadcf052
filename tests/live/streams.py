"""Local MJPEG-over-HTTP streams: one that serves a few frames, then goes away (a camera that stops mid-way),
and one that serves frames at a camera's pace until its client leaves (a camera that never ends)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def jpeg_frames(count: int, size=(240, 320)) -> list[bytes]:
    import cv2

    frames = []
    for i in range(count):
        image = np.full((*size, 3), 40 + 5 * i % 200, np.uint8)
        frames.append(cv2.imencode(".jpg", image)[1].tobytes())
    return frames


class StoppingStream:
    """Serves ``frames`` to the first client, then refuses every later one (the stream is gone). With ``fps``, it
    serves them again and again at that pace until the client leaves: a run ends only when it is stopped."""

    def __init__(self, frames: list[bytes], fps: float | None = None) -> None:
        served = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (the http.server API)
                if served.is_set():
                    self.send_error(503, "stream ended")
                    return
                served.set()
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while True:
                        for jpeg in frames:
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                            self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                            if fps:
                                self.wfile.flush()
                                time.sleep(1 / fps)
                        if not fps:
                            break
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client left
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StoppingStream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
