"""The one place where Blender versions differ: where an action keeps its fcurves.

Blender 5 keeps them per slot, in a channelbag (layered "slotted" actions); 4.2 to 4.5 still offer
the legacy `action.fcurves`. Everything else in the add-on goes through these functions.
"""

from __future__ import annotations

import bpy

SLOTTED_ONLY = bpy.app.version >= (5, 0, 0)


def assign_action(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """Make `action` the object's active action, on a slot of its own where slots exist."""
    if obj.animation_data is None:
        obj.animation_data_create()
    obj.animation_data.action = action
    if hasattr(obj.animation_data, "action_slot") and obj.animation_data.action_slot is None:
        slot = action.slots[0] if len(action.slots) else action.slots.new(id_type="OBJECT", name=obj.name)
        obj.animation_data.action_slot = slot


def fcurves_for(action: bpy.types.Action, obj: bpy.types.Object):
    """The fcurve collection that animates `obj` in `action` (assigned to it first if needed)."""
    if obj.animation_data is None or obj.animation_data.action != action:
        assign_action(obj, action)
    if not SLOTTED_ONLY:
        return action.fcurves
    from bpy_extras import anim_utils

    return anim_utils.action_ensure_channelbag_for_slot(action, obj.animation_data.action_slot).fcurves
