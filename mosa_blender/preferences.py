"""Add-on preferences: where the engine runs, on which Python, with which checkpoint and device."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import engine_setup

ADDON = __package__


def user_dir() -> Path:
    """The add-on's own writable folder (engine venv, logs, token), kept across updates."""
    return Path(bpy.utils.extension_path_user(ADDON, path="", create=True))


def get(context: bpy.types.Context) -> "MOSA_AP_preferences":
    return context.preferences.addons[ADDON].preferences


def _choose_file(prefs, _context) -> None:
    if prefs.checkpoint and prefs.model != "FILE":
        prefs.model = "FILE"


class MOSA_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    engine_mode: EnumProperty(
        name="Engine",
        items=[
            ("LOCAL", "Local", "Start the engine as a subprocess on this computer"),
            ("REMOTE", "Remote", "Use an engine already running elsewhere (URL and token)"),
        ],
        default="LOCAL",
    )
    engine_python: StringProperty(
        name="Engine Python",
        subtype="FILE_PATH",
        description="Python with torch that runs the engine (empty: the venv 'Set up engine' creates)",
    )
    model: EnumProperty(
        name="Model",
        description="The model the engine runs; a change takes effect on the next job",
        items=[
            ("DEMO", "Demo", "The bundled demo model: a few dozen motions"),
            ("HUMANML3D", "HumanML3D", "The authors' HumanML3D model (Download Official Models)"),
            ("MOTIONX", "Motion-X", "The authors' Motion-X model (Download Official Models)"),
            ("FILE", "File", "A checkpoint file of your own"),
        ],
        default="DEMO",
    )
    checkpoint: StringProperty(
        name="Checkpoint",
        subtype="FILE_PATH",
        update=_choose_file,
        description="A checkpoint file (choosing one selects the File model)",
    )
    device: EnumProperty(
        name="Device",
        items=[("auto", "Auto", "CUDA when available"), ("cpu", "CPU", ""), ("cuda", "CUDA", "")],
        default="auto",
    )
    start_engine_early: BoolProperty(
        name="Start engine when Blender starts",
        description="Start the local engine and load the model when the add-on is enabled or its panel first "
        "shows, so that the first Generate does not wait for it",
        default=True,
    )
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
        self.draw_models(context, layout.box())
        layout.prop(self, "device")
        layout.prop(self, "start_engine_early")
        row = layout.row()
        row.operator("mosa.engine_start", icon="PLAY")
        row.operator("mosa.engine_stop", icon="CANCEL")

    def draw_models(self, context: bpy.types.Context, box: bpy.types.UILayout) -> None:
        """The model choice, what is installed, and the download with its progress."""
        models = context.window_manager.mosa_models
        box.prop(self, "model")
        if self.model == "FILE":
            box.prop(self, "checkpoint")
        for row in models.rows:
            box.label(
                text=f"{row.label}: {'installed' if row.installed else 'not installed'} - {row.knows}",
                icon="CHECKMARK" if row.installed else "BLANK1",
            )
        if models.error:
            box.label(text=models.error, icon="ERROR")
        if models.status:
            box.label(text=models.status, icon="INFO")
        row = box.row()
        row.operator("mosa.download_models", icon="IMPORT")
        row.operator("mosa.cancel_download", icon="CANCEL", text="Cancel")
        row.operator("mosa.remove_models", icon="TRASH", text="Remove")
        row.operator("mosa.refresh_models", icon="FILE_REFRESH", text="")
        box.label(
            text=f"Models folder: {models.folder or 'unknown until refreshed'}; licences are shown before the download"
        )


def register() -> None:
    bpy.utils.register_class(MOSA_AP_preferences)


def unregister() -> None:
    bpy.utils.unregister_class(MOSA_AP_preferences)
