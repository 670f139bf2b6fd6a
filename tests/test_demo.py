"""`python3 build.py demo` end to end, once, small: the files it promises, a .blend that reopens
with the animated rig, a BVH that parses, and pictures of the expected size."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from conftest import ENGINE_PYTHON, ROOT
from PIL import Image

from demo.__main__ import DEMO_CHECKPOINT
from demo.pictures import TITLE_HEIGHT

pytestmark = pytest.mark.slow

TILE = (160, 120)
SHEET_FRAMES = 4

# Run in a fresh bpy process: the .blend must open on its own, not only in the session that wrote it.
INSPECT_BLEND = """
import json, sys, bpy
import numpy as np
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
rig = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.animation_data and o.animation_data.action)
action = rig.animation_data.action
keyed = {}
for layer in action.layers:
    for strip in layer.strips:
        for bag in strip.channelbags:
            for fcurve in bag.fcurves:
                keyed.setdefault(fcurve.data_path, set()).update(round(p.co[0]) for p in fcurve.keyframe_points)
# The add-on is not registered here: its properties are read raw (Blender 5 keeps them apart from custom ones).
raw = rig.data.bl_system_properties_get() if hasattr(rig.data, "bl_system_properties_get") else rig.data
mapped = [pair["bone"] for pair in raw["mosa_mapping"]["pairs"] if pair.get("bone")]
deform = [bone.name for bone in rig.data.bones if bone.use_deform]

def pose(names):
    return np.array([np.array(rig.pose.bones[name].matrix) for name in names])

first, last = (int(frame) for frame in action.frame_range)
bpy.context.scene.frame_set(first)
start_mapped, start_deform = pose(mapped), pose(deform)
travel = {"mapped": 0.0, "deform": 0.0}
rest_lengths = np.array([rig.data.bones[name].length for name in deform])
stretch = 0.0  # how far any deforming bone's posed length strays from its rest length (a share)
for frame in range(first, last + 1, 4):
    bpy.context.scene.frame_set(frame)
    travel["mapped"] = max(travel["mapped"], float(np.abs(pose(mapped) - start_mapped).max()))
    travel["deform"] = max(travel["deform"], float(np.abs(pose(deform) - start_deform).max()))
    lengths = np.array([(rig.pose.bones[name].tail - rig.pose.bones[name].head).length for name in deform])
    stretch = max(stretch, float(np.abs(lengths / rest_lengths - 1).max()))
print(json.dumps({"action": action.name, "stored": "mosa" in action, "range": [first, last],
                  "keyed": {path: len(frames) for path, frames in keyed.items()}, "mapped": mapped, "travel": travel, "stretch": stretch,
                  "body": "body" in bpy.data.objects, "camera": bpy.context.scene.camera is not None}))
"""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    command = [
        sys.executable,
        str(ROOT / "build.py"),
        "demo",
        "a person walks forward",
        "--seed",
        "1",
        "--frames",
        "48",
        "--name",
        "walk",
        "--out",
        str(out),
        "--size",
        f"{TILE[0]}x{TILE[1]}",
        "--sheet-frames",
        str(SHEET_FRAMES),
        "--gif-fps",
        "5",
        "--device",
        "cpu",
    ]
    started = time.monotonic()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, f"the demo failed:\n{finished.stdout[-4000:]}\n{finished.stderr[-4000:]}"
    return out, finished.stdout, time.monotonic() - started


def test_demo_writes_what_it_promises_and_says_what_to_open(demo_run):
    out, stdout, _ = demo_run
    for name in ("walk.blend", "walk.bvh", "walk_sheet.png", "walk.gif"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{name} missing:\n{stdout}"
    assert DEMO_CHECKPOINT.is_file() and "the demo model has seen motions like this" in stdout
    assert f"Open {out / 'walk.blend'}" in stdout and "press Space" in stdout
    split = re.search(
        r"prompt to baked action: ([\d.]+) s = engine start ([\d.]+) s \+ generation ([\d.]+) s .*"
        r"\+ Blender side ([\d.]+) s",
        stdout,
    )
    assert split, stdout
    total, *parts = (float(value) for value in split.groups())
    assert abs(total - sum(parts)) < 0.02 and all(part > 0 for part in parts)  # the parts add up


def test_blend_reopens_with_the_animated_rig(demo_run):
    out, _, _ = demo_run
    inspected = subprocess.run(
        [ENGINE_PYTHON, "-c", INSPECT_BLEND, str(out / "walk.blend")], capture_output=True, text=True, timeout=300
    )
    assert inspected.returncode == 0, inspected.stderr[-3000:]
    blend = json.loads(inspected.stdout.strip().splitlines()[-1])
    assert blend["action"].startswith("MoSa: a person walks forward (seed 1)") and blend["stored"]
    assert blend["body"] and blend["camera"]
    first, last = blend["range"]
    assert first == 1 and abs(last - (1 + 47 / 20 * 24)) <= 1  # 48 frames at 20 fps, the scene's 24 fps
    keyed_bones = {path.split('"')[1] for path in blend["keyed"]}
    assert len(blend["mapped"]) >= 15 and set(blend["mapped"]) <= keyed_bones
    motion_keys = [
        count for path, count in blend["keyed"].items() if path.endswith(("rotation_quaternion", "location"))
    ]
    assert motion_keys and all(count >= last - first for count in motion_keys)  # a key on every frame
    # The keyed bones move, and so do the deforming bones the body follows (Rigify's constraints
    # must not hold them still).
    assert blend["travel"]["mapped"] > 0.05 and blend["travel"]["deform"] > 0.05, blend["travel"]
    assert blend["stretch"] < 0.01  # the body keeps its proportions: no limb pulled long by an IK target


def test_bvh_parses_into_the_canonical_motion(demo_run):
    from retarget import bvh

    out, _, _ = demo_run
    motion = bvh.read_bvh(out / "walk.bvh")
    assert motion.positions.shape == (48, 22, 3) and motion.fps == 20


def test_pictures_have_the_expected_size(demo_run):
    out, _, _ = demo_run
    sheet = Image.open(out / "walk_sheet.png")
    assert sheet.size == (SHEET_FRAMES * TILE[0], TITLE_HEIGHT + TILE[1])
    assert len(sheet.crop((0, TITLE_HEIGHT, *sheet.size)).getcolors(1 << 24)) > 20  # a render, not a blank
    gif = Image.open(out / "walk.gif")
    assert gif.size == (TILE[0] // 2, TILE[1] // 2) and gif.n_frames >= 10
