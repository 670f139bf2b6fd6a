"""The demo's actor: Rigify's human metarig generated into a full control rig, wearing a simple
body of tapered tubes (one per deforming bone, rigidly weighted to it) so the motion is visible
in a quick Workbench render."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from demo.body_shapes import sphere, tube

# Cross-section half-widths (along the bone's X, along its Z) at the head and tail of each body
# bone, in metres, for Rigify's human (about 2 m tall). Side suffixes (.L/.R) are dropped first.
BODY_PARTS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "DEF-spine": ((0.15, 0.10), (0.14, 0.09)),
    "DEF-spine.001": ((0.14, 0.09), (0.14, 0.09)),
    "DEF-spine.002": ((0.14, 0.09), (0.16, 0.10)),
    "DEF-spine.003": ((0.17, 0.10), (0.12, 0.08)),
    "DEF-spine.004": ((0.05, 0.05), (0.05, 0.05)),
    "DEF-spine.005": ((0.05, 0.05), (0.05, 0.05)),
    "DEF-thigh": ((0.085, 0.085), (0.07, 0.07)),
    "DEF-thigh.001": ((0.07, 0.07), (0.055, 0.055)),
    "DEF-shin": ((0.055, 0.055), (0.05, 0.05)),
    "DEF-shin.001": ((0.05, 0.05), (0.04, 0.04)),
    "DEF-foot": ((0.04, 0.035), (0.045, 0.02)),
    "DEF-toe": ((0.045, 0.02), (0.04, 0.015)),
    "DEF-shoulder": ((0.04, 0.04), (0.045, 0.045)),
    "DEF-upper_arm": ((0.05, 0.05), (0.045, 0.045)),
    "DEF-upper_arm.001": ((0.045, 0.045), (0.04, 0.04)),
    "DEF-forearm": ((0.04, 0.04), (0.035, 0.035)),
    "DEF-forearm.001": ((0.035, 0.035), (0.03, 0.03)),
    "DEF-hand": ((0.045, 0.015), (0.04, 0.012)),
}
HEAD_BONE = "DEF-spine.006"
SKIN_COLOUR = (0.85, 0.55, 0.38, 1.0)


@dataclass
class Character:
    rig: bpy.types.Object
    body: bpy.types.Object


def _part_key(bone_name: str) -> str:
    for side in (".L", ".R"):
        bone_name = bone_name.replace(side, "")
    return bone_name


def build_rig() -> bpy.types.Object:
    """Rigify's human metarig, generated into the control rig animators actually use."""
    import addon_utils

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    metarig = bpy.context.active_object
    bpy.ops.pose.rigify_generate()
    rig = bpy.context.active_object
    metarig.hide_viewport = metarig.hide_render = True
    return rig


def build_body(rig: bpy.types.Object) -> bpy.types.Object:
    """One mesh of tubes and a head sphere, each part weighted fully to its bone, deformed by the rig."""
    vertices, faces, groups = [], [], []
    offset = 0
    for bone in rig.data.bones:
        radii = BODY_PARTS.get(_part_key(bone.name))
        if radii is not None:
            part = tube(np.array(bone.matrix_local), bone.length, *radii)
        elif bone.name == HEAD_BONE:
            part = sphere((np.array(bone.head_local) + np.array(bone.tail_local)) / 2, 0.6 * bone.length)
        else:
            continue
        part_vertices, part_faces = part
        vertices.append(part_vertices)
        faces.extend(tuple(index + offset for index in face) for face in part_faces)
        groups.append((bone.name, range(offset, offset + len(part_vertices))))
        offset += len(part_vertices)
    mesh = bpy.data.meshes.new("body")
    mesh.from_pydata(np.concatenate(vertices).tolist(), [], faces)
    mesh.update()
    body = bpy.data.objects.new("body", mesh)
    bpy.context.scene.collection.objects.link(body)
    for bone_name, indices in groups:
        body.vertex_groups.new(name=bone_name).add(list(indices), 1.0, "REPLACE")
    body.parent = rig
    body.modifiers.new("rig", "ARMATURE").object = rig
    body.color = SKIN_COLOUR
    return body


def build_character() -> Character:
    rig = build_rig()
    body = build_body(rig)
    bpy.context.view_layer.objects.active = rig
    rig.select_set(True)
    return Character(rig=rig, body=body)
