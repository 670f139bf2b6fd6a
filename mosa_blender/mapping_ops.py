"""The canonical joint -> bone mapping kept on the armature: fill it from the canonical joints,
save it to JSON and load it back (for a studio's rigs that no automatic rule knows)."""
from __future__ import annotations

import json
from pathlib import Path

import bpy
from bpy.props import StringProperty

from .vendored import canonical



def mapping_to_dict(mapping) -> dict:
    return {"family": mapping.family or "user", "bones": {pair.joint: pair.bone for pair in mapping.pairs}}


def mapping_from_dict(mapping, data: dict, bone_names: set[str]) -> list[str]:
    """Fill the armature's mapping from saved JSON; returns the saved bones this rig lacks."""
    bones = data.get("bones")
    if not isinstance(bones, dict):
        raise ValueError("the mapping file has no 'bones' object; expected {\"bones\": {joint: bone}}")
    unknown_joints = sorted(set(bones) - set(canonical.JOINT_NAMES))
    if unknown_joints:
        raise ValueError(f"the mapping names joints the canonical skeleton lacks: {unknown_joints}")
    mapping.pairs.clear()
    missing = []
    for joint in canonical.JOINT_NAMES:
        pair = mapping.pairs.add()
        pair.joint, pair.bone = joint, bones.get(joint, "")
        if pair.bone and pair.bone not in bone_names:
            missing.append(pair.bone)
            pair.bone = ""
    mapping.family = str(data.get("family", "user"))
    mapping.confidence = 1.0
    return missing


def _armature_poll(cls, context) -> bool:
    if context.active_object is None or context.active_object.type != "ARMATURE":
        cls.poll_message_set("Select an armature")
        return False
    return True


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
        mapping = context.active_object.data.mosa_mapping
        Path(self.filepath).write_text(json.dumps(mapping_to_dict(mapping), indent=2))
        self.report({"INFO"}, f"MoSa: mapping saved to {self.filepath}")
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
            data = json.loads(Path(self.filepath).read_text())
            missing = mapping_from_dict(obj.data.mosa_mapping, data, {bone.name for bone in obj.data.bones})
        except (OSError, ValueError) as failure:
            self.report({"ERROR"}, f"MoSa: cannot load the mapping: {failure}")
            return {"CANCELLED"}
        if missing:
            self.report({"WARNING"}, f"MoSa: '{obj.name}' has no bones {missing}; those joints stay unmapped")
        return {"FINISHED"}


CLASSES = (MOSA_OT_save_mapping, MOSA_OT_load_mapping)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
