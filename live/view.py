"""What the user sees: a rich live view on a terminal, one plain line per classified face otherwise."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prediction:
    """One classified face in one frame: a line of the plain output and of ``--output``."""

    time_s: float  # since the run started
    frame: int
    face: int
    box: list[int]
    emotion: str
    confidence: float
    probabilities: dict[str, float]

    def to_record(self) -> dict:
        return {"time_s": round(self.time_s, 4), "frame": self.frame, "face": self.face, "box": self.box,
                "emotion": self.emotion, "confidence": round(self.confidence, 4),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}

    def plain_line(self) -> str:
        where = f"{self.time_s:8.3f}s  frame {self.frame:>5}  face {self.face:>3}"
        return f"{where}  {self.emotion:<9} {self.confidence:.2f}"


@dataclass(frozen=True)
class LiveState:
    """A snapshot the view renders; the loop replaces it whole each frame, so a render never sees a half update."""

    source: str
    frames: int = 0
    fps: float = 0.0
    latency_ms: float = 0.0
    latency_p95_ms: float = 0.0
    dropped: int = 0
    predictions: tuple[Prediction, ...] = field(default_factory=tuple)


def render(state: LiveState):
    """The live view: a status line, then per face its box, top emotion, confidence and a bar per class."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    status = Text.assemble(
        ("live ", "bold"), (state.source, "cyan"),
        f"  frames {state.frames}  ", (f"{state.fps:5.1f} fps", "bold green"),
        f"  latency {state.latency_ms:5.1f} ms (p95 {state.latency_p95_ms:5.1f})  dropped {state.dropped}",
    )
    if not state.predictions:
        return Group(status, Text("no face in view", style="dim"))
    faces = Table(show_header=True, header_style="bold", expand=False, box=None, padding=(0, 1))
    for column in ("face", "box (x y w h)", "emotion", "conf", "per class"):
        faces.add_column(column)
    for p in state.predictions:
        faces.add_row(str(p.face), " ".join(map(str, p.box)), Text(p.emotion, style="bold magenta"),
                      f"{p.confidence:.2f}", _class_bars(p))
    return Group(status, faces)


def _class_bars(prediction: Prediction):
    from rich.table import Table
    from rich.text import Text

    bars = Table.grid(padding=(0, 1))
    for name, value in prediction.probabilities.items():
        style = "magenta" if name == prediction.emotion else "blue"
        bars.add_row(name, Text("█" * round(value * 20) or "▏", style=style), f"{value:.2f}")
    return bars


class RichView:
    """One ``rich.live.Live`` refreshed at a fixed rate from the newest state; the loop never repaints it."""

    def __init__(self, source: str, console=None, refresh_per_second: float = 8) -> None:
        from rich.console import Console
        from rich.live import Live

        self.state = LiveState(source)
        self._running = False
        self._live = Live(get_renderable=lambda: render(self.state), console=console or Console(),
                          refresh_per_second=refresh_per_second, transient=False, redirect_stdout=False)

    def start(self) -> None:
        self._live.start()
        self._running = True

    def update(self, state: LiveState) -> None:
        self.state = state

    def stop(self) -> None:
        """Draws the last state and gives the terminal back (cursor shown); safe to call twice."""
        if self._running:
            self._running = False
            self._live.stop()


class PlainPrinter:
    """One line per classified face, for pipes, logs and ``--plain``."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def start(self) -> None:
        pass

    def update(self, state: LiveState) -> None:
        if state.predictions:
            self.stream.write("".join(p.plain_line() + "\n" for p in state.predictions))
            self.stream.flush()

    def stop(self) -> None:
        self.stream.flush()


class NoView:
    """Nothing on screen (benchmarks); predictions still go to ``--output``."""

    def start(self) -> None:
        pass

    def update(self, state: LiveState) -> None:
        pass

    def stop(self) -> None:
        pass
