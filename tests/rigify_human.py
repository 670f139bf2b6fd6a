"""Rigify's human, generated once per test run and appended wherever a test needs it.

Generating the control rig takes about 10 s (twice that on a busy machine), and the Blender
tests need it several times on each bpy module. Appending the saved rig gives each test the
same objects: the rig's drivers, constraints, custom properties and widgets come with it.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from demo.character import build_rig

METARIG, RIG = "metarig", "rig"  # the names Rigify gives them in an empty file


def generate_file(path: Path) -> Path:
    """A .blend holding the demo's rig (Rigify's human metarig, hidden, and the rig it generates).

    The open file is left empty."""
    bpy.ops.wm.read_homefile(use_empty=True)
    rig = build_rig()
    assert rig.name == RIG and METARIG in bpy.data.objects, f"Rigify named its objects {list(bpy.data.objects.keys())}"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    bpy.ops.wm.read_homefile(use_empty=True)
    return path


def append(path: Path) -> tuple[bpy.types.Object, bpy.types.Object]:
    """The metarig (hidden, as the demo leaves it) and the generated rig appended to the open
    file's scene, the rig active and selected. The rig needs no Rigify add-on to pose and evaluate."""
    with bpy.data.libraries.load(str(path)) as (source, target):
        target.objects = [METARIG, RIG]
    metarig, rig = target.objects
    for obj in (metarig, rig):
        bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = rig
    rig.select_set(True)
    return metarig, rig
