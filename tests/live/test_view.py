import io

from rich.console import Console

from live.view import LiveState, PlainPrinter, Prediction, RichView, render
from tests.live.conftest import CLASSES


def prediction(face=1, emotion="happy", confidence=0.8):
    rest = (1 - confidence) / 6
    probabilities = {name: (confidence if name == emotion else rest) for name in CLASSES}
    return Prediction(1.25, 18, face, [220, 140, 200, 200], emotion, confidence, probabilities)


def capture_console(width=120):
    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None, record=True)


def test_the_view_shows_status_and_per_face_box_emotion_confidence_and_a_bar_per_class():
    console = capture_console()
    state = LiveState("video faces.mp4", frames=18, fps=71.5, latency_ms=9.2, latency_p95_ms=14.0, dropped=3,
                      predictions=(prediction(1, "happy", 0.8), prediction(2, "sad", 0.55)))
    console.print(render(state))
    text = console.export_text()
    assert "71.5 fps" in text and "p95  14.0" in text and "dropped 3" in text and "frames 18" in text
    assert "220 140 200 200" in text and "0.80" in text and "0.55" in text
    assert all(text.count(name) >= 2 for name in CLASSES)  # one bar per class for each of the two faces
    assert "█" * 16 in text  # 0.8 of a 20-cell bar


def test_the_view_says_when_no_face_is_in_view():
    console = capture_console()
    console.print(render(LiveState("camera 0", frames=5)))
    assert "no face in view" in console.export_text()


def test_the_rich_view_draws_the_newest_state_and_restores_the_cursor_on_stop():
    console = capture_console()
    view = RichView("camera 0", console=console, refresh_per_second=20)
    view.start()
    view.update(LiveState("camera 0", frames=7, predictions=(prediction(emotion="surprise"),)))
    view.stop()
    view.stop()  # a second stop (teardown after an exception) is harmless
    output = console.file.getvalue()
    assert "surprise" in output and "frames 7" in output
    assert output.rfind("\x1b[?25h") > output.rfind("\x1b[?25l") >= 0  # cursor hidden while live, shown after


def test_plain_output_is_one_line_per_face():
    stream = io.StringIO()
    printer = PlainPrinter(stream)
    printer.update(LiveState("camera 0", predictions=(prediction(1, "happy"), prediction(2, "fear", 0.4))))
    printer.update(LiveState("camera 0"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["1.250s", "frame", "18", "face", "1", "happy", "0.80"]
    assert lines[1].split()[4:] == ["2", "fear", "0.40"]
