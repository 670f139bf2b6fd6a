"""The Blender side of a Generate, timed per stage: retarget (mapping, transfer, the check, the
resampling to the scene's rate), constraints (armature_io's solve) and keying (baking), on a
Mixamo-style rig and on Rigify's generated human, for 4 s and 9.8 s of motion; then the whole
Blender-side phase of Generate and of a 30-frame Regenerate Range through the operators' own
code (operators.generated_actions / regenerated_action). Runs in bpy (engine/bench.py starts
it in a process of its own); the motion is real capture (DeepMimic's walk), since the times do
not depend on what the motion is."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

SCENE_FPS = 30
SECONDS = (4.0, 9.8)
SPAN_FRAMES = 30


@dataclass
class Row:
    rig: str
    bones: int  # in the armature
    written: int  # bones keyed
    seconds: float  # of motion
    retarget: float
    constraints: float
    keying: float
    generate: float  # the whole Blender-side phase of Generate, through the operator's code
    regenerate: float | None  # the same for a 30-frame Regenerate Range (9.8 s only)


def mixamo_style_rig():
    """Mixamo's names on the canonical rest pose (Z up, facing -Y), no constraints."""
    import bpy
    import numpy as np

    from retarget import canonical

    rest = canonical.rest_positions() + [0.0, 0.95, 0.0]
    heads = np.stack([rest[:, 0], -rest[:, 2], rest[:, 1]], axis=1)
    names = ["mixamorig:" + name.replace("Toe", "ToeBase") for name in canonical.JOINT_NAMES]
    armature = bpy.data.armatures.new("mixamo")
    obj = bpy.data.objects.new("mixamo", armature)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for joint, name in enumerate(names):
        bone = armature.edit_bones.new(name)
        children = np.flatnonzero(canonical.PARENTS == joint)
        bone.head = heads[joint]
        bone.tail = heads[children[0]] if len(children) else heads[joint] + [0, 0, 0.08]
        if canonical.PARENTS[joint] >= 0:
            bone.parent = armature.edit_bones[names[canonical.PARENTS[joint]]]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def time_stages(obj, motion: dict) -> tuple[float, float, float, int]:
    """Seconds of (retarget, constraints, keying) for one motion, and the bones keyed."""
    import bpy
    import numpy as np

    from mosa_blender import armature_io, baking
    from mosa_blender.mapping_ops import armature_mapping
    from mosa_blender.tracks import PoseTracks
    from retarget import plausibility, resample, transfer

    started = time.perf_counter()
    skeleton, mapping = armature_mapping(obj)
    skeleton = mapping.moving_part(skeleton)
    posed = transfer.transfer(motion, skeleton, mapping)
    plausibility.check(skeleton, mapping, posed)
    mapped = time.perf_counter()
    posed, _ = armature_io.run_steps(armature_io.follow_constraints_steps(obj, skeleton, posed))
    solved = time.perf_counter()
    posed = resample.resample(posed, SCENE_FPS)
    tracks = PoseTracks(1 + np.arange(posed.frames), dict(posed.rotations), {posed.root_bone: posed.root_location})
    resampled = time.perf_counter()
    action = bpy.data.actions.new("bench")
    baking.bake_tracks(action, obj, tracks)
    keyed = time.perf_counter()
    bpy.data.actions.remove(action)
    return mapped - started + resampled - solved, solved - mapped, keyed - resampled, len(posed.rotations)


def time_phase(steps) -> float:
    """Seconds for an operator's Blender-side phase (a generator of slices), run to its end."""
    from mosa_blender.armature_io import run_steps

    started = time.perf_counter()
    run_steps(steps)
    return time.perf_counter() - started


def measure(repeats: int = 3) -> list[Row]:
    """Every rig and length; each figure the median of `repeats` runs after a warm-up."""
    import bpy

    import mosa_blender
    from demo.character import build_rig
    from engine.datasets import deepmimic
    from mosa_blender import operators
    from retarget.motion import CanonicalMotion

    bpy.ops.wm.read_homefile(use_empty=True)
    mosa_blender.register()
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = SCENE_FPS, 1
    walk = deepmimic.load_joints("walk", min_seconds=max(SECONDS))
    rows = []
    for rig_name, build in (("Mixamo-style", mixamo_style_rig), ("Rigify (generated)", build_rig)):
        obj = build()
        bpy.context.view_layer.objects.active = obj
        for seconds in SECONDS:
            frames = int(round(seconds * 20))
            motion = CanonicalMotion.from_positions(walk[:frames]).to_dict()
            time_stages(obj, motion)  # warm-up
            stages = [time_stages(obj, motion) for _ in range(repeats)]
            run = operators.JobRun(None, "", model="bench", state="done", result=[motion])
            scene.mosa.prompt, scene.mosa.variations, scene.mosa.place_variations = "a person walks", 1, "ACTIONS"
            generate = statistics.median(
                time_phase(operators.generated_actions(bpy.context, run)) for _ in range(repeats)
            )
            regenerate = None
            if seconds == max(SECONDS):
                scene.mosa.range_start, scene.mosa.range_end = 100, 100 + SPAN_FRAMES - 1
                regenerate = statistics.median(
                    time_phase(operators.regenerated_action(bpy.context, run)) for _ in range(repeats)
                )
            retarget, constraints, keying = (statistics.median(stage[i] for stage in stages) for i in range(3))
            rows.append(
                Row(
                    rig_name,
                    len(obj.data.bones),
                    stages[0][3],
                    seconds,
                    retarget,
                    constraints,
                    keying,
                    generate,
                    regenerate,
                )
            )
    mosa_blender.unregister()
    return rows


def table(rows: list[Row], repeats: int) -> str:
    lines = [
        f"## The Blender side (bpy {_bpy_version()}, scene at {SCENE_FPS} fps; median of {repeats} runs)",
        "",
        "| rig | bones (keyed) | s of motion | retarget s | constraints s | keying s | stages total s | "
        f"Generate's phase s | {SPAN_FRAMES}-frame Regenerate Range s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        regenerate = f"{r.regenerate:.3f}" if r.regenerate is not None else "-"
        lines.append(
            f"| {r.rig} | {r.bones} ({r.written}) | {r.seconds:.1f} | {r.retarget:.3f} | {r.constraints:.3f} | "
            f"{r.keying:.3f} | {r.retarget + r.constraints + r.keying:.3f} | {r.generate:.3f} | {regenerate} |"
        )
    notes = [
        "retarget: mapping, transfer with the foot lock, the plausibility check and the resampling to the scene's "
        "rate; constraints: armature_io.follow_constraints (numpy solve of the control rig, checked against "
        "Blender at one frame); keying: baking.bake_tracks into a new action",
        "Generate's phase and Regenerate Range: the operators' own Blender-side work on a finished job "
        "(operators.generated_actions / regenerated_action, run to the end), one variation",
    ]
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def _bpy_version() -> str:
    import bpy

    return bpy.app.version_string


def report(repeats: int = 3) -> str:
    """The table, measured in this process (which must be able to import bpy)."""
    return table(measure(repeats), repeats)
