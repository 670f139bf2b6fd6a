"""Shared fixtures: where the real reference data lives, and the project root on sys.path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The read-only reference data sits beside the clone (../shared/data), in CI too.
SHARED_DATA = Path(os.environ.get("MOSA_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "humanml3d_skeleton.json").exists():
        pytest.skip(f"reference data not found at {SHARED_DATA} (set MOSA_SHARED_DATA)")
    return SHARED_DATA
