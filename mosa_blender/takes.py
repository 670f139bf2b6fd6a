"""No action is ever lost: every action MoSa makes is a take of its rig, every action it replaces
is kept, the way Blender's own Action Editor keeps them.

Generated takes get a fake user (the shield in Blender's action menus) and a row in the rig's
Takes list (prompt, seed, model); an action MoSa replaces that has no fake user and no NLA strip
(a hand-keyed original, say) is stashed on a muted "[Action Stash]" NLA track, as the Action
Editor does when it swaps actions. Either way it survives save, reopen and undo.
"""

from __future__ import annotations

import bpy

from .action_compat import assign_action

STASH_TRACK = "[Action Stash]"  # Blender's own name: its NLA editor and Action Editor know these tracks
COMPARISON_PREFIX = "[MoSa] "  # the tracks variations are compared on, one strip each


def add_take(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """List `action` among the rig's takes (once) and keep it with a fake user."""
    action.use_fake_user = True
    _list(obj, action)


def _list(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """`action` in the rig's Takes list (once), as the active row."""
    takes = obj.mosa_takes
    if not any(take.action == action for take in takes.items):
        takes.items.add().action = action
    takes.active_index = next(i for i, take in enumerate(takes.items) if take.action == action)


def _in_nla(obj: bpy.types.Object, action: bpy.types.Action) -> bool:
    return any(strip.action == action for track in obj.animation_data.nla_tracks for strip in track.strips)


def stash(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """Keep `action` on a muted "[Action Stash]" track unless a fake user or an NLA strip keeps it already."""
    if action.use_fake_user or _in_nla(obj, action):
        return
    track = obj.animation_data.nla_tracks.new()
    track.name, track.mute = STASH_TRACK, True
    track.strips.new(action.name, int(action.frame_range[0]), action)


def keep_replaced(obj: bpy.types.Object, action: bpy.types.Action | None) -> None:
    """After MoSa bakes new actions (baking assigns each to the rig in turn): the action the rig
    played before (`action`, taken before the first bake) is listed among its takes, and stashed if
    nothing else keeps it."""
    if action is not None:
        stash(obj, action)
        _list(obj, action)


def switch_to(obj: bpy.types.Object, action: bpy.types.Action | None) -> None:
    """Make `action` the rig's active action (None: none, so its NLA strips play alone); the one it
    replaces is stashed if nothing else would keep it."""
    if obj.animation_data is None:
        obj.animation_data_create()
    replaced = obj.animation_data.action
    if replaced is not None and replaced != action:
        stash(obj, replaced)
    if action is None:
        bpy.context.view_layer.update()  # bpy 5.0 crashes unassigning a slot the depsgraph has not seen yet
        obj.animation_data.action = None
    else:
        assign_action(obj, action)


def comparison_tracks(obj: bpy.types.Object) -> list:
    animation = obj.animation_data
    return [track for track in animation.nla_tracks if track.name.startswith(COMPARISON_PREFIX)] if animation else []


def compare_on_tracks(obj: bpy.types.Object, actions: list, start_frame: int) -> None:
    """Variations to compare by playing: one NLA track each, strips one after another, and no
    active action on top (it would mask them); any earlier comparison's tracks go first."""
    switch_to(obj, None)
    end_comparison(obj)
    frame = start_frame
    for action in actions:
        track = obj.animation_data.nla_tracks.new()
        track.name = (COMPARISON_PREFIX + action.name)[:63]
        strip = track.strips.new(action.name, frame, action)
        strip.extrapolation = "NOTHING"  # a held first pose would mask the variations on the tracks below
        frame = int(strip.frame_end) + 1


def end_comparison(obj: bpy.types.Object) -> None:
    """Take the comparison tracks away; their actions stay, each a take with a fake user."""
    for track in comparison_tracks(obj):
        obj.animation_data.nla_tracks.remove(track)


def keep(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """The take chosen: it becomes the rig's action and any comparison of variations ends."""
    end_comparison(obj)
    switch_to(obj, action)
    add_take(obj, action)
