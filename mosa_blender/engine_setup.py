"""Commands that set up the engine's own Python: a venv under the add-on's user folder, then pip.

Plain Python (no bpy) so the commands and the log location are tested without Blender; the
operator runs them one after another in a subprocess and shows the log's last line as progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "engine-requirements.txt"


def venv_python(user_dir: Path) -> Path:
    """Where the engine venv's Python lives inside the add-on's user folder."""
    scripts = "Scripts/python.exe" if sys.platform == "win32" else "bin/python"
    return Path(user_dir) / "engine-venv" / scripts


def setup_commands(base_python: str, user_dir: Path) -> list[list[str]]:
    """Create the venv, upgrade pip, install the engine requirements (each its own step)."""
    if not base_python:
        raise ValueError("no Python to build the engine venv from; set one with Python 3.10 or newer")
    venv_dir = Path(user_dir) / "engine-venv"
    python = str(venv_python(user_dir))
    return [
        [base_python, "-m", "venv", str(venv_dir)],
        [python, "-m", "pip", "install", "--upgrade", "pip"],
        [python, "-m", "pip", "install", "-r", str(REQUIREMENTS)],
    ]


def setup_log(user_dir: Path) -> Path:
    return Path(user_dir) / "engine-setup.log"
