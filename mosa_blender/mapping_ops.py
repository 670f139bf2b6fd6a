"""The canonical joint -> bone mapping kept on the armature, and the editor over it.

The panel's Mapping list always shows the 22 canonical joints once anything has touched it; each
row is filled from the selected bone with one click (or cleared). Automatic mapping
(retarget.mapping.auto_map) fills an empty list when the armature first needs a mapping, unless
the user switched it off; a mapping that is found, typed or loaded is checked
(retarget.plausibility) before any key is written. Save and Load write and read the retarget
Mapping JSON, so a studio's rig is mapped once.
"""

from __future__ import annotations

import bpy
from bpy.props import IntProperty, StringProperty

from . import armature_io
from .vendored import canonical, plausibility
from .vendored import mapping as mapping_module


def write_mapping(stored, mapping) -> None:
    """The armature's list becomes `mapping`: one row per canonical joint, in canonical order."""
    stored.pairs.clear()
    for joint in canonical.JOINT_NAMES:
        pair = stored.pairs.add()
        pair.joint, pair.bone = joint, mapping.bones[joint] or ""
    stored.family, stored.confidence = mapping.family, mapping.confidence


def read_mapping(stored):
    """The list as a retarget Mapping (rows without a bone are unmapped joints)."""
    return mapping_module.Mapping(
        {pair.joint: pair.bone for pair in stored.pairs if pair.bone}, stored.family or "user", stored.confidence
    )


def list_joints(stored) -> None:
    """Make sure the list shows every canonical joint, keeping the bones already in it."""
    if [pair.joint for pair in stored.pairs] != canonical.JOINT_NAMES:
        kept = {pair.joint: pair.bone for pair in stored.pairs if pair.joint in canonical.JOINT_NAMES}
        write_mapping(stored, mapping_module.Mapping(kept, stored.family or "user", stored.confidence))


def armature_mapping(obj: bpy.types.Object):
    """The armature's skeleton and its checked mapping: the list, or (empty list, automatic mapping
    on) the one auto_map finds, written to the list. Any failure leaves the 22 joints listed for
    mapping by hand and says what is missing or wrong."""
    skeleton = armature_io.skeleton_from_armature(obj)
    stored = obj.data.mosa_mapping
    if not any(pair.bone for pair in stored.pairs):
        list_joints(stored)
        if not stored.automatic:
            raise ValueError(
                f"automatic mapping is off and no joint of '{obj.name}' is mapped yet: in the MoSa panel's "
                "Mapping list select each bone, then click its joint's fill button"
            )
        write_mapping(stored, mapping_module.auto_map(skeleton))
    mapping = read_mapping(stored)
    mapping.check(skeleton)
    plausibility.check(skeleton, mapping)
    return skeleton, mapping


def _armature_poll(cls, context) -> bool:
    if context.active_object is None or context.active_object.type != "ARMATURE":
        cls.poll_message_set("Select an armature")
        return False
    return True


def active_bone_name(obj: bpy.types.Object) -> str:
    """The bone the user picked last (the active bone in pose, object or edit mode), '' if none."""
    bone = obj.data.edit_bones.active if obj.mode == "EDIT" else obj.data.bones.active
    return bone.name if bone is not None else ""


class MOSA_OT_map_automatically(bpy.types.Operator):
    """Find the bones of every joint by name or structure, replacing the list"""

    bl_idname = "mosa.map_automatically"
    bl_label = "Map Automatically"
    bl_options = {"REGISTER", "UNDO"}

    poll = classmethod(_armature_poll)

    def execute(self, context):
        obj = context.active_object
        stored = obj.data.mosa_mapping
        try:
            found = mapping_module.auto_map(armature_io.skeleton_from_armature(obj))
        except ValueError as failure:
            list_joints(stored)
            self.report({"ERROR"}, f"MoSa: {failure}")
            return {"CANCELLED"}
        write_mapping(stored, found)
        self.report(
            {"INFO"}, f"MoSa: mapped as {found.family} ({found.confidence:.0%}); unmapped: {found.unmapped() or 'none'}"
        )
        return {"FINISHED"}


class MOSA_OT_clear_mapping(bpy.types.Operator):
    """List every joint with no bone, to map the rig by hand"""

    bl_idname = "mosa.clear_mapping"
    bl_label = "Map by Hand"
    bl_options = {"REGISTER", "UNDO"}

    poll = classmethod(_armature_poll)

    def execute(self, context):
        write_mapping(context.active_object.data.mosa_mapping, mapping_module.Mapping({}, "user", 1.0))
        return {"FINISHED"}


