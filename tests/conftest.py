"""Shared fixtures: a clean, seeded Keras session per test and the real data directory."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message=".*__array__.*copy keyword.*", category=DeprecationWarning)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def keras_session():
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


@pytest.fixture
def data_dir() -> Path:
    """The real data directory. In CI a missing data set fails the test; elsewhere it is skipped."""
    from data.datasets import resolve_data_dir

    return resolve_data_dir()


def require_data(directory: Path, *names: str) -> None:
    missing = [n for n in names if not (directory / n).exists()]
    if not missing:
        return
    message = f"{', '.join(missing)} not in {directory}; set TRAINLAB_DATA to the data folder"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def trainer_config(tmp_path):
    """A TrainerConfig writing under tmp_path, quiet, logging every step."""
    from trainer import TrainerConfig

    def make(**overrides):
        values = {"logdir": str(tmp_path / "logs"), "progress": "none", "log_every_n_steps": 1, "max_epochs": 2}
        values.update(overrides)
        return TrainerConfig(**values)

    return make


@pytest.fixture(scope="session", autouse=True)
def working_tree_untouched():
    """Tests write under tmp_path only, so that parallel workers share nothing: a file that a test adds to or
    changes in the working tree (an export over models/, a stray file) fails the session. Runs under logs/
    count too where logs/ starts empty (a fresh clone, as in CI); elsewhere a training job may be writing there."""
    fresh = not any(p.name != ".gitkeep" for p in (ROOT / "logs").glob("*"))
    before = _working_tree_changes(ignored=fresh)
    yield
    after = _working_tree_changes(ignored=fresh)
    if before is not None and after is not None:
        left = sorted(after - before)
        assert not left, f"tests changed the working tree: {', '.join(left)}; write under tmp_path instead"


def _working_tree_changes(ignored: bool) -> set[str] | None:
    """``git status`` lines without the caches Python and the tools keep; None where git cannot tell."""
    command = ["git", "status", "--porcelain", "--untracked-files=all", *(["--ignored"] if ignored else [])]
    try:
        status = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode != 0:
        return None
    caches = ("__pycache__", ".pytest_cache", ".ruff_cache", ".venv/", ".egg-info/", "build/")
    return {line for line in status.stdout.splitlines() if not any(part in line for part in caches)}
