"""``--max-time``: a wall-clock budget for fit, checked at every step boundary (one clock read per step)."""

from __future__ import annotations

import time

from common.errors import UserError


class TimeBudget:
    """Seconds allowed for fit, counting what earlier sessions of a resumed run already used."""

    def __init__(self, seconds: float | None, label: str | None = None, used_before: float = 0.0) -> None:
        self.seconds, self.label, self.used_before = seconds, label, used_before
        self._started: float | None = None

    def start(self) -> None:
        self._started = time.perf_counter()
        if self.seconds is not None and self.used_before >= self.seconds:
            raise UserError(f"this run already used its whole --max-time {self.label}; give a new --max-time "
                            "to continue it")

    @property
    def used(self) -> float:
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self.used_before + running

    def expired(self) -> bool:
        return self.seconds is not None and self.used >= self.seconds

    def state_dict(self) -> dict:
        return {"max_time": self.label, "used_seconds": round(self.used, 3)}

    def resumed(self, state: dict | None) -> TimeBudget:
        """The budget of a resumed run: the same --max-time continues with the time left, a new one starts afresh."""
        if not state or state.get("max_time") != self.label or self.seconds is None:
            return self
        return TimeBudget(self.seconds, self.label, float(state["used_seconds"]))
