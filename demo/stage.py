"""Ground, camera and Workbench renders of the demo's animated character.

Workbench, because it renders a frame in about a tenth of a second headless on a CPU, where
EEVEE or Cycles would take minutes for the handful of frames the pictures need.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

GROUND_COLOUR = (0.55, 0.57, 0.6, 1.0)
LINE_COLOUR = (0.35, 0.37, 0.4, 1.0)
VIEW_DIRECTION = np.array([0.55, -1.0, 0.3])  # camera seen from the character's front left, a little above
FIELD_OF_VIEW = np.radians(40.0)


def build_ground(centre: np.ndarray, half_size: float) -> None:
    """A floor plane with a darker line every metre, so travel and foot contacts read in a still."""
    centre = np.array([np.round(centre[0]), np.round(centre[1]), 0.0])
    bpy.ops.mesh.primitive_plane_add(size=2 * half_size, location=centre.tolist())
    ground = bpy.context.active_object
    ground.name, ground.color = "ground", GROUND_COLOUR
    lines = int(half_size)
    for axis in (0, 1):
        for step in range(-lines, lines + 1):
            location = centre.copy()
            location[axis] += step
            location[2] = 0.001
            bpy.ops.mesh.primitive_plane_add(size=1.0, location=location.tolist())
            line = bpy.context.active_object
            line.name, line.color = "ground line", LINE_COLOUR
            line.scale = (0.01, 2 * half_size, 1.0) if axis == 0 else (2 * half_size, 0.01, 1.0)


def motion_bounds(rig: bpy.types.Object, frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest corner of every deforming bone's joints over the frames (world space)."""
    scene = bpy.context.scene
    points = []
    for frame in frames:
        scene.frame_set(frame)
        world = np.array(rig.matrix_world)
        for pose_bone in rig.pose.bones:
            if pose_bone.bone.use_deform:
                for point in (pose_bone.head, pose_bone.tail):
                    points.append((world @ np.append(np.array(point), 1.0))[:3])
    points = np.array(points)
    return points.min(axis=0), points.max(axis=0)


def frame_camera(low: np.ndarray, high: np.ndarray, aspect: float, margin: float = 0.2) -> bpy.types.Object:
    """A camera that keeps the whole box (all the motion) in view, looking at its centre."""
    centre = (low + high) / 2
    radius = np.linalg.norm(high - low) / 2 + margin
    half_angle = FIELD_OF_VIEW / 2 if aspect >= 1 else np.arctan(np.tan(FIELD_OF_VIEW / 2) * aspect)
    direction = VIEW_DIRECTION / np.linalg.norm(VIEW_DIRECTION)
    data = bpy.data.cameras.new("camera")
    data.angle = FIELD_OF_VIEW
    camera = bpy.data.objects.new("camera", data)
    bpy.context.scene.collection.objects.link(camera)
    camera.location = (centre + direction * radius / np.sin(half_angle)).tolist()
    # Look at the centre: the camera's -Z points along -direction, its Y stays up.
    from mathutils import Vector

    camera.rotation_euler = Vector((-direction).tolist()).to_track_quat("-Z", "Y").to_euler()
    bpy.context.scene.camera = camera
    return camera


def use_workbench(width: int, height: int) -> None:
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    scene.render.image_settings.file_format = "PNG"
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "OBJECT"
    shading.show_shadows, shading.shadow_intensity = True, 0.4
    shading.show_cavity = True
    shading.background_type = "WORLD"
    world = scene.world or bpy.data.worlds.new("world")
    scene.world = world
    world.color = (0.9, 0.92, 0.95)


def render_frames(frames: list[int], folder: Path) -> list[Path]:
    """Render each frame to folder/frame_NNNN.png with the scene's camera and settings."""
    scene = bpy.context.scene
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in frames:
        scene.frame_set(frame)
        path = folder / f"frame_{frame:04d}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        paths.append(path)
    return paths
