"""Wall time of the commands that must answer at once: `--help`, `tasks`, and one task's `fit TASK --help`.

Each command runs in a fresh process, ``--runs`` times; the median and fastest wall time and the median
CPU time (user + system, which a busy machine does not stretch) are reported with the load average and
the CPU model. Goal: ``--help`` under 1 s. Prints JSON.

    python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (("--help",), ("tasks",), ("fit", "emotion", "--help"), ("fit", "deep-mlp", "--help"))


def seconds(args: tuple[str, ...]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU time (user + system) is what load cannot stretch."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], check=True, capture_output=True, cwd=ROOT)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    results = {}
    for args in COMMANDS:
        walls, cpus = zip(*(seconds(args) for _ in range(runs)), strict=True)
        results[" ".join(args)] = {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
                                   "median_cpu_s": round(statistics.median(cpus), 3)}
    print(json.dumps({"commands": results, "runs": runs, "load_average": os.getloadavg(), "cpu": cpu_model(),
                      "goal": "--help median under 1 s"}, indent=2))


if __name__ == "__main__":
    main()
