"""The built extension installed the way a user does it (Install from Disk), for the demo and the bench."""

from __future__ import annotations

import sys
from pathlib import Path


def install_extension(archive: Path, repo_dir: Path):
    """Install the zip the way a user does (Install from Disk) into a local repository; the add-on's package."""
    import bpy

    bpy.ops.preferences.extension_repo_add(
        name="mosa_demo", type="LOCAL", use_custom_directory=True, custom_directory=str(repo_dir)
    )
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.custom_directory == str(repo_dir))
    if bpy.ops.extensions.package_install_files(filepath=str(archive), repo=repo.module, enable_on_install=True) != {
        "FINISHED"
    }:
        raise RuntimeError(f"Blender refused to install {archive}")
    return sys.modules[f"bl_ext.{repo.module}.mosa"]
