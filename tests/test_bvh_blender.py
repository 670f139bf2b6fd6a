"""BVH files through Blender's own importer land on the same joint positions (real bpy)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from engine import representation
from engine.datasets import real_clips
from retarget import bvh
from retarget.motion import CanonicalMotion


def blender_positions(path: Path, names: list[str]) -> np.ndarray:
    """Import with Blender's BVH importer and read pose-bone heads per frame, back in the file's Y-up axes."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(
        filepath=str(path),
        axis_forward="-Z",
        axis_up="Y",
        global_scale=1.0,
        frame_start=1,
        use_fps_scale=False,
        update_scene_fps=False,
        update_scene_duration=True,
    )
    armature = next(obj for obj in bpy.context.scene.objects if obj.type == "ARMATURE")
    frames = bvh.read_clip(path).frames
    positions = np.zeros((frames, len(names), 3))
    for frame in range(frames):
        bpy.context.scene.frame_set(1 + frame)
        for j, name in enumerate(names):
            head = armature.matrix_world @ armature.pose.bones[name].head
            positions[frame, j] = (head.x, head.z, -head.y)  # Blender Z-up, -Y forward -> file Y-up, +Z forward
    return positions


def test_blender_reads_the_template_as_our_reader_does(shared_data):
    path = shared_data / "humanml3d_template.bvh"
    clip = bvh.read_clip(path)
    error = np.abs(blender_positions(path, clip.names) - clip.positions()).max()
    print(f"template: Blender vs our reader {error * 1000:.5f} mm")
    assert error < 1e-3


def test_written_clips_import_into_blender_within_a_millimetre(shared_data, tmp_path):
    clips = dict(real_clips(shared_data))
    sources = {
        "aistpp": clips["aistpp_gBR_sBM_cAll_d04_mBR0_ch01"],
        "jump_normalized": representation.normalize_joints(clips["deepmimic_jump"]),
        "cartwheel": clips["deepmimic_cartwheel"],
        "walk_from_features": representation.features_to_motion(
            representation.joints_to_features(clips["deepmimic_walk"])
        ).positions,
        "template_motion": bvh.read_bvh(shared_data / "humanml3d_template.bvh").positions[::3],
    }
    for name, positions in sources.items():
        motion = CanonicalMotion.from_positions(positions)
        path = tmp_path / f"{name}.bvh"
        bvh.write_bvh(path, motion)
        imported = blender_positions(path, motion.joint_names)
        error = np.abs(imported - motion.positions).max()
        print(f"{name}: {motion.frames} frames, Blender import within {error * 1000:.5f} mm")
        assert error < 1e-3, f"{name}: {error * 1000:.3f} mm"