class MOSA_OT_fill_joint(bpy.types.Operator):
    """Map this joint to the selected bone, then move to the next unmapped joint"""

    bl_idname = "mosa.fill_joint"
    bl_label = "Use Selected Bone"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Joint", description="Row of the joint in the Mapping list", min=0, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        if not _armature_poll(cls, context):
            return False
        if not active_bone_name(context.active_object):
            cls.poll_message_set("Select the bone first (click it in Pose Mode)")
            return False
        return True

    def execute(self, context):
        obj = context.active_object
        stored = obj.data.mosa_mapping
        list_joints(stored)
        if self.index >= len(stored.pairs):
            self.report({"ERROR"}, f"MoSa: there is no joint {self.index}; the list has {len(stored.pairs)}")
            return {"CANCELLED"}
        pair = stored.pairs[self.index]
        pair.bone = active_bone_name(obj)
        stored.family, stored.confidence = "user", 1.0
        moved = [row.joint for k, row in enumerate(stored.pairs) if k != self.index and row.bone == pair.bone]
        for row in stored.pairs:
            if row.joint in moved:
                row.bone = ""  # one bone plays one joint
        unmapped = [k for k, row in enumerate(stored.pairs) if not row.bone]
        stored.active_index = next((k for k in unmapped if k > self.index), unmapped[0] if unmapped else self.index)
        if moved:
            self.report({"WARNING"}, f"MoSa: {pair.joint} <- '{pair.bone}', which no longer plays {', '.join(moved)}")
        else:
            self.report({"INFO"}, f"MoSa: {pair.joint} <- '{pair.bone}'")
        return {"FINISHED"}


class MOSA_OT_clear_joint(bpy.types.Operator):
    """Leave this joint unmapped"""

    bl_idname = "mosa.clear_joint"
    bl_label = "Clear Joint"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Joint", min=0, options={"SKIP_SAVE"})

    poll = classmethod(_armature_poll)

    def execute(self, context):
        stored = context.active_object.data.mosa_mapping
        if self.index < len(stored.pairs):
            stored.pairs[self.index].bone = ""
            stored.family = "user"
        return {"FINISHED"}


class MOSA_OT_save_mapping(bpy.types.Operator):
    """Save the armature's joint-to-bone mapping to a JSON file"""

    bl_idname = "mosa.save_mapping"
    bl_label = "Save Mapping"

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    poll = classmethod(_armature_poll)

    def invoke(self, context, event):
        self.filepath = f"{context.active_object.name}_mapping.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        obj = context.active_object
        stored = obj.data.mosa_mapping
        try:  # a list with bones is saved as it stands (a hand mapping half done); an empty one is mapped first
            mapping = read_mapping(stored) if any(pair.bone for pair in stored.pairs) else armature_mapping(obj)[1]
        except ValueError as failure:
            self.report({"ERROR"}, f"MoSa: nothing saved: {failure}")
            return {"CANCELLED"}
        mapping.save(self.filepath)
        self.report(
            {"INFO"},
            f"MoSa: mapping of {len(canonical.JOINT_NAMES) - len(mapping.unmapped())} joints saved to {self.filepath}",
        )
        return {"FINISHED"}


class MOSA_OT_load_mapping(bpy.types.Operator):
    """Load a joint-to-bone mapping from a JSON file onto the armature"""

    bl_idname = "mosa.load_mapping"
    bl_label = "Load Mapping"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    poll = classmethod(_armature_poll)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        obj = context.active_object
        try:
            loaded = mapping_module.Mapping.load(self.filepath)
        except ValueError as failure:
            self.report({"ERROR"}, f"MoSa: cannot load the mapping: {failure}")
            return {"CANCELLED"}
        missing = sorted(bone for bone in loaded.bones.values() if bone and bone not in obj.data.bones)
        loaded.bones = {joint: bone if bone not in missing else None for joint, bone in loaded.bones.items()}
        write_mapping(obj.data.mosa_mapping, loaded)
        if missing:
            self.report({"WARNING"}, f"MoSa: '{obj.name}' has no bones {missing}; those joints stay unmapped")
        return {"FINISHED"}


CLASSES = (
    MOSA_OT_map_automatically,
    MOSA_OT_clear_mapping,
    MOSA_OT_fill_joint,
    MOSA_OT_clear_joint,
    MOSA_OT_save_mapping,
    MOSA_OT_load_mapping,
)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
