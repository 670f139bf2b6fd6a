"""The models the engine can run: the catalogue (session state on the WindowManager), the
checkpoint the panel's choice means, and the operators that download, cancel, remove and refresh.

Everything runs in the engine's Python through model_catalogue; the download is a modal
operator that polls the subprocess on a timer, so Blender stays responsive, with its progress
in the status bar. A model chosen in the panel is used from the next job on: the engine session
restarts the engine on the new checkpoint.
"""

from __future__ import annotations

import textwrap
import time

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, PointerProperty, StringProperty

from . import engine_session, model_catalogue, preferences
from .engine_process import DEFAULT_ENGINE_ROOT

POLL_S = 0.2
_download: model_catalogue.DownloadRun | None = None  # the running download, which Cancel stops


class MOSA_PG_model(bpy.types.PropertyGroup):
    key: StringProperty()
    label: StringProperty()
    knows: StringProperty()
    installed: BoolProperty()
    path: StringProperty()


class MOSA_PG_models(bpy.types.PropertyGroup):
    """What the engine said it has (refreshed on demand) and the download under way: not saved."""

    rows: CollectionProperty(type=MOSA_PG_model)
    licences: StringProperty()  # one licence a line
    folder: StringProperty()
    error: StringProperty()  # why the catalogue could not be read
    status: StringProperty()
    progress: FloatProperty(min=0.0, max=1.0)


def state(context) -> MOSA_PG_models:
    return context.window_manager.mosa_models


def refresh(context) -> MOSA_PG_models:
    """Ask the engine's Python which models are installed."""
    models = state(context)
    try:
        catalogue = model_catalogue.read_catalogue(preferences.get(context).resolved_python(), DEFAULT_ENGINE_ROOT)
    except model_catalogue.CatalogueError as error:
        models.error = str(error)
        return models
    models.error, models.folder, models.licences = "", catalogue.folder, "\n".join(catalogue.licences)
    models.rows.clear()
    for entry in catalogue.models:
        row = models.rows.add()
        row.key, row.label, row.knows, row.installed, row.path = (
            entry["key"],
            entry["label"],
            entry["knows"],
            entry["installed"],
            entry["path"] or "",
        )
    return models


def chosen_row(context, ask_engine: bool = True) -> MOSA_PG_model | None:
    """The catalogue row of the panel's choice (None for a file), asking the engine first if it
    was not asked yet (never while drawing: `ask_engine` False)."""
    key = model_catalogue.CHOICES[preferences.get(context).model]
    if not key:
        return None
    models = state(context)
    if not len(models.rows) and ask_engine:
        refresh(context)
    if models.error:
        raise RuntimeError(models.error)
    return next((row for row in models.rows if row.key == key), None)


def chosen_checkpoint(context) -> str:
    """The checkpoint the engine should run for the panel's choice; a clear error when it is missing."""
    prefs = preferences.get(context)
    if model_catalogue.CHOICES[prefs.model] == "":
        if not prefs.checkpoint:
            raise RuntimeError("choose a checkpoint file for the model, or pick Demo, HumanML3D or Motion-X")
        return bpy.path.abspath(prefs.checkpoint)
    if prefs.model == "DEMO":
        return engine_session.default_checkpoint()
    row = chosen_row(context)
    if not row.installed:  # downloaded from the command line since the last look?
        refresh(context)
        row = chosen_row(context)
    if not row.installed:
        raise RuntimeError(
            f"the {row.label} model is not installed: Edit > Preferences > Add-ons > MoSa > Download Official Models"
        )
    return row.path


def describe(context) -> tuple[str, str]:
    """(text, icon) for the panel's line under the model selector."""
    prefs = preferences.get(context)
    if model_catalogue.CHOICES[prefs.model] == "":
        return prefs.checkpoint or "no file chosen", "FILE"
    try:
        row = chosen_row(context, ask_engine=False)
    except RuntimeError as error:
        return str(error), "ERROR"
    if row is None and prefs.model == "DEMO":
        return "Demo: the bundled model (a few dozen motions)", "CHECKMARK"
    if row is None:
        return "installed models: not checked yet (Preferences > Refresh Models)", "QUESTION"
    if not row.installed:
        return f"{row.label}: not installed (Preferences > Download Official Models)", "IMPORT"
    return f"{row.label}: {row.knows}", "CHECKMARK"


class MOSA_OT_refresh_models(bpy.types.Operator):
    """Ask the engine which models are installed"""

    bl_idname = "mosa.refresh_models"
    bl_label = "Refresh Models"

    def execute(self, context):
        models = refresh(context)
        if models.error:
            self.report({"ERROR"}, f"MoSa: {models.error}")
            return {"CANCELLED"}
        return {"FINISHED"}


