"""`python cli.py live` as a user runs it: one subprocess per run, plain, in a pseudo-terminal, and failing."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.live.conftest import write_tiny_model, write_video
from tests.live.streams import StoppingStream, jpeg_frames

ROOT = Path(__file__).resolve().parents[2]


def live(*args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "live", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live_cli")
    return {"model": write_tiny_model(folder / "tiny.h5"), "wrong": write_tiny_model(folder / "wrong.h5", (32, 32, 1)),
            "video": write_video(folder / "grey.mp4"),
            "folder": folder}


def test_without_a_terminal_it_prints_plain_and_a_summary(assets):
    result = live("--camera", assets["video"], "--model", assets["model"], "--max-frames", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(f"8 frames from video {assets['video']}")
    assert "\x1b[" not in result.stdout  # no terminal codes in a pipe
    assert result.stderr == ""


def test_a_camera_that_cannot_open_is_one_line_and_a_non_zero_exit(assets):
    assert_one_line_error(live("--camera", "99", "--model", assets["model"]),
                          "camera 99 could not be opened; try --camera 0 (on Linux `ls /dev/video*` lists the "
                          "cameras), a video file such as --camera $TRAINLAB_DATA/faces.mp4, or a stream URL")


def test_a_model_with_the_wrong_input_shape_is_one_line_and_a_non_zero_exit(assets):
    assert_one_line_error(live("--camera", assets["video"], "--model", assets["wrong"]),
                          "takes input [32, 32, 1] but live feeds faces of [48, 48, 1]")


def test_a_stream_that_stops_mid_way_is_retried_then_ends_with_a_summary(assets):
    with StoppingStream(jpeg_frames(20)) as stream:
        started = time.monotonic()
        result = live("--camera", stream.url, "--model", assets["model"], "--plain")
        elapsed = time.monotonic() - started
    assert_one_line_error(result, f"stream {stream.url} stopped delivering frames and did not come back within 2 s")
    summary = re.search(r"; (\d+) frames from stream .* (\d+) dropped", result.stderr)
    assert int(summary[1]) + int(summary[2]) == 20  # every frame served was either shown or dropped as stale
    assert elapsed > 2  # it retried before giving up


def run_in_pty(args, interrupt_when: bytes | None = None, timeout=120):
    """Runs `cli.py live ARGS` with a pseudo-terminal as its terminal.

    Returns the exit code, everything written to the terminal, and whether the terminal's modes
    (echo, line editing) are as they were before the run.
    """
    controller, terminal = pty.openpty()
    termios.tcsetwinsize(terminal, (40, 120))
    modes_before = termios.tcgetattr(terminal)
    process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "live", *map(str, args)], cwd=ROOT,
                               stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    output, deadline, interrupted = b"", time.monotonic() + timeout, False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            output += os.read(controller, 65536)
        if interrupt_when and not interrupted and interrupt_when in output:
            process.send_signal(signal.SIGINT)
            interrupted = True
        if not ready and process.poll() is not None:
            break
    code = process.wait(timeout=30)
    modes_kept = termios.tcgetattr(terminal) == modes_before
    os.close(terminal)
    os.close(controller)
    return code, output.decode(errors="replace"), modes_kept


def test_on_a_terminal_it_shows_the_live_view_and_gives_the_terminal_back(assets):
    code, output, modes_kept = run_in_pty(["--camera", assets["video"], "--model", assets["model"],
                                           "--max-frames", "10"])
    assert code == 0, output
    assert modes_kept
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert "live video" in text and "frames 10" in text and "fps" in text  # the rich view's status line
    assert output.rfind("\x1b[?25h") > output.rfind("\x1b[?25l") >= 0  # the cursor is shown again
    assert "10 frames from video" in output.splitlines()[-1]


def test_ctrl_c_ends_cleanly_with_a_summary(assets):
    # A camera that never ends (a video could end before the interrupt lands on a busy machine).
    with StoppingStream(jpeg_frames(20), fps=30) as stream:
        code, output, modes_kept = run_in_pty(["--camera", stream.url, "--model", assets["model"]],
                                              interrupt_when=b"fps")
    assert code == 0, output
    assert modes_kept
    assert "Traceback" not in output
    assert "interrupted: " in output and "frames from stream" in output
    assert output.rfind("\x1b[?25h") > output.rfind("\x1b[?25l") >= 0
