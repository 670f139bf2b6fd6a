"""Settings that save with the .blend: the prompt and options on the scene, the mapping on the armature,
the takes on the rig's object."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)


class MOSA_PG_job(bpy.types.PropertyGroup):
    """One recent job, for the panel's list."""

    job_id: StringProperty()
    kind: StringProperty()  # generate | edit
    prompt: StringProperty()
    state: StringProperty()


class MOSA_PG_take(bpy.types.PropertyGroup):
    """One take of a rig: an action MoSa made for it (or replaced on it)."""

    action: PointerProperty(type=bpy.types.Action, name="Action")


class MOSA_PG_takes(bpy.types.PropertyGroup):
    """The rig's takes, for the panel's list: what it has been given, to switch between."""

    items: CollectionProperty(type=MOSA_PG_take)
    active_index: IntProperty()


class MOSA_PG_shot_row(bpy.types.PropertyGroup):
    """One row of the Prompt Timeline: what happens next, and for how long."""

    prompt: StringProperty(name="Prompt", description="What the character does in this part of the shot")
    seconds: FloatProperty(
        name="Length",
        description="Seconds this part lasts (any length: longer parts take several windows)",
        default=4.0,
        min=0.2,
        max=600.0,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )


class MOSA_PG_settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", description="What the character should do")
    seconds: FloatProperty(
        name="Length",
        description="Motion length in seconds (2 to 9.8, in steps of 0.2)",
        default=4.0,
        min=2.0,
        max=9.8,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )
    seed: IntProperty(name="Seed", default=0, min=0)
    variations: IntProperty(
        name="Variations", description="How many motions to sample (seeds seed, seed+1, ...)", default=1, min=1, max=8
    )
    place_variations: EnumProperty(
        name="Variations",
        items=[
            ("ACTIONS", "Actions", "Each variation is an action of its own; the first is assigned"),
            ("NLA", "NLA Strips", "Each variation also gets an NLA track, strips one after another"),
        ],
        default="ACTIONS",
    )
    guidance: FloatProperty(
        name="Guidance", description="Classifier-free guidance scale", default=4.0, min=0.0, max=20.0
    )
    temperature: FloatProperty(name="Temperature", default=1.0, min=0.05, max=3.0)
    # The paper's sampling defaults: drop the least likely 80% of codes, then nucleus 0.95.
    top_k: FloatProperty(
        name="Top-k",
        description="Fraction of the least likely codes dropped before sampling (0: none)",
        default=0.8,
        min=0.0,
        max=0.99,
    )
    top_p: FloatProperty(name="Top-p", description="Nucleus sampling mass (1: off)", default=0.95, min=0.05, max=1.0)
    smooth: BoolProperty(
        name="Smooth",
        description="Mix codes (Gumbel-softmax) instead of picking one: smoother, less varied",
        default=False,
    )
    range_start: IntProperty(name="Start", description="First frame to regenerate")
    range_end: IntProperty(name="End", description="Last frame to regenerate")
    seam_frames: IntProperty(
        name="Seam", description="Frames inside the range blended towards the source", default=4, min=0, max=30
    )
    foot_lock: BoolProperty(name="Foot Lock", description="Pin feet while they touch the ground", default=True)
    in_place: BoolProperty(name="In Place", description="Keep the root over the origin", default=False)
    shot_rows: CollectionProperty(type=MOSA_PG_shot_row)
    shot_index: IntProperty()
    shot_source: EnumProperty(
        name="Shot From",
        items=[
            ("ROWS", "Rows", "The Prompt Timeline's rows, one after another"),
            ("MARKERS", "Markers", "Timeline markers named with prompts, each lasting until the next marker"),
        ],
        default="ROWS",
    )
    extend_seconds: FloatProperty(
        name="Add",
        description="Seconds Extend adds before or after the action",
        default=4.0,
        min=0.2,
        max=600.0,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )


class MOSA_PG_session(bpy.types.PropertyGroup):
    """What this Blender session's engine and jobs are doing: on the WindowManager, so it is never
    saved into the .blend (a file reopened elsewhere showed "running (40%)" and dead job ids)."""

    status: StringProperty(name="Status", default="engine not started")
    progress: FloatProperty(min=0.0, max=1.0)
    jobs: CollectionProperty(type=MOSA_PG_job)


class MOSA_PG_bone_pair(bpy.types.PropertyGroup):
    """One canonical joint and the bone it drives ('' when unmapped)."""

    joint: StringProperty(name="Joint")
    bone: StringProperty(name="Bone")


class MOSA_PG_mapping(bpy.types.PropertyGroup):
    automatic: BoolProperty(
        name="Automatic Mapping",
        default=True,
        description="Find the bones by their names or the rig's structure when the list is empty; "
        "off: use only the bones mapped by hand",
    )
    family: StringProperty(name="Family")
    confidence: FloatProperty(name="Confidence", min=0.0, max=1.0)
    pairs: CollectionProperty(type=MOSA_PG_bone_pair)
    active_index: IntProperty()


CLASSES = (
    MOSA_PG_job,
    MOSA_PG_take,
    MOSA_PG_takes,
    MOSA_PG_shot_row,
    MOSA_PG_settings,
    MOSA_PG_session,
    MOSA_PG_bone_pair,
    MOSA_PG_mapping,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.mosa = PointerProperty(type=MOSA_PG_settings)
    bpy.types.WindowManager.mosa_session = PointerProperty(type=MOSA_PG_session)
    bpy.types.Armature.mosa_mapping = PointerProperty(type=MOSA_PG_mapping)
    bpy.types.Object.mosa_takes = PointerProperty(type=MOSA_PG_takes)


def unregister() -> None:
    del bpy.types.Object.mosa_takes
    del bpy.types.Armature.mosa_mapping
    del bpy.types.WindowManager.mosa_session
    del bpy.types.Scene.mosa
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
