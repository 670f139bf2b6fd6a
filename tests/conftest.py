"""Shared fixtures: where the real reference data lives, and the project root on sys.path."""

from __future__ import annotations

import os
import sys
from importlib import metadata
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


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, shared_data) -> Path:
    """The demo dataset (HumanML3D layout), built once from the real clips for the tests that read it."""
    from engine.datasets.build import BuildConfig, build_dataset

    out = tmp_path_factory.mktemp("demo-data")
    build_dataset(BuildConfig(out=out, shared_data=shared_data))
    return out


@pytest.fixture(scope="session")
def rigify_file(tmp_path_factory) -> Path:
    """Rigify's human generated into its control rig once per run (tests/rigify_human.py)."""
    from tests.rigify_human import generate_file

    return generate_file(tmp_path_factory.mktemp("rigify") / "rigify_human.blend")


# The engine subprocess always runs on the main environment's Python, also while the Blender
# tests run a second time on the 4.5 LTS module (whose environment has no torch).
ENGINE_PYTHON = os.environ.get("MOSA_ENGINE_PYTHON", sys.executable)
BLENDER_ONLY = os.environ.get("MOSA_BLENDER_ONLY") == "1"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """On the LTS run, collect only the test files that drive Blender."""
    if BLENDER_ONLY and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return "import bpy" not in collection_path.read_text()
    return None


def pytest_report_header(config) -> str:
    try:
        return f"bpy module: {metadata.version('bpy')}; engine python: {ENGINE_PYTHON}"
    except metadata.PackageNotFoundError:
        return "bpy module: not installed here"


EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session, exitstatus) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """Leave the 4.x bpy module without its exit-time destructors: once Rigify has generated a rig,
    bpy 4.5 deadlocks in them (its delayed-close thread waits on a condition a static destructor
    has already destroyed) and the run would never end. The report is complete by now."""
    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.version < (5, 0, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash.get(EXIT_STATUS, 1))
