"""Starts the real `tensorboard` server on 127.0.0.1 for a test and stops it afterwards."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def serve_tensorboard(logdir: str | Path, timeout: float = 60.0):
    """Yields the server's base URL once its HTTP API answers; the server is killed on exit."""
    port = _free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
               "--port", str(port), "--load_fast", "false", "--reload_interval", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"tensorboard exited: {server.stderr.read().decode()[-2000:]}")
            try:
                get_json(f"{url}/data/runs")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"tensorboard did not answer on {url} within {timeout} s") from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_for(url: str, predicate, timeout: float = 30.0):
    """Polls a JSON endpoint until ``predicate(data)`` holds (the server loads event files lazily)."""
    deadline = time.monotonic() + timeout
    while True:
        data = get_json(url)
        if predicate(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.5)
