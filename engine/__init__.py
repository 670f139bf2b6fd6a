"""The MoSa engine: text-to-motion model, training, editing, and the local HTTP service.

Runs in its own Python with torch; never imports bpy. `engine.representation` is numpy only.
"""

__version__ = "0.1.0"