class MOSA_OT_download_models(bpy.types.Operator):
    """Download the authors' HumanML3D and Motion-X models and CLIP's text encoder; progress in the status bar, Esc cancels"""

    bl_idname = "mosa.download_models"
    bl_label = "Download Official Models"

    accept_licences: BoolProperty(name="I accept these terms", default=False, options={"SKIP_SAVE"})
    synchronous: BoolProperty(
        name="Synchronous",
        description="Wait for the download, blocking (scripts, tests)",
        default=False,
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context):
        if _download is not None:
            cls.poll_message_set("A download is already running")
            return False
        return True

    def invoke(self, context, event):
        refresh(context)
        return context.window_manager.invoke_props_dialog(self, width=600)

    def draw(self, context):
        layout = self.layout
        layout.label(text="The models come with these terms:")
        for licence in state(context).licences.splitlines():
            for line in textwrap.wrap(licence, 100):
                layout.label(text=line)
        layout.prop(self, "accept_licences")

    def execute(self, context):
        global _download
        if not self.accept_licences:
            self.report({"ERROR"}, "MoSa: accept the licences to download the official models")
            return {"CANCELLED"}
        log_file = preferences.user_dir() / "model-download.log"
        try:
            _download = model_catalogue.DownloadRun.start(
                preferences.get(context).resolved_python(), DEFAULT_ENGINE_ROOT, log_file
            )
        except model_catalogue.CatalogueError as error:
            self.report({"ERROR"}, f"MoSa: {error}")
            return {"CANCELLED"}
        if self.synchronous or context.window is None:
            while not self.advance(context):
                time.sleep(POLL_S)
            return self.conclude(context)
        self._timer = context.window_manager.event_timer_add(POLL_S, window=context.window)
        context.window_manager.progress_begin(0, 1)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            _download.cancel()
            return {"RUNNING_MODAL"}  # Esc stops the download, nothing else
        if event.type == "TIMER" and self.advance(context):
            context.window_manager.event_timer_remove(self._timer)
            context.window_manager.progress_end()
            context.workspace.status_text_set(None)
            return self.conclude(context)
        return {"PASS_THROUGH"}

    def advance(self, context) -> bool:
        """One poll of the download, for both paths: its line in the preferences and, with a window, the status bar."""
        finished = _download.poll()
        models = state(context)
        models.status, models.progress = _download.line, _download.fraction
        if context.window is not None:
            context.window_manager.progress_update(_download.fraction)
            context.workspace.status_text_set(_download.status_text)
        return finished

    def conclude(self, context):
        global _download
        run, _download = _download, None
        models = refresh(context)
        models.status, models.progress = run.message, 0.0
        if run.state == "done":
            self.report({"INFO"}, f"MoSa: {run.message}")
            return {"FINISHED"}
        self.report({"WARNING"} if run.state == "cancelled" else {"ERROR"}, f"MoSa: {run.message}")
        return {"CANCELLED"}


class MOSA_OT_cancel_download(bpy.types.Operator):
    """Stop the model download; what was downloaded is kept and the next download resumes from it"""

    bl_idname = "mosa.cancel_download"
    bl_label = "Cancel Download"

    @classmethod
    def poll(cls, context):
        return _download is not None

    def execute(self, context):
        _download.cancel()
        return {"FINISHED"}


class MOSA_OT_remove_models(bpy.types.Operator):
    """Delete the downloaded HumanML3D and Motion-X models (the demo model stays)"""

    bl_idname = "mosa.remove_models"
    bl_label = "Remove Official Models"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        if model_catalogue.CHOICES[preferences.get(context).model] not in ("", "demo"):
            engine_session.stop()  # it may be running a file about to be deleted
        try:
            removed = model_catalogue.remove_official(preferences.get(context).resolved_python(), DEFAULT_ENGINE_ROOT)
        except model_catalogue.CatalogueError as error:
            self.report({"ERROR"}, f"MoSa: {error}")
            return {"CANCELLED"}
        refresh(context)
        self.report({"INFO"}, f"MoSa: {removed}")
        return {"FINISHED"}


CLASSES = (
    MOSA_PG_model,
    MOSA_PG_models,
    MOSA_OT_refresh_models,
    MOSA_OT_download_models,
    MOSA_OT_cancel_download,
    MOSA_OT_remove_models,
)


def _refresh_soon() -> None:
    """Ask the engine once Blender is up (a timer may write to the WindowManager; a draw may not)."""
    if preferences.ADDON in bpy.context.preferences.addons:
        refresh(bpy.context)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.WindowManager.mosa_models = PointerProperty(type=MOSA_PG_models)
    if not bpy.app.background:
        bpy.app.timers.register(_refresh_soon, first_interval=1.0)


def unregister() -> None:
    global _download
    if _download is not None:
        _download.cancel()
        _download = None
    del bpy.types.WindowManager.mosa_models
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
