"""Operators that manage the engine: start, stop, set up its Python, import the official checkpoint."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import engine_session, engine_setup, preferences
from .engine_client import EngineError, EngineUnavailable
from .engine_process import DEFAULT_ENGINE_ROOT, missing_python, python_cannot_run
from .operators import connect


class MOSA_OT_engine_start(bpy.types.Operator):
    """Start the MoSa engine now (it also starts by itself when Blender starts, or on first use);
    with a remote engine, check that it answers"""

    bl_idname = "mosa.engine_start"
    bl_label = "Start Engine"

    def execute(self, context):
        client = connect(self, context)
        if client is None:
            return {"CANCELLED"}
        try:
            health = client.health()
        except (EngineUnavailable, EngineError) as failure:
            self.report({"ERROR"}, f"MoSa engine unavailable: {failure}")
            return {"CANCELLED"}
        model = health.get("model") if health["ready"] else f"{health['loading'].get('message')} ..."
        context.window_manager.mosa_session.status = f"engine running: {model} on {health['device']}"
        return {"FINISHED"}


class MOSA_OT_engine_stop(bpy.types.Operator):
    """Stop the MoSa engine this Blender started"""

    bl_idname = "mosa.engine_stop"
    bl_label = "Stop Engine"

    def execute(self, context):
        engine_session.stop()
        context.window_manager.mosa_session.status = "engine stopped"
        return {"FINISHED"}


class MOSA_OT_setup_engine(bpy.types.Operator):
    """Create a Python environment for the engine and install its requirements (downloads about 2 GB)"""

    bl_idname = "mosa.setup_engine"
    bl_label = "Set Up Engine"

    base_python: StringProperty(
        name="Base Python", description="Python 3.10+ to build the venv from", subtype="FILE_PATH", default="python3"
    )

    def execute(self, context):
        user_dir = preferences.user_dir()
        self._commands = engine_setup.setup_commands(self.base_python, user_dir)
        self._log = open(engine_setup.setup_log(user_dir), "w")
        self._step, self._running = 0, None
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.progress_begin(0, len(self._commands))
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._running is not None and self._running.poll() is None:
            return {"PASS_THROUGH"}
        if self._running is not None and self._running.returncode != 0:
            return self.done(context, f"step {self._step} failed; see {self._log.name}")
        if self._step == len(self._commands):
            return self.done(context, "")
        command = self._commands[self._step]
        self._log.write(f"$ {' '.join(command)}\n")
        self._log.flush()
        self._running = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self._step += 1
        context.window_manager.progress_update(self._step)
        context.workspace.status_text_set(f"MoSa: setting up the engine, step {self._step} of {len(self._commands)}")
        return {"PASS_THROUGH"}

    def done(self, context, error: str):
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        context.workspace.status_text_set(None)
        self._log.close()
        if error:
            self.report({"ERROR"}, f"MoSa engine setup: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"MoSa engine environment ready (log: {self._log.name})")
        return {"FINISHED"}


def import_official_command(python: str, archive: str, output: str) -> list[str]:
    """The engine CLI call that converts the authors' MoSa.zip into one of our checkpoints (the add-on's
    own file, so an import again replaces it)."""
    return [python, "-m", "engine", "import-official", archive, "--out", output, "--overwrite"]


class MOSA_OT_import_official(bpy.types.Operator):
    """Convert the authors' official MoSa.zip into a checkpoint and use it"""

    bl_idname = "mosa.import_official"
    bl_label = "Import Official Checkpoint"

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.zip", options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        if not Path(self.filepath).is_file():
            self.report({"ERROR"}, f"No such file: {self.filepath!r}; pick the official MoSa.zip")
            return {"CANCELLED"}
        prefs = preferences.get(context)
        output = str(preferences.user_dir() / "official.pt")
        command = import_official_command(prefs.resolved_python(), self.filepath, output)
        if problem := missing_python(command[0]):
            self.report({"ERROR"}, f"MoSa: {problem}")
            return {"CANCELLED"}
        try:
            finished = subprocess.run(
                command,
                cwd=DEFAULT_ENGINE_ROOT,
                capture_output=True,
                text=True,
                env=dict(os.environ, PYTHONPATH=str(DEFAULT_ENGINE_ROOT)),
            )
        except OSError as error:
            self.report({"ERROR"}, f"MoSa: {python_cannot_run(command[0], error)}")
            return {"CANCELLED"}
        if finished.returncode != 0:
            said = (finished.stderr.strip().splitlines() or [f"the import exited with code {finished.returncode}"])[-1]
            self.report({"ERROR"}, f"MoSa: import failed: {said}")
            return {"CANCELLED"}
        prefs.checkpoint = output
        self.report({"INFO"}, f"MoSa: using the official checkpoint {output}")
        return {"FINISHED"}


CLASSES = (MOSA_OT_engine_start, MOSA_OT_engine_stop, MOSA_OT_setup_engine, MOSA_OT_import_official)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
