"""Add-on preferences: where the engine runs, on which Python, with which checkpoint and device."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import engine_setup

ADDON = __package__


def user_dir() -> Path:
    """The add-on's own writable folder (engine venv, logs, token), kept across updates."""
    return Path(bpy.utils.extension_path_user(ADDON, path="", create=True))


def get(context: bpy.types.Context) -> "MOSA_AP_preferences":
    return context.preferences.addons[ADDON].preferences


class MOSA_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    engine_mode: EnumProperty(
        name="Engine",
        items=[("LOCAL", "Local", "Start the engine as a subprocess on this computer"),
               ("REMOTE", "Remote", "Use an engine already running elsewhere (URL and token)")],
        default="LOCAL")
    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="Python with torch that runs the engine (empty: the venv 'Set up engine' creates)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH",
                               description="Model checkpoint (empty: the bundled demo model)")
    device: EnumProperty(name="Device", items=[("auto", "Auto", "CUDA when available"), ("cpu", "CPU", ""),
                                               ("cuda", "CUDA", "")], default="auto")
    remote_url: StringProperty(name="URL", default="http://127.0.0.1:8765")
    remote_token: StringProperty(name="Token", subtype="PASSWORD")

    def resolved_python(self) -> str:
        return self.engine_python or str(engine_setup.venv_python(user_dir()))

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "engine_mode", expand=True)
        if self.engine_mode == "REMOTE":
            layout.prop(self, "remote_url")
            layout.prop(self, "remote_token")
            return
        layout.prop(self, "engine_python")
        layout.label(text=f"Using: {self.resolved_python()}")
        row = layout.row()
        row.operator("mosa.setup_engine", icon="CONSOLE")
        row.operator("mosa.import_official", icon="IMPORT")
        layout.prop(self, "checkpoint")
        layout.prop(self, "device")
        row = layout.row()
        row.operator("mosa.engine_start", icon="PLAY")
        row.operator("mosa.engine_stop", icon="CANCEL")


def register() -> None:
    bpy.utils.register_class(MOSA_AP_preferences)


def unregister() -> None:
    bpy.utils.unregister_class(MOSA_AP_preferences)
