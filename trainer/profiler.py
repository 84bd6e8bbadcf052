"""``--profiler simple``: wall-clock seconds per section of a run, as Lightning's SimpleProfiler reports.

With the profiler on, the Trainer fetches each batch outside the compiled step (so data loading can be
timed apart from the step); off, every section is a shared no-op context and costs nothing measurable.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

_NOTHING = contextlib.nullcontext()


class NoProfiler:
    enabled = False

    def section(self, name: str):
        return _NOTHING

    def summary(self) -> dict:
        return {}


class SimpleProfiler(NoProfiler):
    """Seconds and calls per named section; sections may nest (validation includes its callbacks)."""

    enabled = True

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def section(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1

    def summary(self) -> dict:
        return {name: {"seconds": round(self.seconds[name], 4), "calls": self.calls[name]} for name in self.seconds}


def profile_table(summary: dict, total: float | None = None) -> str:
    """A markdown table of a profile summary, slowest section first."""
    lines = ["| section | seconds | calls | mean ms |", "|---|---:|---:|---:|"]
    for name, row in sorted(summary.items(), key=lambda item: -item[1]["seconds"]):
        mean = 1000 * row["seconds"] / max(1, row["calls"])
        lines.append(f"| {name} | {row['seconds']:.3f} | {row['calls']} | {mean:.2f} |")
    if total is not None:
        lines.append(f"| fit (total) | {total:.3f} | 1 | {1000 * total:.2f} |")
    return "\n".join(lines)


def make_profiler(name: str) -> NoProfiler:
    return SimpleProfiler() if name == "simple" else NoProfiler()
