"""The models shipped with trainlab, found from any folder: in a checkout or in an installed wheel.

``models/`` sits beside the ``trainer`` package in both (the wheel carries it as package data), so a
relative ``models/...`` path that does not exist in the working folder is looked up there.
"""

from __future__ import annotations

import json
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def find_model(path: str | Path) -> Path:
    """``path`` itself when it exists or is absolute; else the shipped file of that relative path, if any."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    shipped = PROJECT / path
    return shipped if shipped.exists() else path


def shipped_models(task: str | None = None) -> list[str]:
    """The shipped ``models/*.h5`` as one passes them to --model; ``task``: only those whose card names that task."""
    found = []
    for path in sorted((PROJECT / "models").glob("*.h5")):
        try:
            card = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            card = {}
        if task is None or (isinstance(card, dict) and card.get("task") == task):
            found.append(f"models/{path.name}")
    return found
