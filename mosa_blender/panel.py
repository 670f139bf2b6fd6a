"""View3D > Sidebar > MoSa: prompt, options, the target rig's mapping, the buttons, engine status, recent jobs."""

from __future__ import annotations

import bpy

from . import engine_autostart, model_ops, preferences


class MOSA_UL_mapping(bpy.types.UIList):
    """Canonical joint -> bone: typed with a search over the armature's bones, taken from the
    selected bone with one click, or cleared."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0):
        row = layout.row(align=True)
        row.label(text=item.joint, icon="BONE_DATA" if item.bone else "RADIOBUT_OFF")
        row.prop_search(item, "bone", context.active_object.data, "bones", text="")
        row.operator("mosa.fill_joint", text="", icon="EYEDROPPER").index = index
        row.operator("mosa.clear_joint", text="", icon="X").index = index


class MOSA_UL_takes(bpy.types.UIList):
    """A rig's takes: the action, and the prompt, seed and model it came from; the one playing is marked."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0):
        action = item.action
        if action is None:
            layout.label(text="(deleted)", icon="X")
            return
        animation = context.active_object.animation_data
        playing = animation is not None and animation.action == action
        row = layout.row(align=True)
        row.label(text=action.name, icon="PLAY" if playing else "ACTION")
        stored = action.get("mosa")
        row.label(text=f"seed {stored['seed']} - {stored['model'] or 'model?'}" if stored else "not made by MoSa")
        row.operator("mosa.use_take", text="", icon="CHECKMARK").index = index


class MOSA_UL_shot_rows(bpy.types.UIList):
    """The Prompt Timeline: one row per part of the shot, its prompt and length."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0):
        row = layout.row(align=True)
        row.prop(item, "prompt", text="", emboss=True)
        row.prop(item, "seconds", text="")


class _Sidebar:
    """Where every MoSa panel lives: View3D > Sidebar > MoSa."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MoSa"


class _SubPanel(_Sidebar):
    bl_parent_id = "MOSA_PT_main"


class MOSA_PT_main(_Sidebar, bpy.types.Panel):
    bl_idname = "MOSA_PT_main"
    bl_label = "MoSa Motion"

    def draw(self, context):
        engine_autostart.on_panel_draw()
        layout, settings = self.layout, context.scene.mosa
        prefs = preferences.get(context)
        layout.prop(prefs, "model")
        if prefs.model == "FILE":
            layout.prop(prefs, "checkpoint", text="")
        text, icon = model_ops.describe(context)
        layout.label(text=text, icon=icon)
        layout.prop(settings, "prompt", text="")
        row = layout.row(align=True)
        row.prop(settings, "seconds")
        row.prop(settings, "seed")
        row = layout.row(align=True)
        row.prop(settings, "variations", text="Variations")
        row.prop(settings, "place_variations", text="")
        obj = context.active_object
        box = layout.box()
        if obj is None or obj.type != "ARMATURE":
            box.label(text="Select an armature", icon="INFO")
        else:
            mapping = obj.data.mosa_mapping
            box.label(text=obj.name, icon="ARMATURE_DATA")
            unmapped = [pair.joint for pair in mapping.pairs if not pair.bone]
            box.label(text=f"{mapping.family or 'not mapped yet'} - confidence {mapping.confidence:.0%}")
            if unmapped:
                box.label(text=f"Unmapped: {', '.join(unmapped[:4])}{'...' if len(unmapped) > 4 else ''}", icon="ERROR")
            row = box.row(align=True)
            row.operator("mosa.save_mapping", icon="EXPORT")
            row.operator("mosa.load_mapping", icon="IMPORT")
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("mosa.generate", icon="PLAY")
        row.operator("mosa.cancel", icon="CANCEL", text="")
        layout.label(text=f"Engine: {context.window_manager.mosa_session.status}")


class MOSA_PT_mapping(_SubPanel, bpy.types.Panel):
    """The joint-to-bone mapping editor: automatic or by hand, one row per canonical joint."""

    bl_label = "Mapping"

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and context.active_object.type == "ARMATURE"

    def draw(self, context):
        layout, mapping = self.layout, context.active_object.data.mosa_mapping
        layout.prop(mapping, "automatic")
        row = layout.row(align=True)
        row.operator("mosa.map_automatically", icon="AUTO")
        row.operator("mosa.clear_mapping", icon="GREASEPENCIL")
        if not len(mapping.pairs):
            layout.label(text="Map Automatically, or Map by Hand to list the joints", icon="INFO")
            return
        layout.label(text="Select a bone, then click its joint's eyedropper", icon="EYEDROPPER")
        layout.template_list("MOSA_UL_mapping", "", mapping, "pairs", mapping, "active_index", rows=8)


