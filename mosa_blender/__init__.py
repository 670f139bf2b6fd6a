"""MoSa for Blender: type a prompt, get motion on your own rig.

Registration only; the parts live in their modules (properties, preferences, operators, panel).
"""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import (
    engine_autostart,
    engine_ops,
    engine_session,
    mapping_ops,
    model_ops,
    operators,
    panel,
    preferences,
    properties,
)

MODULES = (properties, model_ops, preferences, operators, engine_ops, mapping_ops, panel, engine_autostart)


@persistent
def _cancel_job_on_load(*_args) -> None:
    """A new file is a fresh start: no job from the old one may bake into it."""
    operators.forget_active_run()


def register() -> None:
    for module in MODULES:
        module.register()
    bpy.app.handlers.load_pre.append(_cancel_job_on_load)


def unregister() -> None:
    bpy.app.handlers.load_pre.remove(_cancel_job_on_load)
    for module in reversed(MODULES):
        module.unregister()
    engine_session.stop()
