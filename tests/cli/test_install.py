"""The installed command works from any folder: a wheel in a fresh virtual environment finds its shipped models."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import require_data

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("pyproject.toml", "README.md", "cli.py", "cli_config.py", "cli_help.py", "cli_options.py", "common",
                 "callbacks", "trainer", "data", "tasks", "live", "models")


def run(*args, cwd: Path, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment holding the trainlab wheel (not editable); its dependencies come from this one."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # a copy, so the build leaves nothing in the working tree
    source.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", source, cwd=tmp)
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).stdout.strip())
    # No network: the dependencies (TensorFlow, typer, ...) are this environment's, after the wheel's own files.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", next((tmp / "dist").glob("*.whl")), cwd=tmp)
    return venv


@pytest.mark.slow
@pytest.mark.realdata
def test_installed_live_finds_the_shipped_model_from_another_folder(installed, data_dir, tmp_path):
    require_data(data_dir, "faces.mp4")
    where = run(installed / "bin" / "python", "-c", "import cli, trainer.shipped as s; print(cli.__file__, s.PROJECT)",
                cwd=tmp_path).stdout
    assert str(ROOT) not in where and str(installed) in where
    result = run(installed / "bin" / "trainlab", "live", "--camera", data_dir / "faces.mp4", "--max-frames", "3",
                 "--plain", cwd=tmp_path)
    assert "3 frames from video" in result.stdout and "faces classified" in result.stdout
    assert list(tmp_path.iterdir()) == []
