"""The models shipped with trainlab, found from any folder: in a checkout or in an installed wheel.

``models/`` sits beside the ``trainer`` package in both (the wheel carries it as package data), so a
relative ``models/...`` path that does not exist in the working folder is looked up there.
"""

from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def find_model(path: str | Path) -> Path:
    """``path`` itself when it exists or is absolute; else the shipped file of that relative path, if any."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    shipped = PROJECT / path
    return shipped if shipped.exists() else path