class MOSA_PT_edit(_SubPanel, bpy.types.Panel):
    bl_label = "Regenerate Range"

    def draw(self, context):
        settings = context.scene.mosa
        row = self.layout.row(align=True)
        row.prop(settings, "range_start")
        row.prop(settings, "range_end")
        row.operator("mosa.use_preview_range", text="", icon="TIME")
        self.layout.prop(settings, "seam_frames")
        self.layout.operator("mosa.regenerate_range", icon="FILE_REFRESH")
        self.layout.operator("mosa.inbetween_keys", icon="KEYFRAME")
        row = self.layout.row(align=True)
        row.prop(settings, "extend_seconds")
        row.operator("mosa.extend", text="Before", icon="TRIA_LEFT").side = "BEFORE"
        row.operator("mosa.extend", text="After", icon="TRIA_RIGHT").side = "AFTER"
        self.layout.operator("mosa.bake", icon="ACTION")


class MOSA_PT_shot(_SubPanel, bpy.types.Panel):
    """A shot longer than one prompt: rows (or markers named with prompts), one action over all of them."""

    bl_label = "Prompt Timeline"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.mosa
        self.layout.row().prop(settings, "shot_source", expand=True)
        if settings.shot_source == "ROWS":
            row = self.layout.row()
            row.template_list("MOSA_UL_shot_rows", "", settings, "shot_rows", settings, "shot_index", rows=4)
            buttons = row.column(align=True)
            buttons.operator("mosa.shot_row_add", text="", icon="ADD")
            buttons.operator("mosa.shot_row_remove", text="", icon="REMOVE")
            total = sum(row.seconds for row in settings.shot_rows)
        else:
            self.layout.label(text="Each named marker lasts until the next one", icon="MARKER_HLT")
            named = [marker for marker in context.scene.timeline_markers if marker.name.strip()]
            total = (
                context.scene.frame_end + 1 - min((m.frame for m in named), default=context.scene.frame_end + 1)
            ) / (context.scene.render.fps / context.scene.render.fps_base)
        self.layout.label(text=f"Shot: {total:.1f} s")
        self.layout.operator("mosa.generate_shot", icon="SEQUENCE")


class MOSA_PT_takes(_SubPanel, bpy.types.Panel):
    """Every action the rig has been given: switch between them, or keep one of the variations."""

    bl_label = "Takes"

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and context.active_object.type == "ARMATURE"

    def draw(self, context):
        listed = context.active_object.mosa_takes
        if not len(listed.items):
            self.layout.label(text="Generated actions are listed here", icon="INFO")
            return
        self.layout.template_list("MOSA_UL_takes", "", listed, "items", listed, "active_index", rows=4)
        chosen = listed.items[listed.active_index].action if 0 <= listed.active_index < len(listed.items) else None
        if chosen is not None and "mosa" in chosen:
            self.layout.label(text=chosen["mosa"]["prompt"], icon="TEXT")
        self.layout.operator("mosa.use_take", icon="CHECKMARK")


class MOSA_PT_sampling(_SubPanel, bpy.types.Panel):
    bl_label = "Sampling"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.mosa
        for name in ("guidance", "temperature", "top_k", "top_p", "smooth", "foot_lock", "in_place"):
            self.layout.prop(settings, name)


class MOSA_PT_jobs(_SubPanel, bpy.types.Panel):
    bl_label = "Recent Jobs"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        for job in reversed(context.window_manager.mosa_session.jobs):
            self.layout.label(text=f"{job.state}: {job.prompt}", icon="CHECKMARK" if job.state == "done" else "TIME")


CLASSES = (
    MOSA_UL_mapping,
    MOSA_UL_takes,
    MOSA_UL_shot_rows,
    MOSA_PT_main,
    MOSA_PT_mapping,
    MOSA_PT_takes,
    MOSA_PT_edit,
    MOSA_PT_shot,
    MOSA_PT_sampling,
    MOSA_PT_jobs,
)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
